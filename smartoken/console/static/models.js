// Models table: search, filters (family, context, price, capability) and sortable columns,
// all in the page (the table holds every model; no request per keystroke).
(function () {
  "use strict";
  var table = document.getElementById("models-table");
  if (!table) return;
  var T = window.stT || function (s) { return s; };
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var $ = function (id) { return document.getElementById(id); };
  var search = $("mf-search"), family = $("mf-family"), context = $("mf-context"),
      price = $("mf-price"), cap = $("mf-cap"), count = $("mf-count");

  function apply() {
    var q = search.value.trim().toLowerCase(), fam = family.value,
        minCtx = parseInt(context.value, 10) || 0, maxPrice = parseFloat(price.value),
        c = cap.value, shown = 0;
    rows.forEach(function (r) {
      var d = r.dataset, ok = true;
      if (q && r.textContent.toLowerCase().indexOf(q) < 0) ok = false;
      if (fam && d.family !== fam) ok = false;
      if (minCtx && Number(d.context) < minCtx) ok = false;
      if (!isNaN(maxPrice) && Number(d.input) / 1e6 > maxPrice) ok = false;
      if (c === "reasoning" && Number(d.reasoning) < 4) ok = false;
      if (c === "coding" && Number(d.coding) < 4) ok = false;
      if ((c === "chat" || c === "embedding") && d.kind !== c) ok = false;
      r.hidden = !ok;
      if (ok) shown += 1;
    });
    count.textContent = shown + " / " + rows.length;
  }
  [search, price].forEach(function (e) { e.addEventListener("input", apply); });
  [family, context, cap].forEach(function (e) { e.addEventListener("change", apply); });
  $("models-filters").addEventListener("submit", function (ev) { ev.preventDefault(); });

  // Sortable columns: a button in each sortable header; numbers sort by their data value.
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    var key = th.getAttribute("data-sort");
    if (!key) return;
    var btn = document.createElement("button");
    btn.type = "button";
    btn.className = "sort-btn";
    while (th.firstChild) btn.appendChild(th.firstChild);
    th.appendChild(btn);
    btn.addEventListener("click", function () {
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      var numeric = key !== "model" && key !== "family";
      rows.sort(function (a, b) {
        var x = a.dataset[key], y = b.dataset[key];
        if (numeric) return (Number(x) - Number(y)) * dir;
        return x.localeCompare(y) * dir;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  apply();
})();
