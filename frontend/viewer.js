// MedGen Eval image viewer: synchronised Cornerstone3D StackViewports over the array endpoints.
//
//   import { mountViewers } from "/static/viewer/viewer.js";
//   const viewer = await mountViewers(element, {
//     viewports: [{ label: "Input", headerUrl: "/api/arrays/case-images/3/", voiGroup: "image",
//                   windowLeader: false }, ...],
//     sync: true,            // VOI (within a voiGroup), zoom/pan and slice across all viewports
//     renderer: "auto",      // or "cpu" to force the CPU fallback
//   });
//
// Each array arrives as a JSON header (shape, spacing, slices, window presets, data_url) and
// raw little-endian float32 bytes; every slice becomes a local image through
// imageLoader.createAndCacheLocalImage. There is no DICOM parsing and no codec in the browser.
//
// For tests and other scripts, every viewport element carries data-slice, data-slices,
// data-voi ("lower,upper"), data-zoom and data-rendered; the viewer root carries
// data-renderer ("gpu" | "cpu") and data-ready="1" once every image is shown.
import {
  Enums,
  RenderingEngine,
  cache,
  getRenderingEngine,
  getShouldUseCPURendering,
  imageLoader,
  init as initCore,
  setUseCPURendering,
  utilities,
} from "@cornerstonejs/core";
import {
  Enums as ToolEnums,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  SynchronizerManager,
  addTool,
  init as initTools,
  synchronizers,
} from "@cornerstonejs/tools";

const { createSynchronizer } = SynchronizerManager;

const { MouseBindings, KeyboardBindings } = ToolEnums;

// viewportId → the shown values' range (max − min), for the window/level drag speed.
const dataRanges = new Map();

// Window/level whose drag speed follows the array's value range (a 256-pixel drag spans it),
// not Cornerstone's CT-oriented default (which barely moves a [0, 1] image, and in CPU
// rendering jumps by thousands).
class RangeWindowLevelTool extends WindowLevelTool {
  static toolName = "MedgenWindowLevel";

  _getMultiplierFromDynamicRange(viewport, volumeId) {
    const range = dataRanges.get(viewport.id);
    return range > 0 ? range / 256 : super._getMultiplierFromDynamicRange(viewport, volumeId);
  }
}

const TOOLS = [RangeWindowLevelTool, PanTool, ZoomTool, StackScrollTool];
let initialised = false;
let cpuReason = "";
let mounts = 0;

function initialise(renderer) {
  if (initialised) return;
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
  initialised = true;
}

function rendererLabel() {
  return getShouldUseCPURendering() ? `CPU rendering (${cpuReason || "fallback"})` : "GPU (WebGL)";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  children.forEach((child) => node.append(child));
  return node;
}

function fmt(value) {
  return Number(value).toPrecision(6).replace(/\.?0+(e|$)/, "$1");
}

async function fetchOk(url, kind) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: kind } });
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      detail = (await response.json()).detail || detail;
    } catch (_) {
      /* not JSON */
    }
    throw new Error(detail);
  }
  return response;
}

// One request for the whole array (a volume is D × H × W, C order), then one local image per slice.
async function loadStack(header, frameOfReferenceUID, window) {
  const buffer = await (await fetchOk(header.data_url, "application/octet-stream")).arrayBuffer();
  const rows = header.rows;
  const columns = header.columns;
  const perSlice = rows * columns;
  const all = new Float32Array(buffer);
  if (all.length !== perSlice * header.slices) {
    throw new Error(`expected ${perSlice * header.slices} values, got ${all.length}`);
  }
  const spacing = header.spacing; // per spatial axis: [dz,] dy, dx (mm)
  const [dy, dx] = spacing.slice(-2);
  const dz = header.slices > 1 ? spacing[0] : 1;
  const imageIds = [];
  for (let k = 0; k < header.slices; k += 1) {
    const imageId = `medgen:${header.data_url}#${k}`;
    if (!cache.getImageLoadObject(imageId)) {
      // Local images get image-plane and pixel metadata; StackViewport also reads the series' modality.
      utilities.genericMetadataProvider.add(imageId, { type: "generalSeriesModule", metadata: { modality: "OT" } });
      const image = imageLoader.createAndCacheLocalImage(imageId, {
        scalarData: all.slice(k * perSlice, (k + 1) * perSlice),
        targetBuffer: { type: "Float32Array" },
        dimensions: [columns, rows],
        spacing: [dx, dy],
        origin: [0, 0, k * dz],
        direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
        frameOfReferenceUID,
      });
      // The first frame (GPU and CPU paths alike) starts from the image's own window, given
      // in DICOM's LINEAR convention (C.11.2.1.2: width and centre offset by 1), which is how
      // Cornerstone turns it back into the [lower, upper] range.
      image.windowWidth = window.upper - window.lower + 1;
      image.windowCenter = (window.lower + window.upper + 1) / 2;
    }
    imageIds.push(imageId);
  }
  return imageIds;
}

