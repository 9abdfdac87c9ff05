// MedGen Eval image viewer: synchronised Cornerstone3D StackViewports over the array endpoints.
//
//   import { mountViewers } from "/static/viewer/viewer.js";
//   const viewer = await mountViewers(element, {
//     viewports: [{ label: "Input", headerUrl: "/api/arrays/case-images/3/", voiGroup: "image",
//                   // or header: {...} inline, as the header endpoint would return it
//                   windowLeader: false }, ...],
//     sync: true,            // VOI (within a voiGroup), zoom/pan and slice across all viewports
//     renderer: "auto",      // or "cpu" to force the CPU fallback
//     maxWholeBytes: 33554432, // larger arrays load slice by slice (else data-max-whole-bytes)
//     resetKey: "r",         // the key that resets the view (null: none, for pages that use R)
//     help: "…",             // the toolbar's hint text, for pages with key bindings of their own
//     annotate: false,       // true: point and box marks (reader studies), see below
//     onMarksChange: (marks) => {},
//   });
//
// Each array arrives as a JSON header (shape, spacing, slices, window presets, data_url) and
// raw little-endian float32 bytes. An array whose whole size (the header's whole_bytes) is at
// most maxWholeBytes (default 32 MiB; the option or data-max-whole-bytes on the container)
// arrives in one request and every slice becomes a local image through
// imageLoader.createAndCacheLocalImage; a larger one is fetched slice by slice (?slice=k)
// by a "medgenslice:" image loader as the viewport shows each slice, with neighbours
// prefetched and fetched slices cached. There is no DICOM parsing and no codec in the browser.
//
// For tests and other scripts, every viewport element carries data-slice, data-slices,
// data-voi ("lower,upper"), data-zoom, data-rendered and data-loading ("whole" | "slices"; plus
// data-error when a slice could not be fetched); the viewer root carries
// data-renderer ("gpu" | "cpu") and data-ready="1" once every image is shown.
//
// With annotate: true the viewer also takes marks (hallucination marking): Cornerstone's
// ProbeTool (points) and RectangleROITool (boxes). The controller then has
// setMarkTool("point" | "box" | null), getMarks(), setMarks(marks), clearMarks() and
// removeLastMark(); marks are {type: "point", slice, points: [[x, y]]} or {type: "box",
// slice, points: [[x0, y0], [x1, y1]]} in image pixels (x column, y row, 0 … columns/rows
// from the image's top-left corner; slice: index in the stack). onMarksChange(marks) runs
// whenever they change, and the viewer root carries data-marks (their count) and
// data-mark-tool.
import {
  Enums,
  RenderingEngine,
  cache,
  eventTarget,
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
  ProbeTool,
  RectangleROITool,
  annotation as annotationApi,
  utilities as toolUtilities,
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
const MARK_TOOLS = { point: ProbeTool, box: RectangleROITool };
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
  Object.values(MARK_TOOLS).forEach((Tool) => addTool(Tool));
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
    throw Object.assign(new Error(detail), { status: response.status });
  }
  return response;
}

// A volume whose whole float32 array is larger than this is loaded slice by slice (?slice=k)
// as the viewport shows it; smaller ones in one request. Overridden per page by
// data-max-whole-bytes on the container or the maxWholeBytes option of mountViewers.
export const DEFAULT_MAX_WHOLE_BYTES = 32 * 1024 * 1024;
// Slices on each side of the shown one fetched ahead in lazy stacks.
const PREFETCH_NEIGHBOURS = 2;
const LAZY_SCHEME = "medgenslice";

function wholeBytes(header) {
  return header.whole_bytes ?? header.rows * header.columns * header.slices * 4;
}

// Image-plane, pixel and series metadata of slice k, as createAndCacheLocalImage registers them
// (StackViewport and the slice synchroniser read every slice's position before it is loaded).
function sliceGeometry(header, k, frameOfReferenceUID) {
  const [dy, dx] = header.spacing.slice(-2); // per spatial axis: [dz,] dy, dx (mm)
  const dz = header.slices > 1 ? header.spacing[0] : 1;
  return {
    dimensions: [header.columns, header.rows],
    spacing: [dx, dy],
    origin: [0, 0, k * dz],
    direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    frameOfReferenceUID,
  };
}

// The image's own window, in DICOM's LINEAR convention (C.11.2.1.2: width and centre offset
// by 1), which is how Cornerstone turns it back into the [lower, upper] range: the first
// frame (GPU and CPU paths alike) starts from it.
function setImageWindow(image, window) {
  image.windowWidth = window.upper - window.lower + 1;
  image.windowCenter = (window.lower + window.upper + 1) / 2;
}

