// The length tool (review pages; not with annotate: the reader's marks own the primary button):
// a toolbar button makes the left drag draw a line (Cornerstone's LengthTool) instead of
// window/level; each line's length is the distance of its ends in world coordinates, which the
// loader's geometry puts in mm with the image's spacing (geometry.js lengthMm). The toolbar shows
// the last length; the viewer root carries data-length (mm) and data-measure ("on" | "").
import { eventTarget } from "@cornerstonejs/core";
import { Enums as ToolEnums, LengthTool, annotation as annotationApi } from "@cornerstonejs/tools";

import { el } from "../static/js/dom.js";
import { lengthMm } from "./geometry.js";
import { RangeWindowLevelTool } from "./mount.js";

const { MouseBindings, Events } = ToolEnums;

/** The length tool's button, readout and annotations on a mount; returns {destroy}. */
export function createMeasure(views, toolGroup, root) {
  const imageIds = new Set(views.flatMap((view) => view.imageIds));
  const uids = [];
  const button = el("button", { type: "button", class: "cs-measure", "aria-pressed": "false", text: "Length" });
  const clearButton = el("button", { type: "button", class: "cs-measure-clear", text: "Clear lengths", disabled: true });
  // Space kept for the length (and the clear button always there, disabled): the toolbar must not
  // reflow mid-drag, which would move the image under the pointer.
  const output = el("span", { class: "cs-length", "aria-live": "polite" });
  root.querySelector(".cs-reset").after(button, clearButton, output);
  root.dataset.measure = "";

  function setOn(on) {
    const primary = { bindings: [{ mouseButton: MouseBindings.Primary }] };
    if (on) {
      toolGroup.setToolPassive(RangeWindowLevelTool.toolName);
      toolGroup.setToolActive(LengthTool.toolName, primary);
    } else {
      toolGroup.setToolPassive(LengthTool.toolName);
      toolGroup.setToolActive(RangeWindowLevelTool.toolName, primary);
    }
    button.setAttribute("aria-pressed", String(on));
    root.dataset.measure = on ? "on" : "";
  }

  const ours = (a) => a?.metadata?.toolName === LengthTool.toolName && imageIds.has(a.metadata.referencedImageId);
  const show = (a) => {
    if (!ours(a)) return;
    if (!uids.includes(a.annotationUID)) uids.push(a.annotationUID);
    const [p, q] = a.data.handles.points;
    const mm = lengthMm(p, q);
    root.dataset.length = String(mm);
    output.textContent = `Length: ${mm.toFixed(2)} mm`;
    clearButton.disabled = false;
  };
  const listeners = {
    [Events.ANNOTATION_COMPLETED]: (event) => show(event.detail.annotation),
    [Events.ANNOTATION_MODIFIED]: (event) => show(event.detail.annotation),
  };
  Object.entries(listeners).forEach(([name, listener]) => eventTarget.addEventListener(name, listener));

  function clear() {
    uids.splice(0).forEach((uid) => annotationApi.state.removeAnnotation(uid));
    delete root.dataset.length;
    output.textContent = "";
    clearButton.disabled = true;
    views.forEach((view) => view.viewport.render());
  }
  button.addEventListener("click", () => setOn(root.dataset.measure !== "on"));
  clearButton.addEventListener("click", clear);

  return {
    destroy() {
      Object.entries(listeners).forEach(([name, listener]) => eventTarget.removeEventListener(name, listener));
      uids.splice(0).forEach((uid) => annotationApi.state.removeAnnotation(uid));
    },
  };
}
