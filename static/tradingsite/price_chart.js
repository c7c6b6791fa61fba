/* Price charts: closes, indicators on the price scale, decisions marked on their bar, and
   the trades' entries and exits at their fill price.
   Each <canvas data-chart-id="X"> reads its data from <script id="X" type="application/json">. */
(function () {
  "use strict";
  var LINE_COLOURS = {
    sma_20: "#1e88e5", sma_50: "#fb8c00", sma_200: "#8e24aa",
    bb_upper: "#90a4ae", bb_lower: "#90a4ae", supertrend: "#00897b"
  };
  var MARKERS = {
    buy: { colour: "#2e7d32", style: "triangle", rotation: 0 },
    sell: { colour: "#c62828", style: "triangle", rotation: 180 },
    hold: { colour: "#757575", style: "circle", rotation: 0 },
    "entry long": { colour: "#1b5e20", style: "rectRot", rotation: 0, label: "entries (long)" },
    "entry short": { colour: "#b71c1c", style: "rectRot", rotation: 0, label: "entries (short)" },
    exit: { colour: "#0d47a1", style: "crossRot", rotation: 0, label: "exits" }
  };

  function markerDataset(chart, type) {
    var points = chart.labels.map(function () { return null; });
    var labels = {};
    chart.markers.forEach(function (m) {
      if (m.type !== type) { return; }
      points[m.index] = m.price;  // several on one bar: one point, every label
      labels[m.index] = labels[m.index] ? labels[m.index] + "; " + m.label : m.label;
    });
    var look = MARKERS[type];
    return {
      label: look.label || type + " decisions", data: points, showLine: false, pointStyle: look.style,
      pointRotation: look.rotation, pointRadius: look.label ? 6 : 8, pointHoverRadius: 10,
      pointBorderWidth: look.style === "crossRot" ? 3 : 1,
      backgroundColor: look.colour, borderColor: look.colour, decisionLabels: labels
    };
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chartId);
    if (!source || typeof Chart === "undefined") { return; }
    var chart = JSON.parse(source.textContent);
    var datasets = [{
      label: "close", data: chart.close, borderColor: "#212121", borderWidth: 1.5,
      pointRadius: 0, tension: 0
    }];
    Object.keys(chart.lines).forEach(function (name) {
      var band = name.indexOf("bb_") === 0;
      datasets.push({
        label: name, data: chart.lines[name], borderColor: LINE_COLOURS[name] || "#999",
        borderWidth: 1, pointRadius: 0, borderDash: band || name === "supertrend" ? [4, 3] : [],
        spanGaps: false
      });
    });
    Object.keys(MARKERS).forEach(function (type) {
      if (chart.markers.some(function (m) { return m.type === type; })) {
        datasets.push(markerDataset(chart, type));
      }
    });
    canvas.chart = new Chart(canvas, {
      type: "line",
      data: { labels: chart.labels, datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        plugins: {
          title: { display: true, text: chart.title },
          legend: { labels: { boxWidth: 12, font: { size: 11 } } },
          tooltip: {
            callbacks: {
              label: function (item) {
                var own = item.dataset.decisionLabels;
                if (own && own[item.dataIndex]) { return own[item.dataIndex]; }
                return item.dataset.label + ": " + Number(item.raw).toFixed(2);
              }
            }
          }
        },
        scales: { x: { ticks: { maxTicksLimit: 10 } } }
      }
    });
    canvas.dataset.drawn = "true";
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart-id]").forEach(draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
