// Live progress of a run's downstream job (seed, epoch, training loss): poll its API entry until it is final, then reload.
(function () {
  const box = document.getElementById("downstream-live");
  if (!box || box.dataset.final) return;
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);
  function text(id, value) {
    const element = document.getElementById(id);
    if (element) element.textContent = value;
  }
  async function poll() {
    try {
      const response = await fetch(box.dataset.api, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const job = await response.json();
        const status = document.getElementById("downstream-status");
        status.textContent = job.status;
        status.className = "status status-" + job.status;
        text("downstream-phase", job.phase || "");
        text("downstream-progress", job.progress_done + " / " + job.progress_total);
        text("downstream-loss", job.loss === null ? "—" : Number(job.loss).toPrecision(3));
        const bar = document.getElementById("downstream-bar");
        if (bar) bar.style.width = job.progress_percent + "%";
        if (FINAL.has(job.status)) {
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
