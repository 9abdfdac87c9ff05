// What the reader's view keeps from item to item: the window (a preset chosen by key, or the
// values dragged to), the zoom and the pan. Pure: reader_workspace.js reads the values off the
// viewer before it goes and applies them to the next one.
//
//   kept = keptView(voi, presets, zoom, pan)   → {window: {preset: i} | {lower, upper}, zoom, pan}
//   plan = viewFor(kept, header)               → {preset: i | null, voi: {lower, upper} | null, zoom, pan}
//
// A window that is one of the item's presets is kept as that preset's index, so the next item
// gets its own "5–95 %" rather than the last item's numbers; a dragged window is kept as its
// values, unless it misses the next image's value range entirely (then the next image starts
// from its first preset: a window outside the data would show a blank image).

const TOLERANCE = 1e-6;

function near(a, b, scale) {
  return Math.abs(a - b) <= TOLERANCE * Math.max(1, Math.abs(scale));
}

/** The view to keep: `voi` {lower, upper} shown now, the image's `presets`, Cornerstone's zoom and pan. */
export function keptView(voi, presets, zoom, pan) {
  if (!voi || !(voi.upper > voi.lower)) return null;
  const width = voi.upper - voi.lower;
  const preset = (presets || []).findIndex((p) => near(p.lower, voi.lower, width) && near(p.upper, voi.upper, width));
  const window = preset >= 0 ? { preset } : { lower: voi.lower, upper: voi.upper };
  const keptZoom = Number.isFinite(zoom) && zoom > 0 ? zoom : 1;
  const keptPan = Array.isArray(pan) && pan.length === 2 && pan.every(Number.isFinite) ? [pan[0], pan[1]] : [0, 0];
  return { window, zoom: keptZoom, pan: keptPan };
}

/** How to show the next item (its viewer `header`: presets and range) given the `kept` view (or null). */
export function viewFor(kept, header) {
  if (!kept) return null;
  const presets = header?.presets || [];
  const range = header?.range;
  let preset = null;
  let voi = null;
  if ("preset" in kept.window) {
    preset = kept.window.preset < presets.length ? kept.window.preset : 0;
  } else if (!range || (kept.window.upper > range.min && kept.window.lower < range.max)) {
    voi = { lower: kept.window.lower, upper: kept.window.upper };
  } else {
    preset = 0;
  }
  return { preset, voi, zoom: kept.zoom, pan: kept.pan };
}
