// Mounts the Cornerstone3D viewer (static/viewer/viewer.js, built by `make install`) into
// #viewer. The viewports come from the page's #viewer-config JSON ({viewports, sync, …}) or,
// on pages rendered without it, from #viewer's [data-header-url] children (label,
// voi-group, window-leader; a label or mask marked data-overlay is drawn over the images, not as a
// tile of its own). ?renderer=cpu forces the CPU fallback.
import { el, errorMessage, showError } from "./dom.js";

const host = document.getElementById("viewer");

// The sample picker shows the chosen sample at once (an inline handler would need 'unsafe-inline').
for (const select of document.querySelectorAll("select[data-submit-on-change]")) {
  select.addEventListener("change", () => select.form.submit());
}

function readConfig() {
  const script = document.getElementById("viewer-config");
  if (script) return JSON.parse(script.textContent);
  const items = [...host.querySelectorAll("[data-header-url]")];
  const overlays = items.filter((item) => item.dataset.overlay === "1");
  return {
    sync: true,
    frameOfReferenceUID: host.dataset.frame || "medgen-frame",
    columns: 3,
    overlay: overlays.length ? { headerUrl: overlays[0].dataset.headerUrl, label: overlays[0].dataset.label } : null,
    viewports: items.filter((item) => !overlays.includes(item)).map((item) => ({
      label: item.dataset.label,
      headerUrl: item.dataset.headerUrl,
      voiGroup: item.dataset.voiGroup,
      windowLeader: item.dataset.windowLeader === "1",
    })),
  };
}

const config = readConfig();
if (new URLSearchParams(window.location.search).get("renderer") === "cpu") config.renderer = "cpu";

if (!config.viewports.length) {
  host.replaceChildren(el("p", { class: "empty", text: "Nothing to show for this case." }));
} else {
  try {
    // The bundle is imported on demand: its address (hashed when collected) comes from the page.
    const { mountViewers } = await import(host.dataset.viewerSrc);
    await mountViewers(host, config);
  } catch (error) {
    console.error(error);
    host.dataset.error = errorMessage(error);
    showError(host, `The viewer could not start: ${host.dataset.error}`, { replace: true });
  }
}
