/* A strategy's equity curve and its drawdown (in percent below the peak so far). Each
   <canvas data-equity-id="X"> and <canvas data-drawdown-id="X"> reads
   <script id="X" type="application/json"> {title, labels, equity, drawdown}. */
(function () {
  "use strict";
  function chart(canvas, source, key, look) {
    var data = JSON.parse(source.textContent);
    canvas.chart = new Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: [Object.assign({ data: data[key].map(Number), pointRadius: 0, tension: 0,
                                   borderWidth: 1.5 }, look)]
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        plugins: { legend: { display: false },
                   title: { display: true, text: data.title + " - " + look.label } },
        scales: { x: { ticks: { maxTicksLimit: 8 } } }
      }
    });
    canvas.dataset.drawn = "true";
  }
  function drawAll() {
    if (typeof Chart === "undefined") { return; }
    document.querySelectorAll("canvas[data-equity-id]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.equityId);
      if (source) { chart(canvas, source, "equity", { label: "equity", borderColor: "#1565c0" }); }
    });
    document.querySelectorAll("canvas[data-drawdown-id]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.drawdownId);
      if (source) {
        chart(canvas, source, "drawdown", { label: "drawdown %", borderColor: "#c62828",
                                            backgroundColor: "rgba(198, 40, 40, 0.2)",
                                            fill: "origin" });
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
