// Creating the viewer: Cornerstone's one-time set-up, the toolbar and viewport elements, the
// rendering engine (GPU, else CPU), the navigation tools, and each viewport's readout
// (data-slice, data-slices, data-voi, data-zoom, data-rendered on its element).
import {
  Enums,
  RenderingEngine,
  getShouldUseCPURendering,
  init as initCore,
  setUseCPURendering,
} from "@cornerstonejs/core";
import {
  Enums as ToolEnums,
  LengthTool,
  PanTool,
  ProbeTool,
  RectangleROITool,
  ToolGroupManager,
  WindowLevelTool,
  addTool,
  init as initTools,
} from "@cornerstonejs/tools";

import { el } from "../static/js/dom.js";
import { presetIndexOf } from "./geometry.js";
import { prefetchAround, setImageWindow } from "./loader.js";
import { GentleZoomTool, WheelTool } from "./tools.js";

const { MouseBindings, KeyboardBindings } = ToolEnums;

const DEFAULT_HELP =
  "Left drag: window/level · Right drag: zoom · Middle or Shift+drag: pan · Wheel: slices (2D: zoom) · ↑/↓, PgUp/PgDn: slices";

// viewportId → the shown values' range (max − min), for the window/level drag speed.
const dataRanges = new Map();

// Window/level whose drag speed follows the array's value range (a 256-pixel drag spans it),
// not Cornerstone's CT-oriented default (which barely moves a [0, 1] image, and in CPU
// rendering jumps by thousands).
export class RangeWindowLevelTool extends WindowLevelTool {
  static toolName = "MedgenWindowLevel";

  _getMultiplierFromDynamicRange(viewport, volumeId) {
    const range = dataRanges.get(viewport.id);
    return range > 0 ? range / 256 : super._getMultiplierFromDynamicRange(viewport, volumeId);
  }
}

export function setDataRange(viewportId, range) {
  if (range === null) dataRanges.delete(viewportId);
  else dataRanges.set(viewportId, range);
}

const TOOLS = [RangeWindowLevelTool, PanTool, GentleZoomTool, WheelTool, LengthTool];
// The marking tools (annotate: true): kind → Cornerstone tool.
export const MARK_TOOLS = { point: ProbeTool, box: RectangleROITool };

// Cornerstone is set up once per page; mounts then only number themselves.
let initialised = false;
let cpuReason = "";
let mounts = 0;

// Set Cornerstone up (once) and return this mount's id.
export function initialise(renderer) {
  if (!initialised) {
    // Core init itself falls back to CPU rendering when the browser has no WebGL.
    initCore(renderer === "cpu" ? { rendering: { useCPURendering: true } } : undefined);
    if (renderer === "cpu") {
      setUseCPURendering(true, false);
      cpuReason = "requested";
    } else if (getShouldUseCPURendering()) {
      cpuReason = "WebGL unavailable";
    }
    initTools();
    TOOLS.forEach((Tool) => addTool(Tool));
    Object.values(MARK_TOOLS).forEach((Tool) => addTool(Tool));
    initialised = true;
  }
  mounts += 1;
  return `medgen-${mounts}`;
}

export const isCpu = () => getShouldUseCPURendering();

function rendererLabel() {
  return isCpu() ? `CPU rendering (${cpuReason || "fallback"})` : "GPU (WebGL)";
}

function viewportCell(spec, index, id) {
  const element = el("div", {
    class: "cs-viewport",
    tabindex: "0",
    "data-index": String(index),
    "data-label": spec.label,
    "data-voi-group": spec.voiGroup || `own-${index}`,
    "aria-label": spec.label,
  });
  element.addEventListener("contextmenu", (event) => event.preventDefault());
  element.addEventListener("mousedown", () => element.focus({ preventScroll: true }));
  const preset = el("select", { class: "cs-preset", "aria-label": `Window preset for ${spec.label}` });
  const info = el("span", { class: "cs-info" });
  const figure = el("figure", { class: "cs-cell" }, element,
    el("figcaption", {}, el("strong", { text: spec.label }), " ", preset, " ", info));
  return { spec, index, element, preset, info, figure, viewportId: `${id}-vp${index}` };
}

