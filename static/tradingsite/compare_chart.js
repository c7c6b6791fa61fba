/* Backtests compared side by side: their equity curves overlaid on one chart. Each
   <canvas data-compare-id="X"> reads <script id="X" type="application/json">
   {labels, curves: [{label, equity}]} (equity null on a day a run has no point). */
(function () {
  "use strict";
  var COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f",
                 "#5d4037", "#ad1457", "#9e9d24", "#37474f", "#283593", "#00695c"];
  function draw() {
    if (typeof Chart === "undefined") { return; }
    document.querySelectorAll("canvas[data-compare-id]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.compareId);
      if (!source || canvas.dataset.drawn) { return; }
      var data = JSON.parse(source.textContent);
      canvas.chart = new Chart(canvas, {
        type: "line",
        data: {
          labels: data.labels,
          datasets: data.curves.map(function (curve, i) {
            return { label: curve.label, data: curve.equity, spanGaps: true, pointRadius: 0,
                     tension: 0, borderWidth: 1.5, borderColor: COLOURS[i % COLOURS.length] };
          })
        },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          interaction: { mode: "nearest", intersect: false },
          plugins: { title: { display: true, text: "Equity curves" },
                     legend: { labels: { boxWidth: 12, font: { size: 11 } } } },
          scales: { x: { ticks: { maxTicksLimit: 10 } } }
        }
      });
      canvas.dataset.drawn = "true";
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
