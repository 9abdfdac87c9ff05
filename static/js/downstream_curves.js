// Training curves of a downstream job (loss per epoch, one line per seed) beside the real→real reference's.
(function () {
  const source = document.getElementById("downstream-curves-data");
  const target = document.getElementById("downstream-curves");
  if (!source || !target || !window.Plotly) return;
  const data = JSON.parse(source.textContent);
  const traces = [];
  function add(curves, name, dash, color) {
    curves.forEach(function (curve) {
      traces.push({
        type: "scatter", mode: "lines", name: name + " · seed " + curve.seed,
        x: curve.loss.map(function (_, i) { return i + 1; }), y: curve.loss,
        line: { dash: dash, color: color, width: 2 },
        hovertemplate: name + ", seed " + curve.seed + "<br>epoch %{x}: %{y:.4f}<extra></extra>",
      });
    });
  }
  // Plotly renders names as pseudo-HTML: escape the run's name.
  const runName = String(data.run_name || "run").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  add(data.run, runName, "solid", "#1f5fbf");
  add(data.reference, "real→real", "dot", "#b0452d");
  if (!traces.length) {
    target.textContent = "No training curves yet.";
    return;
  }
  Plotly.newPlot(target, traces, {
    margin: { l: 60, r: 20, t: 10, b: 50 }, height: 420, font: { size: 12 }, hovermode: "closest",
    xaxis: { title: "epoch" }, yaxis: { title: "training loss (Dice + CE)", rangemode: "tozero" },
    legend: { orientation: "h" },
  }, { displaylogo: false, responsive: true });
})();
