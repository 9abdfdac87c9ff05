// Marks (annotate: true, hallucination marking): Cornerstone's ProbeTool (points) and
// RectangleROITool (boxes) on a mount's viewports, read back as marks in image pixels
//   {type: "point", slice, points: [[x, y]]} | {type: "box", slice, points: [[x0, y0], [x1, y1]]}
// (x column, y row, 0 … columns/rows from the image's top-left corner; slice: index in the stack;
// a pixel's centre is at index + ½), with "rating" (1–5, probe studies) once rateLastMark gave one,
// and re-created from such marks (a restored draft). The viewer root carries data-marks (their
// count) and data-mark-tool.
import { eventTarget, utilities } from "@cornerstonejs/core";
import {
  Enums as ToolEnums,
  ProbeTool,
  RectangleROITool,
  annotation as annotationApi,
  utilities as toolUtilities,
} from "@cornerstonejs/tools";

import { pixelToWorld, worldToPixel } from "./geometry.js";
import { MARK_TOOLS, RangeWindowLevelTool, isCpu } from "./mount.js";

const { MouseBindings } = ToolEnums;
const round2 = (v) => Math.round(v * 100) / 100;
const clamp = (v, low, high) => Math.min(high, Math.max(low, v));
const TOOL_KINDS = Object.fromEntries(Object.entries(MARK_TOOLS).map(([kind, Tool]) => [Tool.toolName, kind]));

// worldToPixel / pixelToWorld (geometry.js) are the inverse of the loader's slice geometry. Not
// utilities.worldToImageCoords: it divides the distance along a row by the row spacing, which is
// wrong for non-square pixels.

// An annotation of `view` → a mark, or null when it lies wholly outside the image (or is a box of no area).
function toMark(a, view, half) {
  const mark = toShape(a, view, half);
  if (mark && Number.isInteger(a.data.medgenRating)) mark.rating = a.data.medgenRating;
  return mark;
}

function toShape(a, view, half) {
  const slice = view.imageIds.indexOf(a.metadata.referencedImageId);
  const { rows, columns } = view.header;
  const points = a.data.handles.points.map((p) => worldToPixel(view.header, p, half));
  const inside = (v) => (x) => x >= 0 && x <= v;
  const pixel = ([x, y]) => [round2(clamp(x, 0, columns)), round2(clamp(y, 0, rows))];
  if (TOOL_KINDS[a.metadata.toolName] === "point") {
    const [x, y] = points[0];
    return inside(columns)(x) && inside(rows)(y) ? { type: "point", slice, points: [pixel([x, y])] } : null;
  }
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const low = pixel([Math.min(...xs), Math.min(...ys)]);
  const high = pixel([Math.max(...xs), Math.max(...ys)]);
  return high[0] - low[0] >= 0.5 && high[1] - low[1] >= 0.5 ? { type: "box", slice, points: [low, high] } : null;
}

// The world points Tool.hydrate takes for a mark: a box's four corners, 0 and 3 opposite (as
// RectangleROITool draws them).
function markToWorld(mark, header, half) {
  const world = mark.points.map((p) => pixelToWorld(header, p, mark.slice ?? 0, half));
  if (mark.type !== "box") return world;
  const [[x0, y0, z], [x1, y1]] = world;
  return [[x0, y0, z], [x1, y0, z], [x0, y1, z], [x1, y1, z]];
}

// Choose the tool the primary button drives: a mark tool, or (null) window/level again.
function activateMarkTool(toolGroup, root, kind) {
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
}

// Cornerstone keeps annotations in one global state: this keeps the UIDs of this mount's (in
// the order they were made) and reads them back as pixel marks.
class MarkSet {
  constructor(views, toolGroup, root, onChange) {
    Object.assign(this, { views, toolGroup, root, onChange, uids: [], last: "[]", quiet: false });
    this.half = isCpu() ? 0 : 0.5;
    this.owner = new Map(); // imageId → view
    views.forEach((view) => view.imageIds.forEach((imageId) => this.owner.set(imageId, view)));
  }

  ours(a) {
    return a && TOOL_KINDS[a.metadata?.toolName] && this.owner.has(a.metadata.referencedImageId);
  }

  markOf(a) {
    return toMark(a, this.owner.get(a.metadata.referencedImageId), this.half);
  }

  getMarks() {
    return this.uids
      .map((uid) => annotationApi.state.getAnnotation(uid))
      .filter(Boolean)
      .map((a) => this.markOf(a))
      .filter(Boolean);
  }

