// Synchronisation between a mount's viewports: the window (VOI) within each voiGroup, zoom/pan
// and the slice position across all of them.
import { Enums, getRenderingEngine } from "@cornerstonejs/core";
import { SynchronizerManager, synchronizers } from "@cornerstonejs/tools";

import { isCpu } from "./mount.js";

/**
 * The index of the cell whose presets (and so starting window) each cell takes: viewports of one
 * VOI group share one window, that of the member marked windowLeader (e.g. the reference), else
 * of the first member, so synchronised images start alike.
 */
export function windowLeaders(cells) {
  const leaders = new Map();
  cells.forEach((cell, i) => {
    const group = cell.element.dataset.voiGroup;
    if (!leaders.has(group) || (cell.spec.windowLeader && !cells[leaders.get(group)].spec.windowLeader)) {
      leaders.set(group, i);
    }
  });
  return cells.map((cell) => leaders.get(cell.element.dataset.voiGroup));
}

// The members of `view`'s window group (itself included; only itself without sync).
export function groupOf(views, view, sync) {
  const group = view.element.dataset.voiGroup;
  return views.filter((other) => other === view || (sync && other.element.dataset.voiGroup === group));
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

function voiSynchronizers(id, engineId, views) {
  const groups = new Map();
  views.forEach((view) => {
    const group = view.element.dataset.voiGroup;
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(view);
  });
  return [...groups]
    .filter(([, members]) => members.length > 1)
    .map(([group, members]) => {
      const voi = synchronizers.createVOISynchronizer(`${id}-voi-${group}`, { syncInvertState: false, syncColormap: false });
      members.forEach((view) => voi.add({ renderingEngineId: engineId, viewportId: view.viewportId }));
      return voi;
    });
}

/**
 * Cornerstone synchronisers for `views` (none with sync off or a single viewport): one VOI
 * synchroniser per window group of two or more, one zoom/pan and one slice synchroniser (the
 * latter over the volumes only). Returns them, for destroy().
 */
export function createSynchronizers(id, engineId, views, sync) {
  if (!sync || views.length < 2) return [];
  const vois = voiSynchronizers(id, engineId, views);
  const zoomPan = isCpu()
    ? SynchronizerManager.createSynchronizer(`${id}-zoompan`, Enums.Events.CAMERA_MODIFIED, cpuZoomPanSync)
    : synchronizers.createZoomPanSynchronizer(`${id}-zoompan`);
  const slices = synchronizers.createImageSliceSynchronizer(`${id}-slice`);
  views.forEach((view) => {
    zoomPan.add({ renderingEngineId: engineId, viewportId: view.viewportId });
    if (view.header.slices > 1) slices.add({ renderingEngineId: engineId, viewportId: view.viewportId });
  });
  return [...vois, zoomPan, slices];
}
