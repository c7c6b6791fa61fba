/* A running execution's progress bar refreshes itself from its progress URL; when the run
   ends the page reloads, so results, logs, charts and the transcript appear. */
(function () {
  "use strict";
  var FINAL = ["completed", "failed", "cancelled"];
  var EVERY_MS = 1000;

  function follow(box) {
    if (FINAL.indexOf(box.dataset.status) !== -1) { return; }
    var timer = window.setInterval(function () {
      fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (state) {
          if (!state) { return; }
          box.querySelector(".fill").style.width = state.percent + "%";
          box.querySelector(".fill").className = "fill status-" + state.status;
          box.querySelector(".percent").textContent = state.percent + "%";
          box.querySelector(".text").textContent = state.text;
          box.dataset.status = state.status;
          if (state.final) {
            window.clearInterval(timer);
            window.location.reload();
          }
        })
        .catch(function () { /* the next tick tries again */ });
    }, EVERY_MS);
  }

  function start() { document.querySelectorAll(".exec-progress[data-url]").forEach(follow); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
