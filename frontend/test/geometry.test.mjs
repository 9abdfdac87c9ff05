// The viewer's arithmetic (zoom, voxel under the cursor, length in mm, presets, label colours):  node --test frontend/test/
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MAX_ZOOM,
  MIN_ZOOM,
  dragZoom,
  labelColour,
  labelOutline,
  labelRGBA,
  lengthMm,
  pixelLengthMm,
  pixelToWorld,
  presetIndexOf,
  voxelAt,
  wheelZoom,
  worldToPixel,
} from "../geometry.js";

const close = (a, b, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} ≠ ${b}`);

test("a drag zooms by exp(dy / 200): gently, and the same whatever the steps", () => {
  close(dragZoom(1, 20), Math.exp(0.1)); // 1.105×, not Cornerstone's 1.47×
  close(dragZoom(1, 100), 1.6487212707);
  close(dragZoom(2, -100), 2 / 1.6487212707);
  close(dragZoom(1, 0), 1);
  // Proportional: two drags of 50 px make one of 100 px.
  close(dragZoom(dragZoom(1, 50), 50), dragZoom(1, 100));
  assert.equal(dragZoom(1, 1e6), MAX_ZOOM);
  assert.equal(dragZoom(1, -1e6), MIN_ZOOM);
});

test("a wheel notch zooms by 1.15×, towards the user zooms out", () => {
  close(wheelZoom(1, -100), 1.15);
  close(wheelZoom(1, 100), 1 / 1.15);
  close(wheelZoom(1, -300), 1.15 ** 3);
  assert.equal(wheelZoom(39, -100), MAX_ZOOM);
});

const VOLUME = { spacing: [3, 0.5, 0.8], rows: 4, columns: 5, slices: 6 };
const IMAGE = { spacing: [0.5, 0.8], rows: 4, columns: 5, slices: 1 };

test("world and pixel coordinates round-trip with the spacing (dy, dx) and the renderer's half pixel", () => {
  for (const half of [0, 0.5]) {
    const world = pixelToWorld(VOLUME, [2.25, 1.5], 3, half);
    close(world[0], (2.25 - half) * 0.8);
    close(world[1], (1.5 - half) * 0.5);
    close(world[2], 9); // slice 3 × 3 mm
    const [x, y] = worldToPixel(VOLUME, world, half);
    close(x, 2.25);
    close(y, 1.5);
  }
  close(pixelToWorld(IMAGE, [0, 0], 0, 0)[2], 0); // a 2D image: dz is 1, slice 0
});

test("the voxel under a point: column, row and offset in the slice, null outside", () => {
  // GPU: pixel centres at i·dx, so world (0, 0) is the centre of voxel (0, 0).
  assert.deepEqual(voxelAt(VOLUME, [0, 0, 0], 2, 0.5), { column: 0, row: 0, slice: 2, offset: 0 });
  assert.deepEqual(voxelAt(VOLUME, [3 * 0.8, 2 * 0.5, 0], 2, 0.5), { column: 3, row: 2, slice: 2, offset: 13 });
  assert.deepEqual(voxelAt(VOLUME, [3.99 * 0.8, 3.99 * 0.5, 0], 0, 0), { column: 3, row: 3, slice: 0, offset: 18 });
  assert.equal(voxelAt(VOLUME, [-0.01, 0, 0], 0, 0), null);
  assert.equal(voxelAt(VOLUME, [5 * 0.8, 0, 0], 0, 0), null); // past the last column
  assert.equal(voxelAt(VOLUME, [0, 4 * 0.5, 0], 0, 0), null);
  assert.equal(voxelAt(VOLUME, [NaN, 0, 0], 0, 0), null);
});

test("lengths in mm: world distance, and pixel distance with anisotropic spacing", () => {
  close(lengthMm([0, 0, 0], [3, 4, 0]), 5);
  close(lengthMm([1, 1], [1, 1]), 0);
  close(pixelLengthMm(IMAGE, [0, 0], [10, 0]), 8); // 10 columns × 0.8 mm
  close(pixelLengthMm(IMAGE, [0, 0], [0, 10]), 5); // 10 rows × 0.5 mm
  close(pixelLengthMm(IMAGE, [1, 1], [4, 5]), Math.hypot(3 * 0.8, 4 * 0.5));
});

const PRESETS = [
  { lower: 0.1, upper: 0.9 },
  { lower: 0.2, upper: 0.8 },
  { lower: 0.1, upper: 0.9 }, // the same window twice: the menu's choice wins
];

test("a window is the menu's preset when it matches, another matching preset, or custom (-1)", () => {
  assert.equal(presetIndexOf(PRESETS, { lower: 0.2, upper: 0.8 }), 1);
  assert.equal(presetIndexOf(PRESETS, { lower: 0.1, upper: 0.9 }, 2), 2);
  assert.equal(presetIndexOf(PRESETS, { lower: 0.1, upper: 0.9 }, 1), 0);
  assert.equal(presetIndexOf(PRESETS, { lower: 0.1 + 1e-9, upper: 0.9 - 1e-9 }), 0); // float32 round trip
  assert.equal(presetIndexOf(PRESETS, { lower: 0.15, upper: 0.9 }), -1);
  assert.equal(presetIndexOf([], { lower: 0, upper: 1 }), -1);
});

test("label colours: background transparent, each label its colour at the opacity", () => {
  assert.equal(labelColour(0), null);
  assert.equal(labelColour(NaN), null);
  assert.deepEqual(labelColour(1), [230, 25, 75]);
  assert.deepEqual(labelColour(2), [60, 180, 75]);
  assert.deepEqual(labelColour(11), labelColour(1)); // the palette repeats
  const rgba = labelRGBA(new Float32Array([0, 1, 2]), 0.5);
  assert.deepEqual([...rgba.slice(0, 4)], [0, 0, 0, 0]);
  assert.deepEqual([...rgba.slice(4, 8)], [230, 25, 75, 128]);
  assert.deepEqual([...rgba.slice(8, 12)], [60, 180, 75, 128]);
  assert.equal(labelRGBA(new Float32Array([1]), 2)[3], 255);
});

test("a label's outline keeps the voxels on its edge and clears its inside", () => {
  // A 5 × 5 slice with a 3 × 3 square of label 1 at its centre: the outline is the square's 8 edge voxels.
  const values = new Float32Array(25);
  for (let r = 1; r <= 3; r += 1) for (let c = 1; c <= 3; c += 1) values[r * 5 + c] = 1;
  const outline = labelOutline(values, 5, 5);
  assert.equal(outline[2 * 5 + 2], 0);
  assert.equal([...outline].filter((v) => v === 1).length, 8);
  assert.equal(outline[0], 0);
  // A region touching the slice's edge keeps its voxels there; two labels side by side each keep their border.
  const full = labelOutline(new Float32Array([1, 1, 1, 1, 2, 2, 1, 2, 2]), 3, 3);
  assert.deepEqual([...full], [1, 1, 1, 1, 2, 2, 1, 2, 2]);
  assert.equal(labelOutline(new Float32Array([0, NaN, 0, 0]), 2, 2).every((v) => v === 0), true);
});
