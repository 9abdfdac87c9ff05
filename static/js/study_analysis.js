// Plots of a reader study's analysis (#analysis-data, from readerstudy/analysis.py as_json):
// per-run AUC with its Obuchowski–Rockette CI against the chance line (Turing test).
const data = JSON.parse(document.getElementById("analysis-data").textContent);
const host = document.getElementById("plot-auc");

function aucPlot() {
  const mrmc = data.mrmc;
  if (!mrmc || !host || !window.Plotly) return;
  const names = [];
  const auc = [];
  const low = [];
  const high = [];
  for (const [model, estimate] of Object.entries(mrmc.single_modality)) {
    names.push(data.groups[model] || model);
    auc.push(estimate.auc);
    low.push(estimate.auc - estimate.ci[0]);
    high.push(estimate.ci[1] - estimate.auc);
  }
  const readers = Object.entries(mrmc.reader_auc).flatMap(([model, byReader]) =>
    Object.entries(byReader).map(([reader, value]) => ({ name: data.groups[model] || model, reader, value })),
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

aucPlot();
