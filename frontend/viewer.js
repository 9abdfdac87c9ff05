// MedGen Eval image viewer: synchronised Cornerstone3D StackViewports over the array endpoints.
//
//   import { mountViewers } from "/static/viewer/viewer.js";
//   const viewer = await mountViewers(element, {
//     viewports: [{ label: "Input", headerUrl: "/api/arrays/case-images/3/", voiGroup: "image",
//                   // or header: {...} inline, as the header endpoint would return it
//                   // bytes: a promise of the whole array's ArrayBuffer, when the page prefetched it
//                   windowLeader: false }, ...],
//     sync: true,            // VOI (within a voiGroup), zoom/pan and slice across all viewports
//     renderer: "auto",      // or "cpu" to force the CPU fallback
//     maxWholeBytes: 33554432, // larger arrays load slice by slice (else data-max-whole-bytes)
//     resetKey: "r",         // the key that resets the view (null: none, for pages that use R)
//     help: "…",             // the toolbar's hint text, for pages with key bindings of their own
//     columns: 5,            // the most viewports per row
//     frameOfReferenceUID: "medgen-frame",
//     annotate: false,       // true: point and box marks (reader studies), see below
//     initialView: null,     // {preset (index) | voi {lower, upper}, zoom, pan}: the first frame's view
//     keepEngine: false,     // true: keep the rendering engine for the next such mount (the reader
//                            // workspace mounts each item anew: a new engine costs ~300 ms)
//     overlay: null,         // {headerUrl | header, label, outline, maps}: a label drawn in colour over
//                            // the images of its shape (its edges only with `outline`; over the error
//                            // and SD maps too with `maps`), with a toggle and an opacity slider (overlay.js)
//     measure: true,         // the length tool (measure.js); never with annotate
//     onMarksChange: (marks) => {},
//   });
//
// The modules: loader.js (headers, whole arrays or slice by slice, prefetch and cache), mount.js
// (Cornerstone set-up, elements, engine, tools, each viewport's caption), tools.js (calm zoom, the
// wheel), sync.js (VOI, zoom/pan and slice synchronisers), controls.js (presets, reset, keys),
// marks.js (marking), readout.js (the value under the cursor), overlay.js (the label overlay),
// measure.js (lengths in mm), geometry.js (their arithmetic, tested in node: frontend/test/).
//
// For tests and other scripts, every viewport element carries data-slice, data-slices,
// data-voi ("lower,upper"), data-zoom, data-preset (the menu's: an index or "custom"), data-rendered,
// data-readout-index / data-readout-value (under the cursor) and data-loading ("whole" | "slices";
// plus data-error when a slice could not be fetched); the viewer root carries
// data-renderer ("gpu" | "cpu") and data-ready="1" once every image is shown.
//
// With annotate: true the controller also has setMarkTool("point" | "box" | null), getMarks(),
// setMarks(marks), clearMarks() and removeLastMark() (marks.js says what a mark is);
// onMarksChange(marks) runs whenever they change, and the viewer root carries data-marks (their
// count) and data-mark-tool.
import { errorMessage } from "../static/js/dom.js";
import { createControls } from "./controls.js";
import { fetchHeaders, loadStack, maxWholeBytesOf, releaseImages } from "./loader.js";
import { createMarks } from "./marks.js";
import { createMeasure } from "./measure.js";
import { createOverlay } from "./overlay.js";
import { createReadouts } from "./readout.js";
import {
  buildLayout,
  createEngine,
  createToolGroup,
  describe,
  destroyToolGroup,
  fillPresets,
  initialise,
  isCpu,
  releaseEngine,
  setDataRange,
  showStack,
  waitForRender,
} from "./mount.js";
import { createSynchronizers, windowLeaders } from "./sync.js";

export { DEFAULT_MAX_WHOLE_BYTES } from "./loader.js";

function settingsOf(options) {
  return {
    specs: options.viewports || [],
    sync: options.sync !== false,
    renderer: options.renderer || "auto",
    frameOfReferenceUID: options.frameOfReferenceUID || "medgen-frame",
    resetKey: options.resetKey === undefined ? "r" : options.resetKey,
    keepEngine: Boolean(options.keepEngine),
  };
}

// A lazy slice that could not be fetched: said on the viewport (data-error) and in its caption.
function sliceErrorReporter(cell) {
  return (error, k) => {
    console.error(`slice ${k} of ${cell.spec.label}`, error);
    cell.element.dataset.error = errorMessage(error);
    cell.info.textContent = `slice ${k + 1} could not be loaded: ${cell.element.dataset.error}`;
  };
}

// The window a view starts from: initialView's values, else its preset (by index), else the first preset.
function startWindow(initialView, presets) {
  if (initialView?.voi) return { ...presets[0], name: "kept", ...initialView.voi };
  return presets[initialView?.preset ?? 0] || presets[0];
}

