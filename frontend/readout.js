// The value under the cursor: each viewport's caption shows the voxel (column x, row y and, in a
// volume, slice z; 0-based, as in the array) and its value as the viewer shows it (the array's own
// units; a k-space image's log magnitude). The element carries data-readout-index ("x,y,z"),
// data-readout-value (the float32 value, in full) and data-readout-world (the world point under the
// cursor, "x,y,z" in mm) while the cursor is over the image.
import { el } from "../static/js/dom.js";
import { voxelAt } from "./geometry.js";
import { valuesOf } from "./loader.js";

function fmt(value) {
  return Number.isFinite(value) ? Number(value).toPrecision(5).replace(/\.?0+(e|$)/, "$1") : String(value);
}

// The values as fetched (loader.js), not the image's pixel data, which CPU rendering changes.
const sliceValues = (viewport) => valuesOf(viewport.getCurrentImageId());

/** The voxel and value under canvas point `canvas` ([x, y], CSS pixels) of `view`, or null. */
export function valueAt(view, canvas, half) {
  const world = view.viewport.canvasToWorld(canvas);
  const voxel = voxelAt(view.header, world, view.viewport.getCurrentImageIdIndex(), half);
  const values = voxel && sliceValues(view.viewport);
  if (!values) return null;
  return { ...voxel, value: values[voxel.offset], world };
}

function clear(view) {
  delete view.element.dataset.readoutIndex;
  delete view.element.dataset.readoutValue;
  delete view.element.dataset.readoutWorld;
  view.readout.textContent = "";
}

/** Keep each view's readout (a .cs-readout span in its caption) under the cursor; returns destroy(). */
export function createReadouts(views, half) {
  const removers = views.map((view) => {
    view.readout = el("span", { class: "cs-readout", "aria-live": "off" });
    view.info.after(view.readout);
    const onMove = (event) => {
      const box = view.element.getBoundingClientRect();
      const at = valueAt(view, [event.clientX - box.left, event.clientY - box.top], half);
      if (!at) {
        clear(view);
        return;
      }
      const volume = view.header.slices > 1;
      const index = volume ? [at.column, at.row, at.slice] : [at.column, at.row];
      view.element.dataset.readoutIndex = index.join(",");
      view.element.dataset.readoutValue = String(at.value);
      view.element.dataset.readoutWorld = at.world.map((v) => v.toFixed(4)).join(",");
      const where = volume ? `x ${at.column}, y ${at.row}, z ${at.slice}` : `x ${at.column}, y ${at.row}`;
      view.readout.textContent = `(${where}) = ${fmt(at.value)}`;
    };
    const onLeave = () => clear(view);
    view.element.addEventListener("mousemove", onMove);
    view.element.addEventListener("mouseleave", onLeave);
    return () => {
      view.element.removeEventListener("mousemove", onMove);
      view.element.removeEventListener("mouseleave", onLeave);
    };
  });
  return () => removers.forEach((remove) => remove());
}
