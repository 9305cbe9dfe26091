// The statement page's Print button (inline handlers are refused by the console's CSP).
(function () {
  "use strict";
  var btn = document.getElementById("print-statement");
  if (btn) btn.addEventListener("click", function () { window.print(); });
})();