/**
 * Replace `container`'s content with the viewer's toolbar and one cell per viewport spec.
 * Returns {root, rendererNode, resetButton, cells}; each cell is {spec, index, element, preset,
 * info, viewportId}. The root carries data-ready="0" until the mount is done.
 */
export function buildLayout(container, specs, { id, resetKey, help, columns }) {
  container.replaceChildren();
  const rendererNode = el("span", { class: "cs-renderer", text: "" });
  const resetLabel = resetKey ? `Reset (${resetKey.toUpperCase()})` : "Reset";
  const resetButton = el("button", { type: "button", class: "cs-reset", text: resetLabel });
  const toolbar = el("div", { class: "cs-toolbar" }, resetButton,
    el("span", { class: "cs-help", text: help ?? DEFAULT_HELP }), rendererNode);
  const grid = el("div", { class: "cs-grid" });
  grid.style.setProperty("--cs-columns", String(Math.min(Math.max(specs.length, 1), columns || 5)));
  const root = el("div", { class: "cs-viewer", "data-ready": "0" }, toolbar, grid);
  container.append(root);
  const cells = specs.map((spec, index) => viewportCell(spec, index, id));
  cells.forEach((cell) => grid.append(cell.figure));
  return { root, rendererNode, resetButton, cells };
}

function viewportInputs(cells) {
  return cells.map((cell) => ({
    viewportId: cell.viewportId,
    type: Enums.ViewportType.STACK,
    element: cell.element,
    defaultOptions: { background: [0, 0, 0] },
  }));
}

function newEngine(id, cells) {
  const engine = new RenderingEngine(id);
  engine.setViewports(viewportInputs(cells));
  return engine;
}

// The engine kept from mount to mount by mounts that ask for it (keepEngine: the reader workspace
// mounts every item anew): a new engine and its WebGL context cost about 300 ms under SwiftShader,
// the bulk of showing the next item.
let keptEngine = null;

function freshEngine(id, cells) {
  try {
    return newEngine(id, cells);
  } catch (error) {
    // A WebGL context that cannot be created (or is lost at once): draw on the CPU instead.
    console.warn("GPU rendering failed, falling back to CPU rendering", error);
    cpuReason = "WebGL failed";
    setUseCPURendering(true, false);
    return newEngine(`${id}-cpu`, cells);
  }
}

/**
 * The rendering engine with a stack viewport per cell; records the renderer on the root and its
 * toolbar. keep: reuse the engine a former keep mount left (its viewports replaced), else keep this one.
 */
export function createEngine(id, cells, { root, rendererNode }, { keep = false } = {}) {
  let engine;
  if (keep && keptEngine && !keptEngine.hasBeenDestroyed) {
    engine = keptEngine;
    engine.setViewports(viewportInputs(cells));
  } else {
    engine = freshEngine(id, cells);
    if (keep) keptEngine = engine;
  }
  root.dataset.renderer = isCpu() ? "cpu" : "gpu";
  rendererNode.textContent = rendererLabel();
  return engine;
}

// A mount's end for its engine: a kept engine only loses the mount's viewports, another is destroyed.
export function releaseEngine(engine, viewportIds) {
  if (engine !== keptEngine) {
    engine.destroy();
    return;
  }
  viewportIds.forEach((viewportId) => {
    if (engine.getViewport(viewportId)) engine.disableElement(viewportId);
  });
}

