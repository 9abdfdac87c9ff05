// What the viewer's controls do to its views: window presets (shared within a window group),
// reset, and slice navigation by keyboard (↑/↓/←/→, PgUp/PgDn, Home/End; the reset key).
import { describe } from "./mount.js";
import { groupOf } from "./sync.js";

function showPreset(view, preset) {
  view.viewport.setProperties({ voiRange: { lower: preset.lower, upper: preset.upper } });
}

function scrollTo(view, target) {
  const index = Math.max(0, Math.min(view.header.slices - 1, target));
  if (index !== view.viewport.getCurrentImageIdIndex()) view.viewport.setImageIdIndex(index);
}

/** {setPreset(index, presetIndex), reset(), onKey(event, view)} over `views`. */
export function createControls(views, { sync, resetKey }) {
  function setPreset(index, presetIndex) {
    const view = views[index];
    const preset = view.presets[presetIndex] || view.presets[0];
    const value = String(view.presets.indexOf(preset));
    // The group shares its presets: set every member (and its dropdown) directly.
    groupOf(views, view, sync).forEach((member) => {
      showPreset(member, preset);
      member.preset.value = value;
      member.viewport.render();
      describe(member);
    });
  }

  function reset() {
    views.forEach((view) => {
      view.preset.value = "0";
      view.viewport.resetCamera();
      showPreset(view, view.presets[0]);
      if (view.viewport.getCurrentImageIdIndex() !== view.middle) view.viewport.setImageIdIndex(view.middle);
      view.viewport.render();
      describe(view);
    });
  }

  function onKey(event, view) {
    const page = Math.max(1, Math.round(view.header.slices / 10));
    const current = view.viewport.getCurrentImageIdIndex();
    const moves = { ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -page, PageDown: page };
    if (event.key in moves) scrollTo(view, current + moves[event.key]);
    else if (event.key === "Home") scrollTo(view, 0);
    else if (event.key === "End") scrollTo(view, view.header.slices - 1);
    else if (resetKey && event.key.toLowerCase() === resetKey.toLowerCase()) reset();
    else return;
    event.preventDefault();
  }

  return { setPreset, reset, onKey };
}
