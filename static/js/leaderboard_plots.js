// The leaderboard's plots (plotly, served from our static files): rank stability blobs,
// per-case distributions, metric against metric, quality against latency with the Pareto front.
(function () {
  const root = document.getElementById("plots");
  if (!root || !window.Plotly) return;
  const layoutBase = { margin: { l: 60, r: 20, t: 10, b: 90 }, height: 380, font: { size: 12 }, hovermode: "closest" };
  const config = { displaylogo: false, responsive: true };

  function num(value) {
    if (value === null || value === undefined || value === "inf" || value === "-inf") return null;
    return Number(value);
  }
  // Plotly renders text as pseudo-HTML: a run's name (chosen by whoever submitted it) is escaped.
  function escapeText(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function runLabel(row) { return escapeText(row.run.name); }
  function fill(select, options, selected) {
    select.innerHTML = "";
    options.forEach(function (option) {
      const element = document.createElement("option");
      element.value = option.key;
      element.textContent = option.label;
      if (option.key === selected) element.selected = true;
      select.appendChild(element);
    });
  }
  function axisTitle(column) {
    const arrow = column.direction === "higher" ? " ↑" : column.direction === "lower" ? " ↓" : "";
    return column.label + (column.unit ? " (" + column.unit + ")" : "") + arrow;
  }

  function stabilityPlot(board) {
    const x = [], y = [], size = [], text = [];
    const medianX = [], medianY = [], low = [], high = [];
    board.rows.forEach(function (row) {
      if (!row.rank_stability) return;
      Object.entries(row.rank_stability.rank_frequencies).forEach(function (entry) {
        const rank = Number(entry[0]), share = entry[1];
        x.push(runLabel(row)); y.push(rank); size.push(4 + 36 * Math.sqrt(share));
        text.push(runLabel(row) + ": rank " + rank + " in " + (100 * share).toFixed(1) + "% of resamples");
      });
      medianX.push(runLabel(row)); medianY.push(row.rank_stability.median_rank);
      low.push(row.rank_stability.median_rank - row.rank_stability.rank_ci[0]);
      high.push(row.rank_stability.rank_ci[1] - row.rank_stability.median_rank);
    });
    const traces = [
      { type: "scatter", mode: "markers", x: x, y: y, text: text, hoverinfo: "text", name: "share of resamples",
        marker: { size: size, color: "rgba(31,95,191,0.55)", line: { color: "#1f5fbf", width: 1 } } },
      { type: "scatter", mode: "markers", x: medianX, y: medianY, name: "median, 95% interval",
        error_y: { type: "data", symmetric: false, array: high, arrayminus: low, color: "#222" },
        marker: { symbol: "line-ew-open", size: 18, color: "#222" } },
    ];
    Plotly.newPlot("plot-stability", traces, Object.assign({}, layoutBase, {
      yaxis: { title: "rank", autorange: "reversed", dtick: 1 }, showlegend: true, legend: { orientation: "h", y: 1.12 },
    }), config);
  }

  function scatterPlot(board, columns) {
    const sx = document.getElementById("scatter-x"), sy = document.getElementById("scatter-y");
    const pixel = columns.filter(function (c) { return c.tier === "pixel"; });
    const other = columns.filter(function (c) { return c.tier !== "pixel"; });
    fill(sx, columns, (pixel[0] || columns[0]).key);
    fill(sy, columns, (other[0] || columns[1] || columns[0]).key);
    function draw() {
      const cx = columns.find(function (c) { return c.key === sx.value; });
      const cy = columns.find(function (c) { return c.key === sy.value; });
      const x = [], y = [], ex = [], exm = [], ey = [], eym = [], text = [];
      board.rows.forEach(function (row) {
        const vx = row.values[cx.key], vy = row.values[cy.key];
        const a = num(vx && vx.value), b = num(vy && vy.value);
        if (a === null || b === null) return;
        x.push(a); y.push(b); text.push(runLabel(row));
        ex.push(num(vx.ci_high) !== null ? num(vx.ci_high) - a : 0); exm.push(num(vx.ci_low) !== null ? a - num(vx.ci_low) : 0);
        ey.push(num(vy.ci_high) !== null ? num(vy.ci_high) - b : 0); eym.push(num(vy.ci_low) !== null ? b - num(vy.ci_low) : 0);
      });
      Plotly.react("plot-scatter", [{ type: "scatter", mode: "markers+text", x: x, y: y, text: text, textposition: "top center",
        error_x: { type: "data", symmetric: false, array: ex, arrayminus: exm }, error_y: { type: "data", symmetric: false, array: ey, arrayminus: eym },
        cliponaxis: false, marker: { size: 10, color: "#1f5fbf" } }],
        Object.assign({}, layoutBase, { xaxis: { title: axisTitle(cx) }, yaxis: { title: axisTitle(cy) }, margin: { l: 70, r: 60, t: 30, b: 60 } }), config);
    }
    sx.addEventListener("change", draw); sy.addEventListener("change", draw);
    draw();
  }

  function paretoPlot(board, columns) {
    const primaryKey = board.ranking.primary_metric;
    const column = columns.find(function (c) { return c.key === primaryKey; });
    if (!column) return;
    const points = [];
    board.rows.forEach(function (row) {
      const latency = num(row.values.latency_p50 && row.values.latency_p50.value);
      const quality = num(row.values[primaryKey] && row.values[primaryKey].value);
      if (latency === null || quality === null) return;
      points.push({ x: latency, y: quality, name: runLabel(row), front: row.pareto_optimal });
    });
    const front = points.filter(function (p) { return p.front; }).sort(function (a, b) { return a.x - b.x; });
    const logAxis = points.every(function (p) { return p.x > 0; });
    Plotly.newPlot("plot-pareto", [
      { type: "scatter", mode: "markers+text", name: "runs", x: points.map(function (p) { return p.x; }), y: points.map(function (p) { return p.y; }),
        text: points.map(function (p) { return p.name; }), textposition: "top center", cliponaxis: false,
        marker: { size: 10, color: points.map(function (p) { return p.front ? "#1f5fbf" : "#9aa5b5"; }) } },
      { type: "scatter", mode: "lines", name: "Pareto front", x: front.map(function (p) { return p.x; }), y: front.map(function (p) { return p.y; }),
        line: { shape: "hv", color: "#1f5fbf", dash: "dot" } },
    ], Object.assign({}, layoutBase, { xaxis: { title: "latency p50 (ms per case)", type: logAxis ? "log" : "linear" }, yaxis: { title: axisTitle(column) },
      margin: { l: 70, r: 20, t: 10, b: 60 }, legend: { orientation: "h", y: 1.12 } }), config);
  }

  function distributionPlot(board, cases) {
    const select = document.getElementById("distribution-metric");
    const columns = board.columns.filter(function (c) { return c.tier === "pixel" && cases.metrics.indexOf(c.key) >= 0; });
    if (!columns.length) return;
    fill(select, columns, board.ranking.primary_metric && columns.some(function (c) { return c.key === board.ranking.primary_metric; })
      ? board.ranking.primary_metric : columns[0].key);
    const order = board.rows.map(function (row) { return row.run.id; });
    const names = {};
    board.rows.forEach(function (row) { names[row.run.id] = runLabel(row); });
    function draw() {
      const key = select.value;
      const column = columns.find(function (c) { return c.key === key; });
      const byRun = {};
      cases.results.forEach(function (result) {
        const value = num(result.values[key]);
        if (result.status !== "ok" || value === null) return;
        (byRun[result.run_id] = byRun[result.run_id] || { y: [], text: [] }).y.push(value);
        byRun[result.run_id].text.push(escapeText(result.case_id));
      });
      const traces = order.filter(function (id) { return byRun[id]; }).map(function (id) {
        return { type: "box", name: names[id], y: byRun[id].y, text: byRun[id].text, boxpoints: "all", jitter: 0.4, pointpos: 0,
          marker: { size: 4 }, hovertemplate: "%{text}: %{y}<extra>" + names[id] + "</extra>" };
      });
      Plotly.react("plot-distribution", traces, Object.assign({}, layoutBase, { showlegend: false, yaxis: { title: axisTitle(column) } }), config);
    }
    select.addEventListener("change", draw);
    draw();
  }

  function withJSON(url) {
    const bare = url.replace(/[?&]$/, "");
    return bare + (bare.indexOf("?") >= 0 ? "&" : "?") + "format=json";
  }
  fetch(withJSON(root.dataset.leaderboard), { headers: { Accept: "application/json" } })
    .then(function (response) { return response.json(); })
    .then(function (board) {
      const metricColumns = board.columns.filter(function (c) { return c.direction && c.tier !== "efficiency" && !c.placeholder; });
      stabilityPlot(board);
      scatterPlot(board, metricColumns);
      paretoPlot(board, metricColumns);
      root.dataset.ready = (root.dataset.ready || "") + " leaderboard";
      return fetch(withJSON(root.dataset.cases), { headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (cases) { distributionPlot(board, cases); root.dataset.ready += " cases"; });
    })
    .catch(function (error) {
      const box = document.createElement("p");
      box.className = "error-box";
      box.textContent = "Plots could not load: " + error;
      root.prepend(box);
    });

  const method = document.getElementById("ranking-method");
  if (method) method.addEventListener("change", function () {
    document.querySelector(".mean-rank-metrics").hidden = method.value !== "mean_rank";
  });
})();
