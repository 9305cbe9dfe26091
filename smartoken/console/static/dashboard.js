// Dashboard charts (Chart.js, bundled with the gateway).
(function () {
  "use strict";
  var T = window.stT || function (s) { return s; };
  var node = document.getElementById("chart-data");
  if (!node || !window.Chart) return;
  var d = JSON.parse(node.textContent);
  var usd = function (micro) { return micro / 1e6; };
  var palette = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#ec4899", "#14b8a6", "#64748b"];
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#64748b";
  Chart.defaults.borderColor = "#e2e8f0";
  Chart.defaults.animation = false;
  var money = function (v) { return "$" + Number(v).toLocaleString(undefined, {maximumFractionDigits: 6}); };
  var common = {responsive: true, maintainAspectRatio: false, plugins: {legend: {display: false}}};

  new Chart(document.getElementById("chart-spend-day"), {
    type: "bar",
    data: {labels: d.days, datasets: [{label: T("Spend (USD)"), data: d.spend_micro.map(usd), backgroundColor: "#4f46e5", borderRadius: 4}]},
    options: Object.assign({}, common, {scales: {y: {beginAtZero: true, ticks: {callback: money}}, x: {grid: {display: false}}},
      plugins: {legend: {display: false}, tooltip: {callbacks: {label: function (c) { return money(c.parsed.y); }}}}})
  });
  new Chart(document.getElementById("chart-tokens-day"), {
    type: "bar",
    data: {labels: d.days, datasets: [
      {label: T("Prompt"), data: d.prompt_tokens, backgroundColor: "#0ea5e9", borderRadius: 4, stack: "t"},
      {label: T("Completion"), data: d.completion_tokens, backgroundColor: "#10b981", borderRadius: 4, stack: "t"}]},
    options: Object.assign({}, common, {plugins: {legend: {display: true, position: "bottom"}},
      scales: {y: {beginAtZero: true, stacked: true}, x: {stacked: true, grid: {display: false}}}})
  });
  var empty = d.models.length === 0;
  new Chart(document.getElementById("chart-spend-model"), {
    type: "doughnut",
    data: {labels: empty ? ["no usage yet"] : d.models,
      datasets: [{data: empty ? [1] : d.model_spend_micro.map(usd), backgroundColor: empty ? ["#e2e8f0"] : palette, borderWidth: 2}]},
    options: Object.assign({}, common, {cutout: "62%", plugins: {legend: {display: true, position: "right"},
      tooltip: {enabled: !empty, callbacks: {label: function (c) { return c.label + ": " + money(c.parsed); }}}}})
  });
  new Chart(document.getElementById("chart-tokens-model"), {
    type: "bar",
    data: {labels: d.models, datasets: [{label: T("Tokens"), data: d.model_tokens, backgroundColor: palette, borderRadius: 4}]},
    options: Object.assign({}, common, {indexAxis: "y", scales: {x: {beginAtZero: true}, y: {grid: {display: false}}}})
  });
})();
