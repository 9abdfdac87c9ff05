// Live progress of a run's evaluation: poll its API entry until it is final, then reload.
(function () {
  const box = document.getElementById("evaluation-live");
  if (!box || box.dataset.final) return;
  const FINAL = new Set(["succeeded", "failed"]);
  async function poll() {
    try {
      const response = await fetch(box.dataset.api, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const evaluation = await response.json();
        const status = document.getElementById("evaluation-status");
        status.textContent = evaluation.status;
        status.className = "status status-" + evaluation.status;
        document.getElementById("evaluation-phase").textContent = evaluation.phase || "";
        const progress = document.getElementById("evaluation-progress");
        if (progress) progress.textContent = evaluation.progress_done + " / " + evaluation.progress_total;
        const bar = document.getElementById("evaluation-bar");
        if (bar) bar.style.width = evaluation.progress_percent + "%";
        if (FINAL.has(evaluation.status)) {
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