// Every cell's header, presets (its window group's leader's), starting window and stack.
async function loadCells(cells, container, options, frameOfReferenceUID) {
  const headers = await fetchHeaders(cells.map((cell) => cell.spec));
  const presets = windowLeaders(cells).map((leader) => headers[leader].presets);
  const starts = presets.map((list) => startWindow(options.initialView, list));
  const maxWholeBytes = maxWholeBytesOf(options.maxWholeBytes, container);
  const stacks = await Promise.all(
    cells.map((cell, i) =>
      loadStack(headers[i], {
        frameOfReferenceUID,
        window: starts[i],
        maxWholeBytes,
        onError: sliceErrorReporter(cell),
        bytes: cell.spec.bytes, // the whole array fetched ahead (a promise), if the page did
      }),
    ),
  );
  return cells.map((cell, i) => ({ header: headers[i], presets: presets[i], start: starts[i], ...stacks[i] }));
}

// A view: a cell with its viewport, header, presets, stack and current window.
function makeView(cell, loaded, engine) {
  const view = {
    ...cell,
    ...loaded,
    viewport: engine.getViewport(cell.viewportId),
    middle: Math.floor(loaded.header.slices / 2),
    voi: null,
  };
  fillPresets(view);
  setDataRange(view.viewportId, loaded.header.range.max - loaded.header.range.min);
  view.element.dataset.loading = view.lazy ? "slices" : "whole";
  return view;
}

// initialView's zoom and pan, before the first frame (so it never shows the default first).
function showInitialCamera(views, initialView) {
  if (!initialView) return;
  views.forEach(({ viewport }) => {
    if (Number.isFinite(initialView.zoom) && initialView.zoom > 0) viewport.setZoom(initialView.zoom);
    if (Array.isArray(initialView.pan)) viewport.setPan(initialView.pan);
  });
}

// The controller's destroy(): this mount's tools, marks, synchronisers and cached slices go with it.
function destroyMount(container, controller, parts) {
  const { views, engine, toolGroupId, marks, synchronizerList, onResize, extras } = parts;
  window.removeEventListener("resize", onResize);
  marks?.destroy();
  extras.forEach((extra) => extra?.destroy());
  synchronizerList.forEach((synchronizer) => synchronizer.destroy());
  destroyToolGroup(toolGroupId);
  releaseEngine(engine, views.map((view) => view.viewportId));
  views.forEach((view) => {
    setDataRange(view.viewportId, null);
    releaseImages(view.imageIds);
  });
  if (container.medgenViewer === controller) delete container.medgenViewer;
  container.replaceChildren();
}

/**
 * Mount synchronised stack viewports into `container` (its content is replaced).
 * Returns a controller: { viewports, elements, reset(), setPreset(index, presetIndex), renderer, destroy() },
 * plus the marks methods (setMarkTool, getMarks, setMarks, clearMarks, removeLastMark) with annotate: true.
 * destroy() leaves nothing behind (tools, synchronisers, marks, cached slices): mount again freely.
 */
export async function mountViewers(container, options) {
  const { specs, sync, renderer, frameOfReferenceUID, resetKey, keepEngine } = settingsOf(options);
  const id = initialise(renderer);
  const layout = buildLayout(container, specs, { id, resetKey, help: options.help, columns: options.columns });
  const loaded = await loadCells(layout.cells, container, options, frameOfReferenceUID);
  const engine = createEngine(id, layout.cells, layout, { keep: keepEngine });
  const views = layout.cells.map((cell, i) => makeView(cell, loaded[i], engine));
  const controls = createControls(views, { sync, resetKey });
  for (const view of views) {
    await showStack(view, { onKey: controls.onKey, onPreset: (v, presetIndex) => controls.setPreset(v.index, presetIndex) });
  }
  showInitialCamera(views, options.initialView);
  const toolGroupId = `${id}-tools`;
  const toolGroup = createToolGroup(toolGroupId, views, engine.id);
  const marks = options.annotate ? createMarks(views, toolGroup, layout.root, options.onMarksChange) : null;
  const measure = options.annotate || options.measure === false ? null : createMeasure(views, toolGroup, layout.root);
  const half = isCpu() ? 0 : 0.5; // where the renderer puts pixel centres (geometry.js)
  const readouts = { destroy: createReadouts(views, half) };
  const synchronizerList = createSynchronizers(id, engine.id, views, sync);
  layout.resetButton.addEventListener("click", controls.reset);
  const onResize = () => engine.resize(true, true);
  window.addEventListener("resize", onResize);

  engine.render();
  await waitForRender(views);
  const maxWholeBytes = maxWholeBytesOf(options.maxWholeBytes, container);
  const overlay = await createOverlay(views, options.overlay, layout.root, { maxWholeBytes, half }).catch((error) => {
    console.error("label overlay", error); // the images stay; the overlay is said missing on the root
    layout.root.dataset.overlayError = errorMessage(error);
    return null;
  });
  views.forEach(describe);
  layout.root.dataset.ready = "1";

  const controller = {
    viewports: views.map((view) => view.viewport),
    elements: views.map((view) => view.element),
    renderer: layout.root.dataset.renderer,
    reset: controls.reset,
    setPreset: controls.setPreset,
    ...(marks ? marks.api : {}),
  };
  const parts = { views, engine, toolGroupId, marks, synchronizerList, onResize, extras: [measure, readouts, overlay] };
  controller.destroy = () => destroyMount(container, controller, parts);
  container.medgenViewer = controller;
  return controller;
}
