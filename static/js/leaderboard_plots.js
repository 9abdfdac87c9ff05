// The leaderboard's plots (plotly, served from our static files): rank stability blobs,
// per-case distributions, metric against metric, quality against latency with the Pareto front.
// Also the ranking form's toggle of the mean-rank metrics, which works with or without plots.
import { el, errorMessage, escapeHTML, fetchJSON, showError } from "./dom.js";

const LAYOUT = { margin: { l: 60, r: 20, t: 10, b: 90 }, height: 380, font: { size: 12 }, hovermode: "closest" };
const CONFIG = { displaylogo: false, responsive: true };

function num(value) {
  if (value === null || value === undefined || value === "inf" || value === "-inf") return null;
  return Number(value);
}
const runLabel = (row) => escapeHTML(row.run.name);

function fill(select, options, selected) {
  select.replaceChildren(
    ...options.map((option) => el("option", { value: option.key, text: option.label, selected: option.key === selected })),
  );
}

function axisTitle(column) {
  const arrow = column.direction === "higher" ? " ↑" : column.direction === "lower" ? " ↓" : "";
  return column.label + (column.unit ? ` (${column.unit})` : "") + arrow;
}

// Low and high error-bar lengths of a value with an optional CI.
function errorBars(cell, value) {
  const low = num(cell.ci_low);
  const high = num(cell.ci_high);
  return [low !== null ? value - low : 0, high !== null ? high - value : 0];
}

function stabilityPlot(board) {
  const blobs = { x: [], y: [], size: [], text: [] };
  const medians = { x: [], y: [], low: [], high: [] };
  for (const row of board.rows) {
    if (!row.rank_stability) continue;
    const { rank_frequencies: frequencies, median_rank: median, rank_ci: ci } = row.rank_stability;
    for (const [rank, share] of Object.entries(frequencies)) {
      blobs.x.push(runLabel(row));
      blobs.y.push(Number(rank));
      blobs.size.push(4 + 36 * Math.sqrt(share));
      blobs.text.push(`${runLabel(row)}: rank ${rank} in ${(100 * share).toFixed(1)}% of resamples`);
    }
    medians.x.push(runLabel(row));
    medians.y.push(median);
    medians.low.push(median - ci[0]);
    medians.high.push(ci[1] - median);
  }
  const traces = [
    { type: "scatter", mode: "markers", x: blobs.x, y: blobs.y, text: blobs.text, hoverinfo: "text", name: "share of resamples",
      marker: { size: blobs.size, color: "rgba(31,95,191,0.55)", line: { color: "#1f5fbf", width: 1 } } },
    { type: "scatter", mode: "markers", x: medians.x, y: medians.y, name: "median, 95% interval",
      error_y: { type: "data", symmetric: false, array: medians.high, arrayminus: medians.low, color: "#222" },
      marker: { symbol: "line-ew-open", size: 18, color: "#222" } },
  ];
  Plotly.newPlot("plot-stability", traces, {
    ...LAYOUT, yaxis: { title: "rank", autorange: "reversed", dtick: 1 }, showlegend: true, legend: { orientation: "h", y: 1.12 },
  }, CONFIG);
}

function scatterPlot(board, columns) {
  const sx = document.getElementById("scatter-x");
  const sy = document.getElementById("scatter-y");
  const pixel = columns.filter((c) => c.tier === "pixel");
  const other = columns.filter((c) => c.tier !== "pixel");
  fill(sx, columns, (pixel[0] || columns[0]).key);
  fill(sy, columns, (other[0] || columns[1] || columns[0]).key);
  function draw() {
    const cx = columns.find((c) => c.key === sx.value);
    const cy = columns.find((c) => c.key === sy.value);
    const p = { x: [], y: [], ex: [], exm: [], ey: [], eym: [], text: [] };
    for (const row of board.rows) {
      const vx = row.values[cx.key];
      const vy = row.values[cy.key];
      const a = num(vx && vx.value);
      const b = num(vy && vy.value);
      if (a === null || b === null) continue;
      const [xLow, xHigh] = errorBars(vx, a);
      const [yLow, yHigh] = errorBars(vy, b);
      p.x.push(a); p.y.push(b); p.text.push(runLabel(row));
      p.exm.push(xLow); p.ex.push(xHigh); p.eym.push(yLow); p.ey.push(yHigh);
    }
    Plotly.react("plot-scatter", [{ type: "scatter", mode: "markers+text", x: p.x, y: p.y, text: p.text, textposition: "top center",
      error_x: { type: "data", symmetric: false, array: p.ex, arrayminus: p.exm },
      error_y: { type: "data", symmetric: false, array: p.ey, arrayminus: p.eym },
      cliponaxis: false, marker: { size: 10, color: "#1f5fbf" } }],
    { ...LAYOUT, xaxis: { title: axisTitle(cx) }, yaxis: { title: axisTitle(cy) }, margin: { l: 70, r: 60, t: 30, b: 60 } }, CONFIG);
  }
  sx.addEventListener("change", draw);
  sy.addEventListener("change", draw);
  draw();
}

// A diffusion model's sampling sweep (runs of one model sharing `sampling.sweep`) as one curve, in the
// order of the number of steps: "how many steps until quality stops improving, and what does it cost".
export function sweepCurves(points) {
  const curves = new Map();
  for (const p of points) {
    if (!p.sweep) continue;
    const key = `${p.modelId}\u0000${p.sweep}`;
    if (!curves.has(key)) curves.set(key, { name: `${p.modelName} (${p.sweep})`, points: [] });
    curves.get(key).points.push(p);
  }
  return [...curves.values()].map((curve) => ({ ...curve, points: curve.points.sort((a, b) => a.steps - b.steps) }));
}