// The navigation tools on every viewport: left drag window/level, middle or Shift+left pan,
// right zoom (calm: tools.js), wheel slices (a 2D image: zoom).
export function createToolGroup(toolGroupId, views, engineId) {
  const toolGroup = ToolGroupManager.createToolGroup(toolGroupId);
  TOOLS.forEach((Tool) => toolGroup.addTool(Tool.toolName));
  toolGroup.setToolActive(RangeWindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  toolGroup.setToolActive(PanTool.toolName, {
    bindings: [
      { mouseButton: MouseBindings.Auxiliary },
      { mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Shift },
    ],
  });
  toolGroup.setToolActive(GentleZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  toolGroup.setToolActive(WheelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  toolGroup.setToolPassive(LengthTool.toolName); // measure.js makes it the primary button's
  views.forEach((view) => toolGroup.addViewport(view.viewportId, engineId));
  return toolGroup;
}

export function destroyToolGroup(toolGroupId) {
  ToolGroupManager.destroyToolGroup(toolGroupId);
}

function fmt(value) {
  return Number(value).toPrecision(6).replace(/\.?0+(e|$)/, "$1");
}

// Write what a viewport shows onto its element (data-*) and its caption.
export function describe(view) {
  const voi = view.viewport.getProperties().voiRange || { lower: 0, upper: 0 };
  const index = view.viewport.getCurrentImageIdIndex();
  view.element.dataset.slice = String(index);
  view.element.dataset.slices = String(view.header.slices);
  view.element.dataset.voi = `${fmt(voi.lower)},${fmt(voi.upper)}`;
  view.element.dataset.zoom = Number(view.viewport.getZoom()).toFixed(4);
  // The menu names the window shown: a preset, or "custom" once dragged (or kept from another item).
  const preset = presetIndexOf(view.presets, voi, Number(view.preset.value));
  view.preset.value = preset >= 0 ? String(preset) : "custom";
  view.element.dataset.preset = view.preset.value;
  const width = voi.upper - voi.lower;
  const slice = view.header.slices > 1 ? `slice ${index + 1}/${view.header.slices} · ` : "";
  view.info.textContent = `${slice}W ${fmt(width)} L ${fmt(voi.lower + width / 2)}`;
}

// Fill a viewport's preset list: "name: lower … upper" per preset.
export function fillPresets(view) {
  view.presets.forEach((p, j) => {
    const range = `${Number(p.lower.toPrecision(3))} … ${Number(p.upper.toPrecision(3))}`;
    view.preset.append(el("option", { value: String(j), text: `${p.name}: ${range}` }));
  });
  view.preset.append(el("option", { value: "custom", text: "custom", hidden: true }));
}

/**
 * Show a view's stack at its middle slice with its starting window (view.start, else its first preset), and keep its readout current
 * as it renders, scrolls, zooms or changes window. `onKey(event, view)` gets its keydown,
 * `onPreset(view, index)` its preset list's choice.
 */
export async function showStack(view, { onKey, onPreset }) {
  const { element, viewport } = view;
  if (view.lazy) prefetchAround(view.imageIds, view.middle);
  await viewport.setStack(view.imageIds, view.middle);
  const p = view.start || view.presets[0]; // the mount's starting window (initialView), else the first preset
  viewport.setProperties({ voiRange: { lower: p.lower, upper: p.upper } });
  const presetIndex = view.presets.indexOf(p);
  view.preset.value = presetIndex >= 0 ? String(presetIndex) : "custom";
  element.dataset.rendered = "0";
  element.addEventListener(Enums.Events.IMAGE_RENDERED, () => {
    element.dataset.rendered = String(Number(element.dataset.rendered) + 1);
    describe(view);
  });
  element.addEventListener(Enums.Events.VOI_MODIFIED, (event) => {
    view.voi = { ...event.detail.range };
    describe(view);
  });
  element.addEventListener(Enums.Events.STACK_NEW_IMAGE, (event) => {
    // CPU rendering starts each new slice from the image's own window (read right after
    // this event): hand it the current one, so scrolling keeps the window as on the GPU.
    if (view.voi && isCpu() && event.detail.image) setImageWindow(event.detail.image, view.voi);
    if (view.lazy) prefetchAround(view.imageIds, event.detail.imageIdIndex ?? viewport.getCurrentImageIdIndex());
    describe(view);
  });
  element.addEventListener(Enums.Events.CAMERA_MODIFIED, () => describe(view));
  view.preset.addEventListener("change", () => onPreset(view, Number(view.preset.value)));
  element.addEventListener("keydown", (event) => onKey(event, view));
  describe(view);
}

// Resolves once every viewport has drawn at least one frame (or after 5 s, so the page still settles).
export function waitForRender(views) {
  return new Promise((resolve) => {
    const deadline = Date.now() + 5000;
    const check = () => {
      if (views.every((view) => Number(view.element.dataset.rendered) > 0) || Date.now() > deadline) resolve();
      else setTimeout(check, 50);
    };
    check();
  });
}
