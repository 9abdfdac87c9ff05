// The viewer's pure arithmetic (no Cornerstone, no DOM; node tests in frontend/test/geometry.test.mjs):
// the zoom a drag or a wheel step gives, world ↔ image-pixel coordinates, the voxel under a point,
// a length in mm, which preset (if any) a window is, and the order of cases for previous / next.
//
// World coordinates are the loader's slice geometry: origin (0, 0, k·dz), identity direction,
// spacing (dx, dy) in mm, so a world distance is in mm. The GPU path puts pixel centres at world
// i·dx (vtkImageData), the CPU path pixel corners, hence `half` (0.5 on the GPU, 0 on the CPU).

export const MIN_ZOOM = 0.1;
export const MAX_ZOOM = 40;
// A drag of this many CSS pixels zooms by e (100 px: 1.65×, 20 px: 1.105×).
export const DRAG_PIXELS_PER_E = 200;
// One wheel notch (a deltaY of 100) zooms by this factor.
export const WHEEL_STEP = 1.15;

const clampZoom = (zoom) => Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom));

/** The zoom after a drag of `dy` CSS pixels (down zooms in) from a drag that started at `startZoom`. */
export function dragZoom(startZoom, dy) {
  return clampZoom(startZoom * Math.exp(dy / DRAG_PIXELS_PER_E));
}

/** The zoom after a wheel turn of `deltaY` (the DOM's: 100 a notch, negative away from the user, which zooms in). */
export function wheelZoom(zoom, deltaY) {
  return clampZoom(zoom * WHEEL_STEP ** (-deltaY / 100));
}

function inPlane(header) {
  const [dy, dx] = header.spacing.slice(-2); // per spatial axis: [dz,] dy, dx (mm)
  const dz = header.slices > 1 ? header.spacing[0] : 1;
  return { dx, dy, dz };
}

/** Image-pixel coordinates [x (column), y (row)] of a world point, 0 at the image's top-left corner. */
export function worldToPixel(header, world, half) {
  const { dx, dy } = inPlane(header);
  return [world[0] / dx + half, world[1] / dy + half];
}

/** The world point of image-pixel coordinates [x, y] on slice `slice`. */
export function pixelToWorld(header, [x, y], slice, half) {
  const { dx, dy, dz } = inPlane(header);
  return [(x - half) * dx, (y - half) * dy, slice * dz];
}

/**
 * The voxel under a world point on slice `slice`: {column, row, slice, offset} (offset: its index in
 * the slice's row-major H × W values), or null outside the image.
 */
export function voxelAt(header, world, slice, half) {
  const [x, y] = worldToPixel(header, world, half);
  const column = Math.floor(x);
  const row = Math.floor(y);
  if (!(column >= 0 && column < header.columns && row >= 0 && row < header.rows)) return null;
  return { column, row, slice, offset: row * header.columns + column };
}

/** The distance between two world points, in mm (world units are mm). */
export function lengthMm(a, b) {
  return Math.hypot(b[0] - a[0], b[1] - a[1], (b[2] ?? 0) - (a[2] ?? 0));
}

/** The distance between two image-pixel points [x, y] of one slice with the header's spacing, in mm. */
export function pixelLengthMm(header, p, q) {
  const { dx, dy } = inPlane(header);
  return Math.hypot((q[0] - p[0]) * dx, (q[1] - p[1]) * dy);
}

/**
 * Which of `presets` ({lower, upper}) the window `voi` is: `preferred` (the menu's current choice) when
 * it matches, else the first that matches, else -1 (a window of the reader's own: "custom"). Windows
 * match within a millionth of the preset's width (the GPU's round trip through float32).
 */
export function presetIndexOf(presets, voi, preferred = -1) {
  const matches = (p) => {
    const tolerance = Math.max(Math.abs(p.upper - p.lower), 1e-12) * 1e-6;
    return Math.abs(voi.lower - p.lower) <= tolerance && Math.abs(voi.upper - p.upper) <= tolerance;
  };
  if (presets[preferred] && matches(presets[preferred])) return preferred;
  return presets.findIndex(matches);
}

/** A label value's overlay colour [r, g, b] (0 … 255); 0 (background) is null. */
export function labelColour(value) {
  const palette = [
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
  ];
  const v = Math.round(value);
  if (!Number.isFinite(value) || v === 0) return null;
  return palette[(Math.abs(v) - 1) % palette.length];
}

/**
 * The outline of one label slice (rows × columns, row-major): each labelled voxel with a 4-neighbour of
 * another label (or the slice's edge) keeps its label, every other voxel becomes 0. Drawn over a map
 * (an SD or error map), the outline leaves the map's values inside the region visible.
 */
export function labelOutline(values, rows, columns) {
  const out = new Float32Array(values.length);
  const label = (i) => (Number.isFinite(values[i]) ? Math.round(values[i]) : 0);
  for (let r = 0; r < rows; r += 1) {
    for (let c = 0; c < columns; c += 1) {
      const i = r * columns + c;
      const v = label(i);
      if (v === 0) continue;
      const edge =
        r === 0 || c === 0 || r === rows - 1 || c === columns - 1 ||
        label(i - columns) !== v || label(i + columns) !== v || label(i - 1) !== v || label(i + 1) !== v; // prettier-ignore
      if (edge) out[i] = v;
    }
  }
  return out;
}

/**
 * The RGBA bytes (H × W × 4) of one label slice as an overlay: each non-zero label in its colour at
 * `opacity` (0 … 1), background transparent.
 */
export function labelRGBA(values, opacity) {
  const out = new Uint8ClampedArray(values.length * 4);
  const alpha = Math.round(Math.min(1, Math.max(0, opacity)) * 255);
  for (let i = 0; i < values.length; i += 1) {
    const colour = labelColour(values[i]);
    if (!colour) continue;
    out.set(colour, i * 4);
    out[i * 4 + 3] = alpha;
  }
  return out;
}