  render() {
    toolUtilities.triggerAnnotationRenderForViewportIds(this.views.map((view) => view.viewportId));
  }

  notify() {
    if (this.quiet) return;
    const marks = this.getMarks();
    this.root.dataset.marks = String(marks.length);
    const json = JSON.stringify(marks);
    if (json === this.last) return; // stats refreshes re-fire "modified" with nothing moved
    this.last = json;
    this.onChange?.(marks);
  }

  completed(a) {
    if (!this.ours(a) || this.uids.includes(a.annotationUID)) return;
    if (!this.markOf(a)) {
      annotationApi.state.removeAnnotation(a.annotationUID); // a click beside the image, a box of no area
      this.render();
      return;
    }
    this.uids.push(a.annotationUID);
    this.notify();
  }

  removed(uid) {
    const index = this.uids.indexOf(uid);
    if (index < 0) return;
    this.uids.splice(index, 1);
    this.notify();
  }

  removeAll() {
    this.quiet = true;
    [...this.uids].forEach((uid) => annotationApi.state.removeAnnotation(uid));
    this.uids.length = 0;
    this.quiet = false;
  }

  // Re-create marks on the first viewport; returns those it could place.
  setMarks(marks) {
    this.removeAll();
    const view = this.views[0];
    for (const mark of marks || []) {
      const imageId = view.imageIds[mark.slice ?? 0];
      const Tool = MARK_TOOLS[mark.type];
      if (!imageId || !Tool || !Array.isArray(mark.points)) continue;
      const annotationUID = utilities.uuidv4();
      Tool.hydrate(view.viewportId, markToWorld(mark, view.header, this.half), {
        annotationUID,
        referencedImageId: imageId,
        toolInstance: this.toolGroup.getToolInstance(Tool.toolName),
      });
      this.uids.push(annotationUID);
      const made = annotationApi.state.getAnnotation(annotationUID);
      if (made && Number.isInteger(mark.rating)) made.data.medgenRating = mark.rating;
    }
    const restored = this.getMarks();
    this.last = JSON.stringify(restored);
    this.root.dataset.marks = String(restored.length);
    this.render();
    return restored;
  }
}

/**
 * Marking on a mount's viewports. Returns {api, destroy}: api holds the controller's
 * setMarkTool("point" | "box" | null), getMarks(), setMarks(marks), clearMarks() and
 * removeLastMark(); onChange(marks) runs whenever the marks change.
 */
export function createMarks(views, toolGroup, root, onChange) {
  const set = new MarkSet(views, toolGroup, root, onChange);
  // Readers need the shapes only: no value or area text boxes, no statistics.
  toolGroup.addTool(ProbeTool.toolName, { getTextLines: () => undefined, handleRadius: "4" });
  toolGroup.addTool(RectangleROITool.toolName, { getTextLines: () => [], calculateStats: false });
  Object.values(MARK_TOOLS).forEach((Tool) => toolGroup.setToolPassive(Tool.toolName));
  root.dataset.marks = "0";
  root.dataset.markTool = "";

  const { Events } = ToolEnums;
  const listeners = {
    [Events.ANNOTATION_COMPLETED]: (event) => set.completed(event.detail.annotation),
    [Events.ANNOTATION_MODIFIED]: (event) => set.uids.includes(event.detail.annotation?.annotationUID) && set.notify(),
    [Events.ANNOTATION_REMOVED]: (event) => set.removed(event.detail.annotation?.annotationUID),
  };
  Object.entries(listeners).forEach(([name, listener]) => eventTarget.addEventListener(name, listener));

  const api = {
    setMarkTool: (kind) => activateMarkTool(toolGroup, root, kind),
    getMarks: () => set.getMarks(),
    setMarks: (marks) => set.setMarks(marks),
    clearMarks() {
      set.removeAll();
      set.render();
      set.notify();
    },
    // Probe studies: the current (last placed) mark's rating, 1–5.
    rateLastMark(rating) {
      const a = set.uids.length ? annotationApi.state.getAnnotation(set.uids.at(-1)) : null;
      if (!a || !Number.isInteger(rating) || rating < 1 || rating > 5) return;
      a.data.medgenRating = rating;
      set.notify();
    },
    removeLastMark() {
      const uid = set.uids.at(-1);
      if (!uid) return;
      annotationApi.state.removeAnnotation(uid);
      set.render();
    },
  };
  return {
    api,
    destroy() {
      Object.entries(listeners).forEach(([name, listener]) => eventTarget.removeEventListener(name, listener));
      set.removeAll();
    },
  };
}