function paretoPlot(board, columns) {
  const primaryKey = board.ranking.primary_metric;
  const column = columns.find((c) => c.key === primaryKey);
  if (!column) return;
  const points = [];
  for (const row of board.rows) {
    const latency = num(row.values.latency_p50 && row.values.latency_p50.value);
    const quality = num(row.values[primaryKey] && row.values[primaryKey].value);
    if (latency === null || quality === null) continue;
    const sampling = row.sampling || {};
    points.push({ x: latency, y: quality, name: runLabel(row), front: row.pareto_optimal, modelId: row.model.id,
      modelName: escapeHTML(row.model.name), sweep: sampling.sweep || "", steps: sampling.sampling_steps });
  }
  const front = points.filter((p) => p.front).sort((a, b) => a.x - b.x);
  const single = points.filter((p) => !p.sweep);
  const logAxis = points.every((p) => p.x > 0);
  const curves = sweepCurves(points).map((curve) => ({
    type: "scatter", mode: "lines+markers+text", name: curve.name, x: curve.points.map((p) => p.x),
    y: curve.points.map((p) => p.y), text: curve.points.map((p) => `${p.steps} steps`), textposition: "bottom center",
    cliponaxis: false, marker: { size: 9, symbol: curve.points.map((p) => (p.front ? "circle" : "circle-open")) },
    hovertemplate: "%{text}: %{y} at %{x} ms<extra>%{fullData.name}</extra>",
  }));
  Plotly.newPlot("plot-pareto", [
    { type: "scatter", mode: "markers+text", name: "runs", x: single.map((p) => p.x), y: single.map((p) => p.y),
      text: single.map((p) => p.name), textposition: "top center", cliponaxis: false,
      marker: { size: 10, color: single.map((p) => (p.front ? "#1f5fbf" : "#9aa5b5")) } },
    ...curves,
    { type: "scatter", mode: "lines", name: "Pareto front", x: front.map((p) => p.x), y: front.map((p) => p.y),
      line: { shape: "hv", color: "#1f5fbf", dash: "dot" } },
  ], { ...LAYOUT, xaxis: { title: "latency p50 (ms per case)", type: logAxis ? "log" : "linear" }, yaxis: { title: axisTitle(column) },
    margin: { l: 70, r: 20, t: 10, b: 60 }, legend: { orientation: "h", y: 1.12 } }, CONFIG);
}

// One box of per-case values per run, in the board's order.
function distributionTraces(board, cases, key) {
  const byRun = new Map();
  for (const result of cases.results) {
    const value = num(result.values[key]);
    if (result.status !== "ok" || value === null) continue;
    const run = String(result.run_id);
    if (!byRun.has(run)) byRun.set(run, { y: [], text: [] });
    byRun.get(run).y.push(value);
    byRun.get(run).text.push(escapeHTML(result.case_id));
  }
  return board.rows
    .filter((row) => byRun.has(String(row.run.id)))
    .map((row) => ({ type: "box", name: runLabel(row), ...byRun.get(String(row.run.id)), boxpoints: "all", jitter: 0.4, pointpos: 0,
      marker: { size: 4 }, hovertemplate: `%{text}: %{y}<extra>${runLabel(row)}</extra>` }));
}

function distributionPlot(board, cases) {
  const select = document.getElementById("distribution-metric");
  const columns = board.columns.filter((c) => c.tier === "pixel" && cases.metrics.includes(c.key));
  if (!columns.length) {
    // No per-case values this user may see (a hidden test set's runs reach its organisers only): say so.
    select.hidden = true;
    document.getElementById("plot-distribution").textContent =
      "No per-case results to show: on a hidden test set they reach the task's organisers and each run's owner only.";
    return;
  }
  const primary = board.ranking.primary_metric;
  fill(select, columns, columns.some((c) => c.key === primary) ? primary : columns[0].key);
  function draw() {
    const column = columns.find((c) => c.key === select.value);
    Plotly.react("plot-distribution", distributionTraces(board, cases, select.value),
      { ...LAYOUT, showlegend: false, yaxis: { title: axisTitle(column) } }, CONFIG);
  }
  select.addEventListener("change", draw);
  draw();
}

function withJSON(url) {
  const bare = url.replace(/[?&]$/, "");
  return `${bare}${bare.includes("?") ? "&" : "?"}format=json`;
}

async function drawPlots(root) {
  try {
    // Both answers are asked for at once; the per-case values are drawn once the board's plots are.
    const casesRequest = fetchJSON(withJSON(root.dataset.cases));
    casesRequest.catch(() => {}); // a failure is reported below, where it is awaited
    const board = await fetchJSON(withJSON(root.dataset.leaderboard));
    const metricColumns = board.columns.filter((c) => c.direction && c.tier !== "efficiency" && !c.placeholder);
    stabilityPlot(board);
    scatterPlot(board, metricColumns);
    paretoPlot(board, metricColumns);
    root.dataset.ready = `${root.dataset.ready || ""} leaderboard`;
    distributionPlot(board, await casesRequest);
    root.dataset.ready += " cases";
  } catch (error) {
    console.error(error);
    showError(root, `Plots could not load: ${errorMessage(error)}`);
  }
}

const method = document.getElementById("ranking-method");
method?.addEventListener("change", () => {
  document.querySelector(".mean-rank-metrics").hidden = method.value !== "mean_rank";
});

const plots = document.getElementById("plots");
if (plots && window.Plotly) drawPlots(plots);
