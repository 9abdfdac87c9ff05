// Live progress on the run page: poll the run's API entry until the run is final.
(function () {
  const box = document.getElementById("run-live");
  if (!box || box.dataset.final) return;
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);
  async function poll() {
    try {
      const response = await fetch(box.dataset.api, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const run = await response.json();
        const status = document.getElementById("run-status");
        status.textContent = run.status;
        status.className = "status status-" + run.status;
        document.getElementById("run-progress").textContent = run.progress_done + " / " + run.progress_total;
        document.getElementById("run-bar").style.width = run.progress_percent + "%";
        const error = document.getElementById("run-error");
        error.hidden = !run.error;
        error.textContent = run.error || "";
        if (FINAL.has(run.status)) {
          window.location.reload();
          return;
        }
      }
    } catch (e) {
      /* network blip: try again on the next tick */
    }
    setTimeout(poll, 1500);
  }
  setTimeout(poll, 1000);
})();
