// Getting arrays into Cornerstone: the JSON headers, then the float32 bytes, either the whole
// array in one request (every slice becomes a local image through createAndCacheLocalImage) or,
// for an array over the whole-array threshold, slice by slice (?slice=k) through the
// "medgenslice:" image loader as the viewport shows each slice, with neighbours prefetched and
// fetched slices cached. No DICOM parsing and no codec in the browser.
import { cache, imageLoader, utilities } from "@cornerstonejs/core";

import { fetchBytes, fetchJSON } from "../static/js/dom.js";

// A volume whose whole float32 array is larger than this is loaded slice by slice (?slice=k)
// as the viewport shows it; smaller ones in one request. Overridden per page by
// data-max-whole-bytes on the container or the maxWholeBytes option of mountViewers.
export const DEFAULT_MAX_WHOLE_BYTES = 32 * 1024 * 1024;
// Slices on each side of the shown one fetched ahead in lazy stacks.
const PREFETCH_NEIGHBOURS = 2;
const LAZY_SCHEME = "medgenslice";

// Lazy stacks: image id `medgenslice:<data_url>#<k>` → what its loader needs ({header, k, window, onError}).
const lazySlices = new Map();
let lazyLoaderRegistered = false;
// imageId → the slice's values as fetched, for the readout: under CPU rendering an image's own pixel
// data no longer holds the array's values once shown (the readout read 5409 for −0.0084 there).
const fetchedValues = new Map();

/** Slice values (float32, H × W) of an image of a stack, as the array holds them, or null. */
export function valuesOf(imageId) {
  return fetchedValues.get(imageId) || null;
}

// Each viewport's header: inline (the reader workspace gets it with the item: no request) or fetched.
export function fetchHeaders(specs) {
  return Promise.all(specs.map((spec) => (spec.header ? Promise.resolve(spec.header) : fetchJSON(spec.headerUrl))));
}

// The whole-array threshold in bytes: the option, else the container's data-max-whole-bytes, else the default.
export function maxWholeBytesOf(option, container) {
  const configured = Number(option ?? container.dataset.maxWholeBytes);
  return Number.isFinite(configured) && configured >= 0 ? configured : DEFAULT_MAX_WHOLE_BYTES;
}

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
export function setImageWindow(image, window) {
  image.windowWidth = window.upper - window.lower + 1;
  image.windowCenter = (window.lower + window.upper + 1) / 2;
}

