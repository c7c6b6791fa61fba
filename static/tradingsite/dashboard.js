/* The dashboard's realized P&L chart: each day's P&L as bars, the running total as a line. */
(function () {
  "use strict";
  // Money as tradingsite.money writes it: two places, thousands separated, P&L signed.
  function money(value) {
    return Number(value).toLocaleString("en-US",
      { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function signedMoney(value) {
    var text = money(value);
    return value > 0 && text !== "0.00" ? "+" + text : text;
  }
  function draw() {
    var source = document.getElementById("pnl-data");
    var canvas = document.getElementById("pnl-canvas");
    if (!source || !canvas || typeof Chart === "undefined") { return; }
    var pnl = JSON.parse(source.textContent);
    var daily = pnl.daily.map(Number);
    canvas.chart = new Chart(canvas, {
      data: {
        labels: pnl.labels,
        datasets: [
          { type: "bar", label: "realized that day", data: daily,
            backgroundColor: daily.map(function (v) { return v >= 0 ? "#81c784" : "#e57373"; }) },
          { type: "line", label: "cumulative", data: pnl.cumulative.map(Number),
            borderColor: "#1565c0", pointRadius: 2, tension: 0 }
        ]
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        plugins: { tooltip: { callbacks: { label: function (item) {
          return item.dataset.label + ": " + signedMoney(item.parsed.y);
        } } } },
        scales: { y: { ticks: { callback: function (value) { return money(value); } } } }
      }
    });
    canvas.dataset.drawn = "true";
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