/**
 * Mount synchronised stack viewports into `container` (its content is replaced).
 * Returns a controller: { viewports, reset(), setPreset(index, presetIndex), renderer, destroy() }.
 */
export async function mountViewers(container, options) {
  const specs = options.viewports || [];
  const sync = options.sync !== false;
  const renderer = options.renderer || "auto";
  const frameOfReferenceUID = options.frameOfReferenceUID || "medgen-frame";
  initialise(renderer);
  mounts += 1;
  const id = `medgen-${mounts}`;

  container.replaceChildren();
  const rendererNode = el("span", { class: "cs-renderer", text: "" });
  const resetButton = el("button", { type: "button", class: "cs-reset", text: "Reset (R)" });
  const toolbar = el(
    "div",
    { class: "cs-toolbar" },
    resetButton,
    el("span", {
      class: "cs-help",
      text: "Left drag: window/level · Right drag: zoom · Middle or Shift+drag: pan · Wheel, ↑/↓, PgUp/PgDn: slices",
    }),
    rendererNode,
  );
  const grid = el("div", { class: "cs-grid" });
  grid.style.setProperty("--cs-columns", String(Math.min(Math.max(specs.length, 1), options.columns || 5)));
  const root = el("div", { class: "cs-viewer", "data-ready": "0" }, toolbar, grid);
  container.append(root);

  const cells = specs.map((spec, index) => {
    const element = el("div", {
      class: "cs-viewport",
      tabindex: "0",
      "data-index": String(index),
      "data-label": spec.label,
      "data-voi-group": spec.voiGroup || `own-${index}`,
      "aria-label": spec.label,
    });
    element.addEventListener("contextmenu", (event) => event.preventDefault());
    const preset = el("select", { class: "cs-preset", "aria-label": `Window preset for ${spec.label}` });
    const info = el("span", { class: "cs-info" });
    const caption = el("figcaption", {}, el("strong", { text: spec.label }), " ", preset, " ", info);
    grid.append(el("figure", { class: "cs-cell" }, element, caption));
    return { spec, index, element, preset, info, viewportId: `${id}-vp${index}` };
  });

  const headers = await Promise.all(
    cells.map((cell) => fetchOk(cell.spec.headerUrl, "application/json").then((r) => r.json())),
  );
  // Viewports of one VOI group share one window: that of the member marked windowLeader
  // (e.g. the reference), else of the first member, so synchronised images start alike.
  const leaders = new Map();
  cells.forEach((cell, i) => {
    const group = cell.element.dataset.voiGroup;
    if (!leaders.has(group) || (cell.spec.windowLeader && !cells[leaders.get(group)].spec.windowLeader)) {
      leaders.set(group, i);
    }
  });
  const presetsOf = cells.map((cell) => headers[leaders.get(cell.element.dataset.voiGroup)].presets);
  const stacks = await Promise.all(
    headers.map((header, i) => {
      const first = presetsOf[i][0];
      return loadStack(header, frameOfReferenceUID, first);
    }),
  );

  let engine;
  try {
    engine = createEngine(id, cells);
  } catch (error) {
    // A WebGL context that cannot be created (or is lost at once): draw on the CPU instead.
    console.warn("GPU rendering failed, falling back to CPU rendering", error);
    cpuReason = "WebGL failed";
    setUseCPURendering(true, false);
    engine = createEngine(`${id}-cpu`, cells);
  }
  root.dataset.renderer = getShouldUseCPURendering() ? "cpu" : "gpu";
  rendererNode.textContent = rendererLabel();

  const state = cells.map((cell, i) => {
    const header = headers[i];
    const viewport = engine.getViewport(cell.viewportId);
    const middle = Math.floor(header.slices / 2);
    const presets = presetsOf[i];
    presets.forEach((p, j) => {
      const range = `${Number(p.lower.toPrecision(3))} … ${Number(p.upper.toPrecision(3))}`;
      cell.preset.append(el("option", { value: String(j), text: `${p.name}: ${range}` }));
    });
    dataRanges.set(cell.viewportId, header.range.max - header.range.min);
    return { ...cell, header, viewport, middle, presets, imageIds: stacks[i], voi: null };
  });

  function describe(s) {
    const voi = s.viewport.getProperties().voiRange || { lower: 0, upper: 0 };
    const index = s.viewport.getCurrentImageIdIndex();
    s.element.dataset.slice = String(index);
    s.element.dataset.slices = String(s.header.slices);
    s.element.dataset.voi = `${fmt(voi.lower)},${fmt(voi.upper)}`;
    s.element.dataset.zoom = Number(s.viewport.getZoom()).toFixed(4);
    const width = voi.upper - voi.lower;
    const slice = s.header.slices > 1 ? `slice ${index + 1}/${s.header.slices} · ` : "";
    s.info.textContent = `${slice}W ${fmt(width)} L ${fmt(voi.lower + width / 2)}`;
  }

  for (const s of state) {
    await s.viewport.setStack(s.imageIds, s.middle);
    const p = s.presets[0];
    s.viewport.setProperties({ voiRange: { lower: p.lower, upper: p.upper } });
    s.element.dataset.rendered = "0";
    s.element.addEventListener(Enums.Events.IMAGE_RENDERED, () => {
      s.element.dataset.rendered = String(Number(s.element.dataset.rendered) + 1);
      describe(s);
    });
    s.element.addEventListener(Enums.Events.VOI_MODIFIED, (event) => {
      s.voi = { ...event.detail.range };
      describe(s);
    });
    s.element.addEventListener(Enums.Events.STACK_NEW_IMAGE, (event) => {
      // CPU rendering starts each new slice from the image's own window (read right after
      // this event): hand it the current one, so scrolling keeps the window as on the GPU.
      if (s.voi && getShouldUseCPURendering() && event.detail.image) {
        event.detail.image.windowWidth = s.voi.upper - s.voi.lower + 1;
        event.detail.image.windowCenter = (s.voi.lower + s.voi.upper + 1) / 2;
      }
      describe(s);
    });
    s.element.addEventListener(Enums.Events.CAMERA_MODIFIED, () => describe(s));
    s.preset.addEventListener("change", () => setPreset(s.index, Number(s.preset.value)));
    s.element.addEventListener("keydown", (event) => onKey(event, s));
    s.element.addEventListener("mousedown", () => s.element.focus({ preventScroll: true }));
    describe(s);
  }

  const toolGroupId = `${id}-tools`;
  const toolGroup = ToolGroupManager.createToolGroup(toolGroupId);
  TOOLS.forEach((Tool) => toolGroup.addTool(Tool.toolName));
  toolGroup.setToolActive(RangeWindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  toolGroup.setToolActive(PanTool.toolName, {
    bindings: [
      { mouseButton: MouseBindings.Auxiliary },
      { mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Shift },
    ],
  });
  toolGroup.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  toolGroup.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  state.forEach((s) => toolGroup.addViewport(s.viewportId, engine.id));

  const synchronizerList = [];
  if (sync && state.length > 1) {
    const groups = new Map();
    state.forEach((s) => {
      const group = s.element.dataset.voiGroup;
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push(s);
    });
    for (const [group, members] of groups) {
      if (members.length < 2) continue;
      const voi = synchronizers.createVOISynchronizer(`${id}-voi-${group}`, {
        syncInvertState: false,
        syncColormap: false,
      });
      members.forEach((s) => voi.add({ renderingEngineId: engine.id, viewportId: s.viewportId }));
      synchronizerList.push(voi);
    }
    const zoomPan = getShouldUseCPURendering()
      ? createSynchronizer(`${id}-zoompan`, Enums.Events.CAMERA_MODIFIED, cpuZoomPanSync)
      : synchronizers.createZoomPanSynchronizer(`${id}-zoompan`);
    const slices = synchronizers.createImageSliceSynchronizer(`${id}-slice`);
    state.forEach((s) => {
      zoomPan.add({ renderingEngineId: engine.id, viewportId: s.viewportId });
      if (s.header.slices > 1) slices.add({ renderingEngineId: engine.id, viewportId: s.viewportId });
    });
    synchronizerList.push(zoomPan, slices);
  }

  function setPreset(index, presetIndex) {
    const s = state[index];
    const p = s.presets[presetIndex] || s.presets[0];
    s.preset.value = String(s.presets.indexOf(p));
    // The group shares its presets: set every member (and its dropdown) directly.
    const group = s.element.dataset.voiGroup;
    state
      .filter((t) => t === s || (sync && t.element.dataset.voiGroup === group))
      .forEach((t) => {
        t.viewport.setProperties({ voiRange: { lower: p.lower, upper: p.upper } });
        t.preset.value = s.preset.value;
        t.viewport.render();
        describe(t);
      });
  }

  function scrollTo(s, target) {
    const index = Math.max(0, Math.min(s.header.slices - 1, target));
    if (index !== s.viewport.getCurrentImageIdIndex()) s.viewport.setImageIdIndex(index);
  }

  function onKey(event, s) {
    const page = Math.max(1, Math.round(s.header.slices / 10));
    const current = s.viewport.getCurrentImageIdIndex();
    const moves = { ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -page, PageDown: page };
    if (event.key in moves) {
      scrollTo(s, current + moves[event.key]);
    } else if (event.key === "Home") {
      scrollTo(s, 0);
    } else if (event.key === "End") {
      scrollTo(s, s.header.slices - 1);
    } else if (event.key === "r" || event.key === "R") {
      reset();
    } else {
      return;
    }
    event.preventDefault();
  }

  function reset() {
    state.forEach((s) => {
      const p = s.presets[0];
      s.preset.value = "0";
      s.viewport.resetCamera();
      s.viewport.setProperties({ voiRange: { lower: p.lower, upper: p.upper } });
      if (s.viewport.getCurrentImageIdIndex() !== s.middle) s.viewport.setImageIdIndex(s.middle);
      s.viewport.render();
      describe(s);
    });
  }
  resetButton.addEventListener("click", reset);

  const onResize = () => engine.resize(true, true);
  window.addEventListener("resize", onResize);
  engine.render();
  await waitForRender(state);
  state.forEach(describe);
  root.dataset.ready = "1";

  const controller = {
    viewports: state.map((s) => s.viewport),
    elements: state.map((s) => s.element),
    renderer: root.dataset.renderer,
    reset,
    setPreset,
    destroy() {
      window.removeEventListener("resize", onResize);
      synchronizerList.forEach((s) => s.destroy());
      ToolGroupManager.destroyToolGroup(toolGroupId);
      engine.destroy();
      container.replaceChildren();
    },
  };
  container.medgenViewer = controller;
  return controller;
}

// Zoom/pan sync for CPU rendering, where the stock callback's pan does not round-trip:
// copy the camera's focal point (world) and scale, which setCamera maps back exactly.
function cpuZoomPanSync(_synchronizer, source, target) {
  const engine = getRenderingEngine(target.renderingEngineId);
  const from = engine.getViewport(source.viewportId);
  const to = engine.getViewport(target.viewportId);
  const { focalPoint, scale } = from.getCamera();
  to.setCamera({ focalPoint, scale });
  to.render();
}

function createEngine(id, cells) {
  const engine = new RenderingEngine(id);
  engine.setViewports(
    cells.map((cell) => ({
      viewportId: cell.viewportId,
      type: Enums.ViewportType.STACK,
      element: cell.element,
      defaultOptions: { background: [0, 0, 0] },
    })),
  );
  return engine;
}

// Resolves once every viewport has drawn at least one frame (or after 5 s, so the page still settles).
function waitForRender(state) {
  return new Promise((resolve) => {
    const deadline = Date.now() + 5000;
    const check = () => {
      if (state.every((s) => Number(s.element.dataset.rendered) > 0) || Date.now() > deadline) resolve();
      else setTimeout(check, 50);
    };
    check();
  });
}
