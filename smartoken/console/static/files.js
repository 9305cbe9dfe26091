// Files page: upload through /console/api/files (the Files API's service), then reload.
(function () {
  "use strict";
  var T = window.stT || function (s) { return s; };
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var form = document.getElementById("file-upload"), input = document.getElementById("file-input");
  var error = document.getElementById("file-error");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!input.files[0]) return;
    var body = new FormData();
    body.append("file", input.files[0]);
    body.append("purpose", "file-extract");
    error.classList.add("hidden");
    fetch("/console/api/files", {method: "POST", credentials: "same-origin",
                                 headers: {"x-csrf-token": csrf}, body: body})
      .then(function (r) { return r.json(); })
      .then(function (obj) {
        if (obj.error) { error.textContent = obj.error.message; error.classList.remove("hidden"); return; }
        window.location.reload();
      })
      .catch(function (e) { error.textContent = T("The request failed") + ": " + e.message; error.classList.remove("hidden"); });
  });
})();
