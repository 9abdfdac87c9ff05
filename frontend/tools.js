// The viewer's own navigation tools over Cornerstone's: a calm, proportional zoom (right drag; the
// zoom a drag gives is geometry.js's dragZoom, whatever the mouse's step size), and a wheel that
// zooms a 2D image (nothing to scroll) and scrolls the slices of a volume.
import { getEnabledElement } from "@cornerstonejs/core";
import { StackScrollTool, ZoomTool } from "@cornerstonejs/tools";

import { dragZoom, wheelZoom } from "./geometry.js";

function zoomBy(viewport, next) {
  const zoom = next(viewport.getZoom());
  if (!Number.isFinite(zoom) || zoom <= 0) return;
  viewport.setZoom(zoom);
  viewport.render();
}

// Cornerstone's ZoomTool compounds 5/height per pixel of drag (on a 266-pixel tile 20 px zoom 1.47×,
// 100 px 8×): this one multiplies by exp(dy / 200) about the centre.
export class GentleZoomTool extends ZoomTool {
  static toolName = "MedgenZoom";

  constructor(toolProps = {}) {
    super(toolProps);
    this.mouseDragCallback = (evt) => {
      const { viewport } = getEnabledElement(evt.detail.element);
      zoomBy(viewport, (zoom) => dragZoom(zoom, evt.detail.deltaPoints.canvas[1]));
    };
    this.touchDragCallback = this.mouseDragCallback;
  }

  mouseWheelCallback(evt) {
    const { viewport } = getEnabledElement(evt.detail.element);
    zoomBy(viewport, (zoom) => wheelZoom(zoom, evt.detail.wheel.direction * 100));
  }
}

// The wheel: slices of a volume, zoom of a 2D image.
export class WheelTool extends StackScrollTool {
  static toolName = "MedgenWheel";

  mouseWheelCallback(evt) {
    const { viewport } = getEnabledElement(evt.detail.element);
    if (viewport.getImageIds().length > 1) {
      super.mouseWheelCallback(evt);
      return;
    }
    zoomBy(viewport, (zoom) => wheelZoom(zoom, evt.detail.wheel.direction * 100));
  }
}
