/* A running execution's progress bar refreshes itself from its progress URL, and so do the
   status and start shown beside it on the execution's page (one answer: they agree); when
   the run ends the page reloads, so results, logs, charts and the transcript appear. */
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
          var badge = document.querySelector(".field-status_badge .readonly");
          if (badge && state.status_html) { badge.innerHTML = state.status_html; }
          var started = document.querySelector(".field-started_at .readonly");
          if (started && state.started_at) { started.textContent = state.started_at; }
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
