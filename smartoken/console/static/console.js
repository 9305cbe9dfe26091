// SmarToken console: menu, copy buttons, confirmations, code tabs. No inline scripts (CSP).
(function () {
  "use strict";
  // Translations of the scripts' strings, from the page (st-i18n): window.stT("Copied").
  var dict = {};
  try { dict = JSON.parse(document.getElementById("st-i18n").textContent); } catch (e) { dict = {}; }
  var T = window.stT = function (s) { return dict[s] || s; };

  // Language: the select submits its form (GET /console/lang sets a sticky cookie).
  document.querySelectorAll(".lang-select").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });

  // Dark mode: the system's preference until the user picks one; the pick sticks (cookie).
  var root = document.documentElement;
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function effective() {
    var chosen = root.getAttribute("data-theme");
    return chosen || (media && media.matches ? "dark" : "light");
  }
  function label() {
    document.querySelectorAll(".theme-toggle").forEach(function (b) {
      var next = effective() === "dark" ? "light" : "dark";
      b.querySelector(".theme-label").textContent = T(next === "dark" ? "Dark mode" : "Light mode");
      b.setAttribute("aria-label", T(next === "dark" ? "Dark mode" : "Light mode"));
      b.setAttribute("data-theme-now", effective());
    });
  }
  document.querySelectorAll(".theme-toggle").forEach(function (b) {
    b.addEventListener("click", function () {
      var next = effective() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      document.cookie = "st_theme=" + next + "; path=/; max-age=31536000; samesite=lax";
      label();
    });
  });
  if (media && media.addEventListener) media.addEventListener("change", label);
  label();
  var toggle = document.getElementById("menu-toggle");
  var sidebar = document.getElementById("sidebar");
  if (toggle && sidebar) {
    toggle.addEventListener("click", function () {
      var open = sidebar.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  function copyText(text, button) {
    var done = function () {
      var label = button.textContent;
      button.textContent = T("Copied");
      button.classList.add("copied");
      setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else { fallback(text); done(); }
  }
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    document.body.removeChild(area);
  }
  window.stCopy = copyText;

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (btn) {
      var el = document.querySelector(btn.getAttribute("data-copy"));
      if (el) copyText(el.textContent.trim(), btn);
      return;
    }
    var copyActive = ev.target.closest("[data-copy-active]");
    if (copyActive) {
      var pane = copyActive.closest(".code-tabs").querySelector("pre.active");
      if (pane) copyText(pane.textContent, copyActive);
      return;
    }
    var tab = ev.target.closest(".tab[data-tab]");
    if (tab) {
      var box = tab.closest(".code-tabs");
      box.querySelectorAll(".tab").forEach(function (t) { t.classList.toggle("active", t === tab); t.setAttribute("aria-selected", t === tab ? "true" : "false"); });
      box.querySelectorAll("pre[data-pane]").forEach(function (p) {
        p.classList.toggle("active", p.getAttribute("data-pane") === tab.getAttribute("data-tab"));
      });
    }
  });

  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("[data-print]");
    if (button) window.print();
  });
})();