// One request for the whole array (a volume is D × H × W, C order), then one local image per slice.
async function loadWholeStack(header, frameOfReferenceUID, window) {
  const buffer = await (await fetchOk(header.data_url, "application/octet-stream")).arrayBuffer();
  const perSlice = header.rows * header.columns;
  const all = new Float32Array(buffer);
  if (all.length !== perSlice * header.slices) {
    throw new Error(`expected ${perSlice * header.slices} values, got ${all.length}`);
  }
  const imageIds = [];
  for (let k = 0; k < header.slices; k += 1) {
    const imageId = `medgen:${header.data_url}#${k}`;
    if (!cache.getImageLoadObject(imageId)) {
      // Local images get image-plane and pixel metadata; StackViewport also reads the series' modality.
      utilities.genericMetadataProvider.add(imageId, { type: "generalSeriesModule", metadata: { modality: "OT" } });
      const image = imageLoader.createAndCacheLocalImage(imageId, {
        scalarData: all.slice(k * perSlice, (k + 1) * perSlice),
        targetBuffer: { type: "Float32Array" },
        ...sliceGeometry(header, k, frameOfReferenceUID),
      });
      setImageWindow(image, window);
    }
    imageIds.push(imageId);
  }
  return imageIds;
}

// Lazy stacks: image id `medgenslice:<data_url>#<k>` → what its loader needs.
const lazySlices = new Map();
let lazyLoaderRegistered = false;

// The image loader of lazy stacks: fetches ?slice=k and returns the image object that
// createAndCacheLocalImage would have made (Cornerstone caches it: each slice is fetched once).
function loadLazySlice(imageId) {
  const entry = lazySlices.get(imageId);
  const promise = (async () => {
    if (!entry) throw new Error(`unknown image ${imageId}`);
    const { header, k, window, onError } = entry;
    const separator = header.data_url.includes("?") ? "&" : "?";
    try {
      const response = await fetchOk(`${header.data_url}${separator}slice=${k}`, "application/octet-stream");
      const pixels = new Float32Array(await response.arrayBuffer());
      if (pixels.length !== header.rows * header.columns) {
        throw new Error(`slice ${k}: expected ${header.rows * header.columns} values, got ${pixels.length}`);
      }
      return makeImage(imageId, pixels, header, window);
    } catch (error) {
      onError(error, k);
      throw error;
    }
  })();
  return { promise, cancelFn: () => {} };
}

function makeImage(imageId, pixels, header, window) {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < pixels.length; i += 1) {
    const v = pixels[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!(min <= max)) min = max = 0; // all NaN
  const [dy, dx] = header.spacing.slice(-2);
  const voxelManager = utilities.VoxelManager.createImageVoxelManager({
    width: header.columns,
    height: header.rows,
    numberOfComponents: 1,
    scalarData: pixels,
    id: imageId,
  });
  const image = {
    imageId,
    intercept: 0,
    slope: 1,
    windowCenter: 0,
    windowWidth: 0,
    color: false,
    numberOfComponents: 1,
    dataType: "Float32Array",
    minPixelValue: min,
    maxPixelValue: max,
    rows: header.rows,
    columns: header.columns,
    height: header.rows,
    width: header.columns,
    columnPixelSpacing: dx,
    rowPixelSpacing: dy,
    invert: false,
    getCanvas: undefined,
    rgba: undefined,
    getPixelData: () => voxelManager.getScalarData(),
    voxelManager,
    sizeInBytes: pixels.byteLength,
  };
  setImageWindow(image, window);
  return image;
}

