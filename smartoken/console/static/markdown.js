// SmarToken console: a small, safe Markdown renderer for the playground (no library, no CDN).
// Safe by construction: it builds DOM nodes and sets only textContent, so raw HTML in an
// answer is shown as text, never parsed. Links are kept only for http(s) URLs.
// Supports fenced code blocks (with a copy button), headings, lists, block quotes, paragraphs,
// inline code, bold, italic and links.
(function () {
  "use strict";
  var T = window.stT || function (s) { return s; };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  var INLINE = /(`+)([^`]+?)\1|\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*?)\*|_([^_\s][^_]*?)_|\[([^\]]+)\]\(([^)\s]+)\)/;

  function inline(parent, text) {
    while (text) {
      var m = INLINE.exec(text);
      if (!m) { parent.appendChild(document.createTextNode(text)); return; }
      if (m.index) parent.appendChild(document.createTextNode(text.slice(0, m.index)));
      if (m[2] !== undefined) parent.appendChild(el("code", "md-code", m[2]));
      else if (m[3] !== undefined || m[4] !== undefined) inline(parent.appendChild(el("strong")), m[3] || m[4]);
      else if (m[5] !== undefined || m[6] !== undefined) inline(parent.appendChild(el("em")), m[5] || m[6]);
      else {
        var url = m[8];
        if (/^https?:\/\//i.test(url)) {
          var a = el("a");
          a.href = url;
          a.rel = "noopener noreferrer nofollow";
          a.target = "_blank";
          inline(a, m[7]);
          parent.appendChild(a);
        } else parent.appendChild(document.createTextNode(m[0]));
      }
      text = text.slice(m.index + m[0].length);
    }
  }

  function codeBlock(lang, lines) {
    var wrap = el("div", "md-pre");
    var bar = el("div", "md-pre-bar");
    bar.appendChild(el("span", "md-lang", lang || ""));
    var copy = el("button", "btn btn-sm md-copy", T("Copy"));
    copy.type = "button";
    var code = el("code", null, lines.join("\n"));
    copy.addEventListener("click", function () {
      var done = function () {
        copy.textContent = T("Copied");
        setTimeout(function () { copy.textContent = T("Copy"); }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(code.textContent).then(done, done);
      else done();
    });
    bar.appendChild(copy);
    var pre = el("pre");
    pre.appendChild(code);
    wrap.appendChild(bar);
    wrap.appendChild(pre);
    return wrap;
  }

  function render(target, source) {
    var out = document.createDocumentFragment();
    var lines = String(source || "").replace(/\r\n?/g, "\n").split("\n");
    var i = 0, para = [];
    function flush() {
      if (para.length) { inline(out.appendChild(el("p")), para.join("\n")); para = []; }
    }
    while (i < lines.length) {
      var line = lines[i], m;
      if ((m = /^\s*(```|~~~)\s*([\w+#.-]*)\s*$/.exec(line))) {
        flush();
        var fence = m[1], body = [];
        i += 1;
        while (i < lines.length && lines[i].trim().indexOf(fence) !== 0) { body.push(lines[i]); i += 1; }
        out.appendChild(codeBlock(m[2], body));
        i += 1;  // the closing fence (or the end of a stream still running)
        continue;
      }
      if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) {
        flush();
        inline(out.appendChild(el("h" + Math.min(6, m[1].length + 2), "md-h")), m[2]);
        i += 1;
        continue;
      }
      if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
        flush();
        var ordered = /^\s*\d/.test(line);
        var list = out.appendChild(el(ordered ? "ol" : "ul"));
        while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
          inline(list.appendChild(el("li")), lines[i].replace(/^\s*([-*+]|\d+[.)])\s+/, ""));
          i += 1;
        }
        continue;
      }
      if (/^>\s?/.test(line)) {
        flush();
        var quote = [];
        while (i < lines.length && /^>\s?/.test(lines[i])) { quote.push(lines[i].replace(/^>\s?/, "")); i += 1; }
        inline(out.appendChild(el("blockquote")), quote.join("\n"));
        continue;
      }
      if (!line.trim()) { flush(); i += 1; continue; }
      para.push(line);
      i += 1;
    }
    flush();
    target.textContent = "";
    target.appendChild(out);
  }

  window.stMarkdown = render;
})();
