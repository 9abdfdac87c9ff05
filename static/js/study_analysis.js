// Plots of a reader study's analysis (#analysis-data, from readerstudy/analysis.py as_json):
// per-run AUC with its Obuchowski–Rockette CI against the chance line (Turing test); for the
// other designs, each run's published value (MOS per scale, preference, marks) with its CI.
// Run, group, reader and scale names are escaped for plotly's pseudo-HTML.
import { escapeHTML } from "./dom.js";

const data = JSON.parse(document.getElementById("analysis-data").textContent);
const host = document.getElementById("plot-auc");

function aucPlot() {
  const models = data.turing_models;
  if (!models || !Object.keys(models).length || !host || !window.Plotly) return;
  const names = [];
  const auc = [];
  const low = [];
  const high = [];
  for (const [model, entry] of Object.entries(models)) {
    names.push(escapeHTML(data.groups[model] || model));
    auc.push(entry.estimate.auc);
    low.push(entry.estimate.auc - entry.estimate.ci[0]);
    high.push(entry.estimate.ci[1] - entry.estimate.auc);
  }
  const readers = Object.entries(models).flatMap(([model, entry]) =>
    Object.entries(entry.reader_auc).map(([reader, value]) => ({
      name: escapeHTML(data.groups[model] || model),
      reader: escapeHTML(reader),
      value,
    })),
  );
  Plotly.newPlot(
    host,
    [
      {
        type: "scatter", mode: "markers", name: "mean AUC (95% CI)", x: auc, y: names,
        error_x: { type: "data", symmetric: false, array: high, arrayminus: low },
        marker: { size: 11, color: "#1f5fbf" },
      },
      {
        type: "scatter", mode: "markers", name: "each reader", x: readers.map((r) => r.value),
        y: readers.map((r) => r.name), text: readers.map((r) => r.reader), hoverinfo: "text+x",
        marker: { size: 6, color: "rgba(0,0,0,0.35)", symbol: "line-ns-open" },
      },
    ],
    {
      title: { text: "Readers' AUC for telling each run from real images", font: { size: 14 } },
      xaxis: { title: { text: "AUC (0.5 = chance: indistinguishable)" }, range: [0, 1.02] },
      yaxis: { automargin: true },
      margin: { t: 40, r: 10 },
      shapes: [
        { type: "line", x0: 0.5, x1: 0.5, yref: "paper", y0: 0, y1: 1, line: { dash: "dot", color: "#888" } },
        { type: "rect", x0: 0.5 - data.margin, x1: 0.5 + data.margin, yref: "paper", y0: 0, y1: 1, fillcolor: "rgba(40,160,80,0.12)", line: { width: 0 } },
      ],
      showlegend: true,
      legend: { orientation: "h", y: -0.25 },
    },
    { displaylogo: false, responsive: true },
  );
}

const LABELS = {
  reader_mos: "Mean opinion score (1–5)",
  reader_preference: "Probability of being preferred to an average run",
  reader_marks: "Hallucination marks per image",
};

function resultsPlot() {
  const target = document.getElementById("plot-results");
  if (!target || !window.Plotly || !data.per_run) return;
  const series = new Map(); // metric + scale → points
  for (const [run, entries] of Object.entries(data.per_run)) {
    for (const entry of entries) {
      const key = escapeHTML(entry.scale_label || LABELS[entry.metric] || entry.metric);
      if (!series.has(key)) series.set(key, { metric: entry.metric, points: [] });
      series.get(key).points.push({ name: escapeHTML(data.groups[run] || run), ...entry });
    }
  }
  if (!series.size) return;
  const traces = [...series.entries()].map(([key, { points }]) => ({
    type: "scatter", mode: "markers", name: key, x: points.map((p) => p.value), y: points.map((p) => p.name),
    error_x: {
      type: "data", symmetric: false,
      array: points.map((p) => (p.ci_high ?? p.value) - p.value),
      arrayminus: points.map((p) => p.value - (p.ci_low ?? p.value)),
    },
    marker: { size: 10 },
  }));
  const metric = [...series.values()][0].metric;
  Plotly.newPlot(
    target,
    traces,
    {
      title: { text: "Per run, with 95% CIs", font: { size: 14 } },
      xaxis: { title: { text: LABELS[metric] || metric } },
      yaxis: { automargin: true },
      margin: { t: 40, r: 10 },
      legend: { orientation: "h", y: -0.25 },
    },
    { displaylogo: false, responsive: true },
  );
}

// Probe mode: each run's FROC curve (readers pooled): lesion localisation fraction against non-lesion
// localisations per case, one point per rating threshold (5 … 1).
function frocPlot() {
  const target = document.getElementById("plot-froc");
  const runs = data.probe?.runs;
  if (!target || !window.Plotly || !runs || !Object.keys(runs).length) return;
  const traces = Object.entries(runs)
    .filter(([, row]) => row.lesions > 0)
    .map(([run, row]) => ({
      type: "scatter", mode: "lines+markers", name: escapeHTML(data.groups[run] || run),
      x: [0, ...row.froc.map((p) => p.nlf)], y: [0, ...row.froc.map((p) => p.llf)],
      text: ["", ...row.froc.map((p) => `rating ≥ ${p.threshold}`)], hoverinfo: "text+x+y",
    }));
  Plotly.newPlot(
    target,
    traces,
    {
      title: { text: "FROC per run (readers pooled)", font: { size: 14 } },
      xaxis: { title: { text: "Non-lesion localisations per case (NLF)" }, rangemode: "tozero" },
      yaxis: { title: { text: "Lesion localisation fraction (LLF)" }, range: [0, 1.02] },
      margin: { t: 40, r: 10 },
      legend: { orientation: "h", y: -0.25 },
    },
    { displaylogo: false, responsive: true },
  );
}

aucPlot();
resultsPlot();
frocPlot();