// Image ids only (with each slice's metadata); the StackViewport loads a slice when it shows it.
function lazyStack(header, frameOfReferenceUID, window, onError) {
  if (!lazyLoaderRegistered) {
    imageLoader.registerImageLoader(LAZY_SCHEME, loadLazySlice);
    lazyLoaderRegistered = true;
  }
  const imageIds = [];
  for (let k = 0; k < header.slices; k += 1) {
    const imageId = `${LAZY_SCHEME}:${header.data_url}#${k}`;
    if (!lazySlices.has(imageId)) {
      const geometry = sliceGeometry(header, k, frameOfReferenceUID);
      const [columns, rows] = geometry.dimensions;
      const [columnPixelSpacing, rowPixelSpacing] = geometry.spacing;
      const { add } = utilities.genericMetadataProvider;
      add(imageId, { type: "generalSeriesModule", metadata: { modality: "OT" } });
      add(imageId, {
        type: "imagePlaneModule",
        metadata: {
          frameOfReferenceUID,
          rows,
          columns,
          imageOrientationPatient: geometry.direction,
          rowCosines: geometry.direction.slice(0, 3),
          columnCosines: geometry.direction.slice(3, 6),
          imagePositionPatient: geometry.origin,
          pixelSpacing: [rowPixelSpacing, columnPixelSpacing],
          rowPixelSpacing,
          columnPixelSpacing,
        },
      });
      add(imageId, {
        type: "imagePixelModule",
        metadata: {
          samplesPerPixel: 1,
          photometricInterpretation: "MONOCHROME2",
          rows,
          columns,
          bitsAllocated: 32,
          bitsStored: 32,
          highBit: 31,
        },
      });
    }
    lazySlices.set(imageId, { header, k, window, onError });
    imageIds.push(imageId);
  }
  return imageIds;
}

// Fetch (and cache) the neighbours of slice `index` of a lazy stack ahead of scrolling.
function prefetchAround(imageIds, index) {
  for (let d = 1; d <= PREFETCH_NEIGHBOURS; d += 1) {
    for (const k of [index + d, index - d]) {
      if (k < 0 || k >= imageIds.length || cache.getImageLoadObject(imageIds[k])) continue;
      imageLoader.loadAndCacheImage(imageIds[k], { priority: 0, requestType: "prefetch" }).catch(() => {});
    }
  }
}

/**
 * Mount synchronised stack viewports into `container` (its content is replaced).
 * Returns a controller: { viewports, reset(), setPreset(index, presetIndex), renderer, destroy() },
 * plus the marks methods (setMarkTool, getMarks, setMarks, clearMarks, removeLastMark) with annotate: true.
 * destroy() leaves nothing behind (tools, synchronisers, marks, cached slices): mount again freely.
 */
