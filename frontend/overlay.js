// The label overlay: a case's label (or mask) drawn in colour, translucent, over every viewport of
// the same shape that shows an image (not over difference or SD maps, unless `maps`), instead of a
// grey tile of its own. options.overlay = {headerUrl | header, label, outline, maps}: `outline` draws
// only the regions' edges (a probe's truth region over its error and SD maps), `maps` covers the
// difference and SD maps too; the toolbar gets a toggle and an opacity slider. The root carries data-overlay ("on" | "off"); each covered viewport data-overlay-voxels
// (the labelled voxels drawn on its slice) once drawn. The label's canvas sits over Cornerstone's,
// under its annotations, and maps image pixels to the screen with the viewport's own worldToCanvas
// (zoom, pan and the renderer's half pixel included).
import { Enums } from "@cornerstonejs/core";

import { el, errorMessage, fetchBytes, fetchJSON } from "../static/js/dom.js";
import { labelOutline, labelRGBA, pixelToWorld } from "./geometry.js";

const DEFAULT_OPACITY = 0.45;
const OUTLINE_OPACITY = 0.9; // a one-voxel edge must stand out against an SD map's colours
const COVERED_WITH_MAPS = ["image", "difference", "uncertainty"];

const sameShape = (a, b) => a.rows === b.rows && a.columns === b.columns && a.slices === b.slices;

// Slice k's label values: from the whole array (one request) when it is small enough, else ?slice=k.
function labelSlices(header, maxWholeBytes) {
  const perSlice = header.rows * header.columns;
  const slices = new Map();
  let whole = null;
  if ((header.whole_bytes ?? perSlice * header.slices * 4) <= maxWholeBytes) {
    whole = fetchBytes(header.data_url).then((bytes) => new Float32Array(bytes));
  }
  return (k) => {
    if (!slices.has(k)) {
      const separator = header.data_url.includes("?") ? "&" : "?";
      const values = whole
        ? whole.then((all) => all.subarray(k * perSlice, (k + 1) * perSlice))
        : fetchBytes(`${header.data_url}${separator}slice=${k}`).then((bytes) => new Float32Array(bytes));
      slices.set(k, values);
    }
    return slices.get(k);
  };
}

function sliceCanvas(header, labelValues, opacity, outline) {
  const values = outline ? labelOutline(labelValues, header.rows, header.columns) : labelValues;
  const canvas = document.createElement("canvas");
  canvas.width = header.columns;
  canvas.height = header.rows;
  const data = new ImageData(labelRGBA(values, opacity), header.columns, header.rows);
  canvas.getContext("2d").putImageData(data, 0, 0);
  let voxels = 0;
  for (let i = 0; i < values.length; i += 1) if (Math.round(values[i]) !== 0 && Number.isFinite(values[i])) voxels += 1;
  return { canvas, voxels };
}

class Layer {
  constructor(view, header, sliceOf, state, half) {
    Object.assign(this, { view, header, sliceOf, state, half, drawn: new Map(), token: 0 });
    this.canvas = el("canvas", { class: "cs-overlay", "aria-hidden": "true" });
    const svg = view.element.querySelector("svg");
    if (svg?.parentNode) svg.parentNode.insertBefore(this.canvas, svg);
    else view.element.append(this.canvas);
    this.onRender = () => this.draw();
    view.element.addEventListener(Enums.Events.IMAGE_RENDERED, this.onRender);
  }

  async draw() {
    const { view, header, canvas } = this;
    const token = (this.token += 1);
    const k = view.viewport.getCurrentImageIdIndex();
    const ratio = window.devicePixelRatio || 1;
    const [width, height] = [view.element.clientWidth, view.element.clientHeight];
    const key = `${k}@${this.state.opacity}`;
    let slice = this.drawn.get(key);
    if (!slice && this.state.on) {
      let values;
      try {
        values = await this.sliceOf(k);
      } catch (error) {
        view.element.dataset.overlayError = errorMessage(error);
        return;
      }
      if (token !== this.token) return; // a newer frame is drawing
      slice = sliceCanvas(header, values, this.state.opacity, this.state.outline);
      this.drawn.clear(); // one slice at one opacity at a time
      this.drawn.set(key, slice);
    }
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const context = canvas.getContext("2d");
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (!this.state.on || !slice) return;
    // The label voxel (i, j) covers the image voxel (i, j): the image's own spacing places it.
    const at = (x, y) => view.viewport.worldToCanvas(pixelToWorld(view.header, [x, y], k, this.half));
    const [o, u, v] = [at(0, 0), at(1, 0), at(0, 1)];
    context.setTransform(
      ratio * (u[0] - o[0]), ratio * (u[1] - o[1]),
      ratio * (v[0] - o[0]), ratio * (v[1] - o[1]),
      ratio * o[0], ratio * o[1],
    ); // prettier-ignore
    context.imageSmoothingEnabled = false;
    context.drawImage(slice.canvas, 0, 0);
    view.element.dataset.overlayVoxels = String(slice.voxels);
  }

  destroy() {
    this.view.element.removeEventListener(Enums.Events.IMAGE_RENDERED, this.onRender);
    this.canvas.remove();
  }
}

/**
 * The label overlay of a mount (options.overlay), or null without one. Returns {destroy}.
 * `maxWholeBytes`: past it the label is fetched slice by slice, as the images are.
 */
export async function createOverlay(views, overlay, root, { maxWholeBytes, half }) {
  if (!overlay) return null;
  const header = overlay.header || (await fetchJSON(overlay.headerUrl));
  const covered = overlay.maps ? COVERED_WITH_MAPS : ["image"];
  const targets = views.filter((view) => covered.includes(view.header.kind) && sameShape(view.header, header));
  if (!targets.length) return null;
  const state = { on: true, opacity: overlay.outline ? OUTLINE_OPACITY : DEFAULT_OPACITY, outline: !!overlay.outline };
  const toggle = el("input", { type: "checkbox", class: "cs-overlay-toggle", checked: true });
  const opacity = el("input", {
    type: "range", class: "cs-overlay-opacity", min: "0", max: "100",
    value: String(state.opacity * 100), "aria-label": `${overlay.label || "Label"} opacity`,
  }); // prettier-ignore
  const control = el("label", { class: "cs-overlay-control" }, toggle, ` ${overlay.label || "Label"} overlay `, opacity);
  root.querySelector(".cs-reset").parentNode.insertBefore(control, root.querySelector(".cs-help"));
  root.dataset.overlay = "on";
  const sliceOf = labelSlices(header, maxWholeBytes);
  const layers = targets.map((view) => new Layer(view, header, sliceOf, state, half));
  const redraw = () => layers.forEach((layer) => layer.draw());
  toggle.addEventListener("change", () => {
    state.on = toggle.checked;
    root.dataset.overlay = state.on ? "on" : "off";
    redraw();
  });
  opacity.addEventListener("input", () => {
    state.opacity = Number(opacity.value) / 100;
    redraw();
  });
  await Promise.all(layers.map((layer) => layer.draw()));
  return { destroy: () => layers.forEach((layer) => layer.destroy()) };
}
