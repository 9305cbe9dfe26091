// Playground: stream a chat through /console/api/playground and show what each answer cost.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var T = window.stT || function (s) { return s; };
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var history = [];
  var lastSent = null;  // the body of the last request sent: what *View code* shows
  var controller = null;
  var model = $("pg-model"), system = $("pg-system"), temp = $("pg-temperature"),
      maxTokens = $("pg-max-tokens"), prompt = $("pg-prompt"), messages = $("pg-messages"),
      compare = $("pg-compare"), jsonMode = $("pg-json"), tools = $("pg-tools"),
      fileInput = $("pg-file"), attached = $("pg-attached");
  var attachments = [];  // [{id, name}] uploaded through the Files API, sent with the next message

  function showPrice() {
    var opt = model.selectedOptions[0];
    if (!opt) return;
    var fmt = function (m) { return "$" + (Number(opt.getAttribute(m)) / 1e6).toFixed(2); };
    $("pg-price").textContent = T("Price per 1M tokens") + ": " + fmt("data-price-in") + " " + T("in") + ", " + fmt("data-price-out") + " " + T("out") + ".";
  }
  model.addEventListener("change", showPrice);
  showPrice();
  temp.addEventListener("input", function () { $("pg-temp-value").textContent = temp.value; });

  function request(text) {
    var msgs = history.slice();
    if (text) msgs.push({role: "user", content: text});
    var mt = parseInt(maxTokens.value, 10);
    var out = {model: model.value, system: system.value, temperature: parseFloat(temp.value),
               max_tokens: isNaN(mt) ? null : mt, messages: msgs};
    if (jsonMode && jsonMode.checked) out.json_mode = true;
    if (tools && tools.checked) out.tools = true;
    if (text && attachments.length) out.file_ids = attachments.map(function (a) { return a.id; });
    return out;
  }

  function bubble(role, text, name, parent) {
    var empty = $("pg-empty");
    if (empty) empty.remove();
    var div = document.createElement("div");
    div.className = "msg msg-" + role;
    var who = document.createElement("div");
    who.className = "msg-role";
    who.textContent = role === "user" ? T("You") : (name || model.value);
    var body = document.createElement("div");
    body.className = "msg-text";
    body.textContent = text || "";
    div.appendChild(who);
    if (role !== "user") {
      // Reasoning is shown apart, collapsed once the answer starts; never sent back.
      var think = document.createElement("details");
      think.className = "msg-reasoning hidden";
      think.open = true;
      var sum = document.createElement("summary");
      sum.textContent = T("Reasoning");
      var tb = document.createElement("div");
      tb.className = "msg-reasoning-text";
      think.appendChild(sum);
      think.appendChild(tb);
      div.appendChild(think);
    }
    div.appendChild(body);
    (parent || messages).appendChild(div);
    messages.scrollTop = messages.scrollHeight;
    return div;
  }

  function showError(text) {
    var el = $("pg-error");
    el.textContent = text;
    el.classList.toggle("hidden", !text);
  }

  function busy(on) {
    $("pg-send").disabled = on;
    $("pg-stop").classList.toggle("hidden", !on);
  }

  function meta(div, parts) {
    var m = div.querySelector(".msg-meta");
    if (!m) { m = document.createElement("div"); m.className = "msg-meta"; div.appendChild(m); }
    m.innerHTML = "";
    parts.forEach(function (p) {
      var s = document.createElement("span");
      s.className = "chip";
      s.setAttribute("data-stat", p[0]);
      var b = document.createElement("b");
      b.textContent = p[2];
      s.appendChild(document.createTextNode(p[1] + " "));
      s.appendChild(b);
      m.appendChild(s);
    });
  }

  // One request per answer: the server answers from the ledger writer's queue or waits for
  // the record, so the page never polls (and asks nothing for a refused request).
  function ledger(div, rid) {
    fetch("/console/api/usage/" + encodeURIComponent(rid), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (rec) {
        if (!rec.found) return;
        div.setAttribute("data-cost-micro", rec.cost_micro);
        div.setAttribute("data-status", rec.status);
        meta(div, [["tokens", T("Tokens"), rec.prompt_tokens + " " + T("in") + " · " + rec.completion_tokens + " " + T("out") + (rec.usage_estimated ? " (" + T("est.") + ")" : "")],
                   ["cost", T("Cost"), "$" + rec.cost_usd.replace(/0+$/, "").replace(/\.$/, ".00")],
                   ["latency", T("Latency"), ms(rec.latency_ms)],
                   ["ttft", T("TTFT"), rec.ttft_ms === null ? "—" : ms(rec.ttft_ms)]]);
        div.classList.add("billed");
      }).catch(function () {});
  }

  function ms(v) { return v < 1 ? "< 1 ms" : Math.round(v) + " ms"; }

  function render(body, text) {
    if (window.stMarkdown) window.stMarkdown(body, text); else body.textContent = text;
  }

  // Streams one answer into a new bubble; resolves to its text, or null when refused/failed.
  async function streamInto(payload, parent) {
    var div = bubble("assistant", "", payload.model, parent);
    div.classList.add("streaming");
    div.setAttribute("data-model", payload.model);
    var body = div.querySelector(".msg-text");
    body.classList.add("md");
    var think = div.querySelector(".msg-reasoning"), thinkText = div.querySelector(".msg-reasoning-text");
    var t0 = performance.now(), ttft = null, answer = "", reasoning = "", chunks = 0, usage = null;
    var calls = [];
    var answered = false, rid = null;
    try {
      var resp = await fetch("/console/api/playground", {
        method: "POST", credentials: "same-origin", signal: controller.signal,
        headers: {"content-type": "application/json", "x-csrf-token": csrf},
        body: JSON.stringify(payload)
      });
      rid = resp.headers.get("x-request-id");
      if (!resp.ok) {
        rid = null;  // refused: there is no usage record to read
        var err = await resp.json().catch(function () { return null; });
        div.remove();
        showError(err && err.error ? err.error.message : T("The request failed") + " (" + resp.status + ").");
        return null;
      }
      div.setAttribute("data-request-id", rid);
      var reader = resp.body.getReader(), dec = new TextDecoder(), buf = "";
      for (;;) {
        var step = await reader.read();
        if (step.done) break;
        buf += dec.decode(step.value, {stream: true});
        var idx;
        while ((idx = buf.indexOf("\n\n")) >= 0) {
          var frame = buf.slice(0, idx);
          buf = buf.slice(idx + 2);
          frame.split("\n").forEach(function (line) {
            if (line.indexOf("data: ") !== 0) return;
            var data = line.slice(6);
            if (data === "[DONE]") return;
            var obj = JSON.parse(data);
            if (obj.error) { showError(obj.error.message); return; }
            if (obj.usage) usage = obj.usage;
            (obj.choices || []).forEach(function (c) {
              var d = c.delta || {};
              (d.tool_calls || []).forEach(function (tc) {
                var slot = calls[tc.index || 0] = calls[tc.index || 0] || {name: "", args: ""};
                if (tc.function && tc.function.name) slot.name += tc.function.name;
                if (tc.function && tc.function.arguments) slot.args += tc.function.arguments;
              });
              if (!d.content && !d.reasoning_content && !d.tool_calls) return;
              if (ttft === null) ttft = performance.now() - t0;
              chunks += 1;
              if (d.reasoning_content) {
                reasoning += d.reasoning_content;
                think.classList.remove("hidden");
                thinkText.textContent = reasoning;
              }
              if (d.content) {
                if (!answer && reasoning) think.open = false;
                answer += d.content;
              }
              render(body, answer + calls.map(function (k) {
                return "\n\n```tool_call\n" + k.name + "(" + k.args + ")\n```";
              }).join(""));
              div.setAttribute("data-chunks", chunks);
              messages.scrollTop = messages.scrollHeight;
            });
          });
        }
      }
      answered = true;
      var latency = Math.round(performance.now() - t0);
      meta(div, [["tokens", T("Tokens"), usage ? usage.prompt_tokens + " " + T("in") + " · " + usage.completion_tokens + " " + T("out") : "…"],
                 ["cost", T("Cost"), "…"], ["latency", T("Latency"), ms(latency)],
                 ["ttft", T("TTFT"), ttft === null ? "—" : ms(ttft)]]);
      return answer;
    } catch (e) {
      if (e.name === "AbortError") { render(body, answer + " [" + T("stopped") + "]"); answered = true; }
      else showError(T("The connection failed") + ": " + e.message);
      return answered ? answer : null;
    } finally {
      div.classList.remove("streaming");
      div.classList.add("done");
      if (rid && answered) ledger(div, rid);
    }
  }

  async function send(text) {
    showError("");
    var payload = request(text);
    lastSent = payload;
    bubble("user", text + attachments.map(function (a) { return "\n📎 " + a.name; }).join(""));
    attachments = [];
    showAttached();
    // Two models side by side on the same prompt: the second column is for comparison only,
    // the conversation goes on with the first model's answer.
    var second = compare && compare.value && compare.value !== payload.model ? compare.value : "";
    var row = null;
    if (second) {
      row = document.createElement("div");
      row.className = "pg-pair";
      messages.appendChild(row);
    }
    controller = new AbortController();
    busy(true);
    try {
      var runs = [streamInto(payload, row)];
      if (second) runs.push(streamInto(Object.assign({}, payload, {model: second}), row));
      var answers = await Promise.all(runs);
      // Only the answer goes back in the history: reasoning is not part of the conversation.
      if (answers[0] !== null) history.push({role: "user", content: text}, {role: "assistant", content: answers[0]});
    } finally {
      busy(false);
      controller = null;
    }
  }

  function showAttached() {
    if (!attached) return;
    attached.textContent = "";
    attachments.forEach(function (a) {
      var chip = document.createElement("span");
      chip.className = "chip";
      chip.setAttribute("data-file-id", a.id);
      chip.textContent = "📎 " + a.name;
      attached.appendChild(chip);
    });
  }

  if (fileInput) {
    fileInput.addEventListener("change", function () {
      var f = fileInput.files[0];
      if (!f) return;
      var form = new FormData();
      form.append("file", f);
      form.append("purpose", "file-extract");
      showError("");
      fetch("/console/api/files", {method: "POST", credentials: "same-origin",
                                   headers: {"x-csrf-token": csrf}, body: form})
        .then(function (r) { return r.json(); })
        .then(function (obj) {
          if (obj.error) { showError(obj.error.message); return; }
          attachments.push({id: obj.id, name: obj.filename});
          showAttached();
        })
        .catch(function (e) { showError(T("The request failed") + ": " + e.message); })
        .finally(function () { fileInput.value = ""; });
    });
  }

  $("pg-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = prompt.value.trim();
    if (!text || controller) return;
    prompt.value = "";
    send(text);
  });
  prompt.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("pg-form").requestSubmit(); }
  });
  $("pg-stop").addEventListener("click", function () { if (controller) controller.abort(); });
  $("clear-chat").addEventListener("click", function () {
    history = [];
    lastSent = null;
    messages.textContent = "";
    var cleared = document.createElement("div");
    cleared.className = "pg-empty";
    cleared.id = "pg-empty";
    cleared.textContent = T("Conversation cleared.");
    messages.appendChild(cleared);
    attachments = [];
    showAttached();
    showError("");
  });

  var modal = $("code-modal");
  $("view-code").addEventListener("click", function () {
    // A prompt being written: the request it would send; otherwise the last request sent.
    var text = prompt.value.trim();
    var body = text ? request(text) : (lastSent || request(T("Explain the best use case for this model.")));
    fetch("/console/api/samples", {
      method: "POST", credentials: "same-origin",
      headers: {"content-type": "application/json", "x-csrf-token": csrf},
      body: JSON.stringify(body)
    }).then(function (r) { return r.json(); }).then(function (s) {
      if (s.error) { showError(s.error.message); return; }
      ["curl", "python", "typescript", "anthropic", "claude_code", "codex"].forEach(function (lang) {
        modal.querySelector('pre[data-pane="' + lang + '"] code').textContent = s[lang];
      });
      modal.classList.remove("hidden");
    });
  });
  $("code-close").addEventListener("click", function () { modal.classList.add("hidden"); });
  modal.addEventListener("click", function (ev) { if (ev.target === modal) modal.classList.add("hidden"); });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") modal.classList.add("hidden"); });
})();
