// Live route health: refresh the routes table every 2 seconds.
(function () {
  "use strict";
  var table = document.getElementById("routes-table");
  if (!table) return;
  var filter = document.getElementById("route-filter");
  if (filter) filter.addEventListener("input", function () {
    var q = filter.value.trim().toLowerCase();
    table.querySelectorAll("tr[data-route]").forEach(function (tr) {
      tr.classList.toggle("hidden", q !== "" && tr.getAttribute("data-search").toLowerCase().indexOf(q) < 0);
    });
  });
  var T = window.stT || function (s) { return s; };
  var labels = {closed: T("healthy"), open: T("cooling down"), half_open: T("probing")};
  var fmt = {
    success_rate: function (v) { return v === null ? "—" : Math.round(v * 100) + "%"; },
    p50_latency_ms: function (v) { return v === null ? "—" : Math.round(v) + " ms"; },
    p50_ttft_ms: function (v) { return v === null ? "" : "TTFT " + Math.round(v) + " ms"; },
    cooldown_remaining_s: function (v) { return v ? Math.ceil(v) + " s" : ""; },
    last_error: function (v) { return v || ""; }
  };
  function refresh() {
    fetch("/console/api/health", {credentials: "same-origin"}).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (data) {
      if (!data) return;
      table.querySelectorAll("tr[data-route]").forEach(function (tr) {
        var h = data.routes[tr.getAttribute("data-route")];
        if (!h) return;
        var state = tr.querySelector('[data-h="state"]');
        if (state) {
          state.textContent = labels[h.state] || h.state;
          state.setAttribute("data-state", h.state);
          state.className = "badge badge-" + h.state;
        }
        Object.keys(fmt).forEach(function (k) {
          var cell = tr.querySelector('[data-h="' + k + '"]');
          if (!cell) return;
          if (k === "success_rate") {
            cell.firstChild.textContent = fmt[k](h[k]);
            tr.querySelector('[data-h="counts"]').textContent = h.successes + " " + T("ok") + " · " + h.failures + " " + T("failed");
          } else cell.textContent = fmt[k](h[k]);
        });
      });
    }).catch(function () { /* try again on the next tick */ });
  }
  setInterval(refresh, 2000);
})();
