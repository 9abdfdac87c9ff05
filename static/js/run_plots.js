// The run page's per-case plots: the distribution of one metric over the cases and one metric
// against another, case by case (click a point to open that case in the viewer).
(function () {
  const source = document.getElementById("case-plot-data");
  if (!source || !window.Plotly) return;
  const data = JSON.parse(source.textContent);
  if (!data.metrics.length || !data.cases.length) return;
  const config = { displaylogo: false, responsive: true };
  const layout = { margin: { l: 60, r: 20, t: 10, b: 50 }, height: 340, font: { size: 12 }, hovermode: "closest", showlegend: false };
  function escapeText(text) { return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  function num(value) { return value === null || value === "inf" || value === "-inf" ? null : Number(value); }
  function title(metric) { return metric.label + (metric.direction === "higher" ? " ↑" : " ↓"); }
  function fill(select, selected) {
    data.metrics.forEach(function (metric) {
      const option = document.createElement("option");
      option.value = metric.key; option.textContent = metric.label; option.selected = metric.key === selected;
      select.appendChild(option);
    });
  }
  function metric(key) { return data.metrics.find(function (m) { return m.key === key; }); }
  function openCase(event) { const point = event.points[0]; if (point && point.customdata) window.location = point.customdata; }

  const distributionSelect = document.getElementById("run-distribution-metric");
  fill(distributionSelect, data.primary || data.metrics[0].key);
  function drawDistribution() {
    const key = distributionSelect.value, cases = data.cases.filter(function (c) { return num(c.values[key]) !== null; });
    Plotly.react("plot-run-distribution", [{ type: "box", name: metric(key).label, y: cases.map(function (c) { return num(c.values[key]); }),
      text: cases.map(function (c) { return escapeText(c.case_id); }), customdata: cases.map(function (c) { return c.url; }),
      boxpoints: "all", jitter: 0.5, pointpos: -1.6, hovertemplate: "%{text}: %{y}<extra></extra>" }],
      Object.assign({}, layout, { yaxis: { title: title(metric(key)) } }), config);
  }
  const sx = document.getElementById("run-scatter-x"), sy = document.getElementById("run-scatter-y");
  fill(sx, data.metrics[0].key);
  fill(sy, (data.metrics[1] || data.metrics[0]).key);
  function drawScatter() {
    const cases = data.cases.filter(function (c) { return num(c.values[sx.value]) !== null && num(c.values[sy.value]) !== null; });
    Plotly.react("plot-run-scatter", [{ type: "scatter", mode: "markers", x: cases.map(function (c) { return num(c.values[sx.value]); }),
      y: cases.map(function (c) { return num(c.values[sy.value]); }), text: cases.map(function (c) { return escapeText(c.case_id); }),
      customdata: cases.map(function (c) { return c.url; }), hovertemplate: "%{text}<br>%{x}, %{y}<extra></extra>", marker: { size: 7, color: "#1f5fbf" } }],
      Object.assign({}, layout, { xaxis: { title: title(metric(sx.value)) }, yaxis: { title: title(metric(sy.value)) } }), config);
  }
  distributionSelect.addEventListener("change", drawDistribution);
  sx.addEventListener("change", drawScatter); sy.addEventListener("change", drawScatter);
  drawDistribution(); drawScatter();
  ["plot-run-distribution", "plot-run-scatter"].forEach(function (id) { document.getElementById(id).on("plotly_click", openCase); });
  document.getElementById("run-plots").dataset.ready = "1";
})();
