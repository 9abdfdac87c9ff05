// Training curves of a downstream job (loss per epoch, one line per seed) beside the real→real reference's.
import { escapeHTML } from "./dom.js";

const source = document.getElementById("downstream-curves-data");
const target = document.getElementById("downstream-curves");


function traces(data) {
  const lines = (curves, name, dash, color) =>
    curves.map((curve) => ({
      type: "scatter", mode: "lines", name: `${name} · seed ${curve.seed}`,
      x: curve.loss.map((_, i) => i + 1), y: curve.loss,
      line: { dash, color, width: 2 },
      hovertemplate: `${name}, seed ${curve.seed}<br>epoch %{x}: %{y:.4f}<extra></extra>`,
    }));
  return [...lines(data.run, escapeHTML(data.run_name || "run"), "solid", "#1f5fbf"),
    ...lines(data.reference, "real→real", "dot", "#b0452d")];
}

if (source && target && window.Plotly) {
  const all = traces(JSON.parse(source.textContent));
  if (!all.length) {
    target.textContent = "No training curves yet.";
  } else {
    Plotly.newPlot(target, all, {
      margin: { l: 60, r: 20, t: 10, b: 50 }, height: 420, font: { size: 12 }, hovermode: "closest",
      xaxis: { title: "epoch" }, yaxis: { title: "training loss (Dice + CE)", rangemode: "tozero" },
      legend: { orientation: "h" },
    }, { displaylogo: false, responsive: true });
  }
}