// One request for the whole array (a volume is D × H × W, C order), then one local image per slice.
// `bytes`: the array's bytes fetched ahead (a promise of an ArrayBuffer: the reader workspace
// prefetches the next item), else fetched now.
async function loadWholeStack(header, frameOfReferenceUID, window, bytes) {
  const fetched = bytes ? await bytes.catch(() => fetchBytes(header.data_url)) : await fetchBytes(header.data_url);
  const all = new Float32Array(fetched);
  const perSlice = header.rows * header.columns;
  if (all.length !== perSlice * header.slices) {
    throw new Error(`expected ${perSlice * header.slices} values, got ${all.length}`);
  }
  const imageIds = [];
  for (let k = 0; k < header.slices; k += 1) {
    const imageId = `medgen:${header.data_url}#${k}`;
    fetchedValues.set(imageId, all.subarray(k * perSlice, (k + 1) * perSlice));
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

// The image loader of lazy stacks: fetches ?slice=k and returns the image object that
// createAndCacheLocalImage would have made (Cornerstone caches it: each slice is fetched once).
function loadLazySlice(imageId) {
  const entry = lazySlices.get(imageId);
  const promise = (async () => {
    if (!entry) throw new Error(`unknown image ${imageId}`);
    const { header, k, window, onError } = entry;
    const separator = header.data_url.includes("?") ? "&" : "?";
    try {
      const pixels = new Float32Array(await fetchBytes(`${header.data_url}${separator}slice=${k}`));
      if (pixels.length !== header.rows * header.columns) {
        throw new Error(`slice ${k}: expected ${header.rows * header.columns} values, got ${pixels.length}`);
      }
      fetchedValues.set(imageId, pixels);
      return makeImage(imageId, pixels.slice(), header, window);
    } catch (error) {
      onError(error, k);
      throw error;
    }
  })();
  return { promise, cancelFn: () => {} };
}

function valueRange(pixels) {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < pixels.length; i += 1) {
    const v = pixels[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return min <= max ? [min, max] : [0, 0]; // all NaN
}

function makeImage(imageId, pixels, header, window) {
  const [min, max] = valueRange(pixels);
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

// The metadata a local image would get, registered ahead for a slice that is not loaded yet.
function addSliceMetadata(imageId, geometry) {
  const [columns, rows] = geometry.dimensions;
  const [columnPixelSpacing, rowPixelSpacing] = geometry.spacing;
  const { add } = utilities.genericMetadataProvider;
  add(imageId, { type: "generalSeriesModule", metadata: { modality: "OT" } });
  add(imageId, {
    type: "imagePlaneModule",
    metadata: {
      frameOfReferenceUID: geometry.frameOfReferenceUID,
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

// Image ids only (with each slice's metadata); the StackViewport loads a slice when it shows it.
function lazyStack(header, frameOfReferenceUID, window, onError) {
  if (!lazyLoaderRegistered) {
    imageLoader.registerImageLoader(LAZY_SCHEME, loadLazySlice);
    lazyLoaderRegistered = true;
  }
  const imageIds = [];
  for (let k = 0; k < header.slices; k += 1) {
    const imageId = `${LAZY_SCHEME}:${header.data_url}#${k}`;
    if (!lazySlices.has(imageId)) addSliceMetadata(imageId, sliceGeometry(header, k, frameOfReferenceUID));
    lazySlices.set(imageId, { header, k, window, onError });
    imageIds.push(imageId);
  }
  return imageIds;
}

/**
 * The image ids of one array's stack: {imageIds, lazy}. Whole in one request when it is at most
 * maxWholeBytes, else lazy (slice by slice); a server whose own limit (MEDGEN_VIEWER_MAX_ARRAY_BYTES)
 * is lower answers 413 to the whole request, and the stack goes lazy too. `window` ({lower, upper})
 * is every image's starting window; onError(error, k) hears of a lazy slice that failed; `bytes` (a
 * promise of the whole array's ArrayBuffer) stands for the whole request when the caller prefetched it
 * (a failed prefetch falls back to the request).
 */
export async function loadStack(header, { frameOfReferenceUID, window, maxWholeBytes, onError, bytes }) {
  if (wholeBytes(header) > maxWholeBytes) {
    return { imageIds: lazyStack(header, frameOfReferenceUID, window, onError), lazy: true };
  }
  try {
    return { imageIds: await loadWholeStack(header, frameOfReferenceUID, window, bytes), lazy: false };
  } catch (error) {
    if (error.status !== 413) throw error;
    return { imageIds: lazyStack(header, frameOfReferenceUID, window, onError), lazy: true };
  }
}

// Fetch (and cache) the neighbours of slice `index` of a lazy stack ahead of scrolling.
export function prefetchAround(imageIds, index) {
  for (let d = 1; d <= PREFETCH_NEIGHBOURS; d += 1) {
    for (const k of [index + d, index - d]) {
      if (k < 0 || k >= imageIds.length || cache.getImageLoadObject(imageIds[k])) continue;
      imageLoader.loadAndCacheImage(imageIds[k], { priority: 0, requestType: "prefetch" }).catch(() => {});
    }
  }
}

// Forget a stack's images (cached pixels and lazy entries), so a later mount starts afresh.
export function releaseImages(imageIds) {
  imageIds.forEach((imageId) => {
    lazySlices.delete(imageId);
    fetchedValues.delete(imageId);
    try {
      if (cache.getImageLoadObject(imageId)) cache.removeImageLoadObject(imageId, { force: true });
    } catch (_) {
      /* already evicted */
    }
  });
}
