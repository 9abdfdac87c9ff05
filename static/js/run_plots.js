// The run page's per-case plots: the distribution of one metric over the cases and one metric
// against another, case by case (click a point to open that case in the viewer).
import { el, escapeHTML } from "./dom.js";

const CONFIG = { displaylogo: false, responsive: true };
const LAYOUT = { margin: { l: 60, r: 20, t: 10, b: 50 }, height: 340, font: { size: 12 }, hovermode: "closest", showlegend: false };

const num = (value) => (value === null || value === "inf" || value === "-inf" ? null : Number(value));
const title = (metric) => metric.label + (metric.direction === "higher" ? " ↑" : " ↓");

function fill(select, metrics, selected) {
  select.replaceChildren(
    ...metrics.map((metric) => el("option", { value: metric.key, text: metric.label, selected: metric.key === selected })),
  );
}

function openCase(event) {
  const point = event.points[0];
  if (point && point.customdata) window.location = point.customdata;
}

function main(data) {
  const metric = (key) => data.metrics.find((m) => m.key === key);
  const distributionSelect = document.getElementById("run-distribution-metric");
  fill(distributionSelect, data.metrics, data.primary || data.metrics[0].key);
  function drawDistribution() {
    const key = distributionSelect.value;
    const cases = data.cases.filter((c) => num(c.values[key]) !== null);
    const trace = {
      type: "box", name: metric(key).label, y: cases.map((c) => num(c.values[key])),
      text: cases.map((c) => escapeHTML(c.case_id)), customdata: cases.map((c) => c.url),
      boxpoints: "all", jitter: 0.5, pointpos: -1.6, hovertemplate: "%{text}: %{y}<extra></extra>",
    };
    Plotly.react("plot-run-distribution", [trace], { ...LAYOUT, yaxis: { title: title(metric(key)) } }, CONFIG);
  }
  const sx = document.getElementById("run-scatter-x");
  const sy = document.getElementById("run-scatter-y");
  fill(sx, data.metrics, data.metrics[0].key);
  fill(sy, data.metrics, (data.metrics[1] || data.metrics[0]).key);
  function drawScatter() {
    const cases = data.cases.filter((c) => num(c.values[sx.value]) !== null && num(c.values[sy.value]) !== null);
    const trace = {
      type: "scatter", mode: "markers", x: cases.map((c) => num(c.values[sx.value])),
      y: cases.map((c) => num(c.values[sy.value])), text: cases.map((c) => escapeHTML(c.case_id)),
      customdata: cases.map((c) => c.url), hovertemplate: "%{text}<br>%{x}, %{y}<extra></extra>",
      marker: { size: 7, color: "#1f5fbf" },
    };
    const axes = { xaxis: { title: title(metric(sx.value)) }, yaxis: { title: title(metric(sy.value)) } };
    Plotly.react("plot-run-scatter", [trace], { ...LAYOUT, ...axes }, CONFIG);
  }
  distributionSelect.addEventListener("change", drawDistribution);
  sx.addEventListener("change", drawScatter);
  sy.addEventListener("change", drawScatter);
  drawDistribution();
  drawScatter();
  ["plot-run-distribution", "plot-run-scatter"].forEach((id) => document.getElementById(id).on("plotly_click", openCase));
  document.getElementById("run-plots").dataset.ready = "1";
}

const source = document.getElementById("case-plot-data");
if (source && window.Plotly) {
  const data = JSON.parse(source.textContent);
  if (data.metrics.length && data.cases.length) main(data);
}
