// The probe analysis page's plot (#probe-plot-data, from readerstudy/probe_analysis.py plot_data):
// P(hallucinated | SD > τ) against τ's quantile of the SD, one line per stochastic run, with its base rate
// dotted. Run names are escaped for plotly's pseudo-HTML.
import { escapeHTML } from "./dom.js";

const data = JSON.parse(document.getElementById("probe-plot-data").textContent);
const host = document.getElementById("plot-sd-threshold");

if (host && window.Plotly && data.runs.length) {
  const traces = [];
  data.runs.forEach((run) => {
    const name = escapeHTML(run.name);
    traces.push({ type: "scatter", mode: "lines+markers", name, x: run.quantile, y: run.p });
    if (run.base_rate !== null) {
      traces.push({
        type: "scatter", mode: "lines", name: `${name}: base rate`, x: [0, 1], y: [run.base_rate, run.base_rate],
        line: { dash: "dot", width: 1 }, hoverinfo: "name+y",
      });
    }
  });
  Plotly.newPlot(
    host,
    traces,
    {
      title: { text: "P(hallucinated pixel | SD > τ)", font: { size: 14 } },
      xaxis: { title: { text: "τ: quantile of the SD over samples" }, range: [0.45, 1.0] },
      yaxis: { title: { text: "P(hallucinated)" }, rangemode: "tozero", tickformat: ".3~%" },
      margin: { t: 40, r: 10 },
      legend: { orientation: "h", y: -0.25 },
    },
    { displaylogo: false, responsive: true },
  );
}