export async function mountViewers(container, options) {
  const specs = options.viewports || [];
  const sync = options.sync !== false;
  const renderer = options.renderer || "auto";
  const frameOfReferenceUID = options.frameOfReferenceUID || "medgen-frame";
  const resetKey = options.resetKey === undefined ? "r" : options.resetKey;
  initialise(renderer);
  mounts += 1;
  const id = `medgen-${mounts}`;

  container.replaceChildren();
  const rendererNode = el("span", { class: "cs-renderer", text: "" });
  const resetLabel = resetKey ? `Reset (${resetKey.toUpperCase()})` : "Reset";
  const resetButton = el("button", { type: "button", class: "cs-reset", text: resetLabel });
  const toolbar = el(
    "div",
    { class: "cs-toolbar" },
    resetButton,
    el("span", {
      class: "cs-help",
      text:
        options.help ??
        "Left drag: window/level · Right drag: zoom · Middle or Shift+drag: pan · Wheel, ↑/↓, PgUp/PgDn: slices",
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

  // A viewport may come with its header inline (the reader workspace gets it with the item): no request.
  const headers = await Promise.all(
    cells.map((cell) =>
      cell.spec.header
        ? Promise.resolve(cell.spec.header)
        : fetchOk(cell.spec.headerUrl, "application/json").then((r) => r.json()),
    ),
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
  const configured = Number(options.maxWholeBytes ?? container.dataset.maxWholeBytes);
  const maxWholeBytes = Number.isFinite(configured) && configured >= 0 ? configured : DEFAULT_MAX_WHOLE_BYTES;
  const lazy = headers.map((header) => wholeBytes(header) > maxWholeBytes);
  const stacks = await Promise.all(
    headers.map((header, i) => {
      const first = presetsOf[i][0];
      const onError = (error, k) => {
        console.error(`slice ${k} of ${cells[i].spec.label}`, error);
        cells[i].element.dataset.error = String(error && error.message ? error.message : error);
        cells[i].info.textContent = `slice ${k + 1} could not be loaded: ${cells[i].element.dataset.error}`;
      };
      if (lazy[i]) return lazyStack(header, frameOfReferenceUID, first, onError);
      // A server whose limit (MEDGEN_VIEWER_MAX_ARRAY_BYTES) is below our threshold answers 413: go by slices.
      return loadWholeStack(header, frameOfReferenceUID, first).catch((error) => {
        if (error.status !== 413) throw error;
        lazy[i] = true;
        return lazyStack(header, frameOfReferenceUID, first, onError);
      });
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
    cell.element.dataset.loading = lazy[i] ? "slices" : "whole";
    return { ...cell, header, viewport, middle, presets, imageIds: stacks[i], lazy: lazy[i], voi: null };
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
    if (s.lazy) prefetchAround(s.imageIds, s.middle);
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
      if (s.lazy) prefetchAround(s.imageIds, event.detail.imageIdIndex ?? s.viewport.getCurrentImageIdIndex());
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
  const marks = options.annotate ? createMarks(state, toolGroup, root, options.onMarksChange) : null;

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
    } else if (resetKey && event.key.toLowerCase() === resetKey.toLowerCase()) {
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
    ...(marks ? marks.api : {}),
    // Safe to mount again afterwards: this mount's tools, marks and cached slices go with it.
    destroy() {
      window.removeEventListener("resize", onResize);
      marks?.destroy();
      synchronizerList.forEach((s) => s.destroy());
      ToolGroupManager.destroyToolGroup(toolGroupId);
      engine.destroy();
      state.forEach((s) => {
        dataRanges.delete(s.viewportId);
        s.imageIds.forEach((imageId) => {
          lazySlices.delete(imageId);
          try {
            if (cache.getImageLoadObject(imageId)) cache.removeImageLoadObject(imageId, { force: true });
          } catch (_) {
            /* already evicted */
          }
        });
      });
      if (container.medgenViewer === controller) delete container.medgenViewer;
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

// --- Marks (annotate: true) ------------------------------------------------------------

// Pixel coordinates (x column, y row, 0 at the image's top-left corner) of a world point, as
// the inverse of sliceGeometry: origin (0, 0, k·dz), identity direction, spacing (dx, dy).
// The GPU path puts pixel centres at world i·dx (vtkImageData), the CPU path pixel corners
// (canvasToWorldCPU), hence `half`. Not utilities.worldToImageCoords: it divides the
// distance along a row by the row spacing, which is wrong for non-square pixels.
function worldToPixel(header, world, half) {
  const [dy, dx] = header.spacing.slice(-2);
  return [world[0] / dx + half, world[1] / dy + half];
}

function pixelToWorld(header, [x, y], slice, half) {
  const [dy, dx] = header.spacing.slice(-2);
  const dz = header.slices > 1 ? header.spacing[0] : 1;
  return [(x - half) * dx, (y - half) * dy, slice * dz];
}

const round2 = (v) => Math.round(v * 100) / 100;
const clamp = (v, low, high) => Math.min(high, Math.max(low, v));

// Marks on this mount's viewports: Cornerstone keeps annotations in one global state, so this
// keeps the UIDs of ours (in the order they were made) and reads them back as pixel marks.
function createMarks(state, toolGroup, root, onChange) {
  const half = getShouldUseCPURendering() ? 0 : 0.5;
  const owner = new Map(); // imageId → viewport state
  state.forEach((s) => s.imageIds.forEach((imageId) => owner.set(imageId, s)));
  const toolNames = Object.fromEntries(Object.entries(MARK_TOOLS).map(([kind, Tool]) => [Tool.toolName, kind]));
  const uids = [];
  let last = "[]";
  let quiet = false;

  // Readers need the shapes only: no value or area text boxes, no statistics.
  toolGroup.addTool(ProbeTool.toolName, { getTextLines: () => undefined, handleRadius: "4" });
  toolGroup.addTool(RectangleROITool.toolName, { getTextLines: () => [], calculateStats: false });
  Object.values(MARK_TOOLS).forEach((Tool) => toolGroup.setToolPassive(Tool.toolName));
  root.dataset.marks = "0";
  root.dataset.markTool = "";

  const ours = (a) => a && toolNames[a.metadata?.toolName] && owner.has(a.metadata.referencedImageId);

  // An annotation → a mark, or null when it lies wholly outside the image (or is a box of no area).
  function toMark(a) {
    const s = owner.get(a.metadata.referencedImageId);
    const slice = s.imageIds.indexOf(a.metadata.referencedImageId);
    const { rows, columns } = s.header;
    const points = a.data.handles.points.map((p) => worldToPixel(s.header, p, half));
    const inside = (v) => (x) => x >= 0 && x <= v;
    const pixel = ([x, y]) => [round2(clamp(x, 0, columns)), round2(clamp(y, 0, rows))];
    if (toolNames[a.metadata.toolName] === "point") {
      const [x, y] = points[0];
      return inside(columns)(x) && inside(rows)(y) ? { type: "point", slice, points: [pixel([x, y])] } : null;
    }
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const low = pixel([Math.min(...xs), Math.min(...ys)]);
    const high = pixel([Math.max(...xs), Math.max(...ys)]);
    return high[0] - low[0] >= 0.5 && high[1] - low[1] >= 0.5 ? { type: "box", slice, points: [low, high] } : null;
  }

  function getMarks() {
    return uids
      .map((uid) => annotationApi.state.getAnnotation(uid))
      .filter(Boolean)
      .map(toMark)
      .filter(Boolean);
  }

  function render() {
    toolUtilities.triggerAnnotationRenderForViewportIds(state.map((s) => s.viewportId));
  }

  function notify() {
    if (quiet) return;
    const marks = getMarks();
    root.dataset.marks = String(marks.length);
    const json = JSON.stringify(marks);
    if (json === last) return; // stats refreshes re-fire "modified" with nothing moved
    last = json;
    onChange?.(marks);
  }

  const listeners = {
    [ToolEnums.Events.ANNOTATION_COMPLETED]: (event) => {
      const a = event.detail.annotation;
      if (!ours(a) || uids.includes(a.annotationUID)) return;
      if (!toMark(a)) {
        annotationApi.state.removeAnnotation(a.annotationUID); // a click beside the image, a box of no area
        render();
        return;
      }
      uids.push(a.annotationUID);
      notify();
    },
    [ToolEnums.Events.ANNOTATION_MODIFIED]: (event) => {
      if (uids.includes(event.detail.annotation?.annotationUID)) notify();
    },
    [ToolEnums.Events.ANNOTATION_REMOVED]: (event) => {
      const index = uids.indexOf(event.detail.annotation?.annotationUID);
      if (index < 0) return;
      uids.splice(index, 1);
      notify();
    },
  };
  Object.entries(listeners).forEach(([name, listener]) => eventTarget.addEventListener(name, listener));

  function removeAll() {
    quiet = true;
    [...uids].forEach((uid) => annotationApi.state.removeAnnotation(uid));
    uids.length = 0;
    quiet = false;
  }

  const api = {
    setMarkTool(kind) {
      const Tool = kind ? MARK_TOOLS[kind] : null;
      if (kind && !Tool) throw new Error(`unknown mark tool ${kind}`);
      Object.values(MARK_TOOLS).forEach((T) => T !== Tool && toolGroup.setToolPassive(T.toolName));
      const primary = { bindings: [{ mouseButton: MouseBindings.Primary }] };
      if (Tool) {
        toolGroup.setToolPassive(RangeWindowLevelTool.toolName);
        toolGroup.setToolActive(Tool.toolName, primary);
      } else {
        toolGroup.setToolActive(RangeWindowLevelTool.toolName, primary);
      }
      root.dataset.markTool = kind || "";
    },
    getMarks,
    clearMarks() {
      removeAll();
      render();
      notify();
    },
    removeLastMark() {
      const uid = uids.at(-1);
      if (!uid) return;
      annotationApi.state.removeAnnotation(uid);
      render();
    },
    // Re-create marks (a restored draft) on the first viewport; returns those it could place.
    setMarks(marks) {
      removeAll();
      const s = state[0];
      for (const mark of marks || []) {
        const imageId = s.imageIds[mark.slice ?? 0];
        const Tool = MARK_TOOLS[mark.type];
        if (!imageId || !Tool || !Array.isArray(mark.points)) continue;
        const world = mark.points.map((p) => pixelToWorld(s.header, p, mark.slice ?? 0, half));
        let points = world;
        if (mark.type === "box") {
          // Corners 0 and 3 are opposite, 1 and 2 the others (as RectangleROITool draws them).
          const [[x0, y0, z], [x1, y1]] = world;
          points = [[x0, y0, z], [x1, y0, z], [x0, y1, z], [x1, y1, z]];
        }
        const annotationUID = utilities.uuidv4();
        Tool.hydrate(s.viewportId, points, {
          annotationUID,
          referencedImageId: imageId,
          toolInstance: toolGroup.getToolInstance(Tool.toolName),
        });
        uids.push(annotationUID);
      }
      const restored = getMarks();
      last = JSON.stringify(restored);
      root.dataset.marks = String(restored.length);
      render();
      return restored;
    },
  };

  return {
    api,
    destroy() {
      Object.entries(listeners).forEach(([name, listener]) => eventTarget.removeEventListener(name, listener));
      removeAll();
    },
  };
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
