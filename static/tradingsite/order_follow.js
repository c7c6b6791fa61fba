/* A working order's page asks the order's state every second and shows the page again when
   IB has reported a change (a fill, a part of one, a cancel), so a person sees the order fill
   without reloading. It stops once the order is final (filled, cancelled, rejected), and as
   soon as the page is being left: a reload then would cut off a button's post (Cancel at
   IB) and the message its answer carries. */
(function () {
  "use strict";
  var EVERY_MS = 1000;

  function follow(note) {
    var seen = note.dataset.status + " " + Number(note.dataset.filled);
    var leaving = false;
    function leave() { leaving = true; window.clearInterval(timer); }
    document.addEventListener("submit", leave);
    window.addEventListener("beforeunload", leave);
    var timer = window.setInterval(function () {
      fetch(note.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (state) {
          if (!state || leaving) { return; }
          var now = state.status + " " + Number(state.filled_quantity.replace(/,/g, ""));
          if (now !== seen || state.final) {
            window.clearInterval(timer);
            window.location.reload();
          }
        })
        .catch(function () { /* the next tick tries again */ });
    }, EVERY_MS);
  }

  function start() {
    var note = document.getElementById("order-follow");
    if (note) { follow(note); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
