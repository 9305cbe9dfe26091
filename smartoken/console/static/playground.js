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
      maxTokens = $("pg-max-tokens"), prompt = $("pg-prompt"), messages = $("pg-messages");

  function showPrice() {
    var opt = model.selectedOptions[0];
    if (!opt) return;
    var fmt = function (m) { return "$" + (Number(opt.getAttribute(m)) / 1e6).toFixed(2); };
    $("pg-price").textContent = "Price per 1M tokens: " + fmt("data-price-in") + " in, " + fmt("data-price-out") + " out.";
  }
  model.addEventListener("change", showPrice);
  showPrice();
  temp.addEventListener("input", function () { $("pg-temp-value").textContent = temp.value; });

  function request(text) {
    var msgs = history.slice();
    if (text) msgs.push({role: "user", content: text});
    var mt = parseInt(maxTokens.value, 10);
    return {model: model.value, system: system.value, temperature: parseFloat(temp.value),
            max_tokens: isNaN(mt) ? null : mt, messages: msgs};
  }

  function bubble(role, text) {
    var empty = $("pg-empty");
    if (empty) empty.remove();
    var div = document.createElement("div");
    div.className = "msg msg-" + role;
    var who = document.createElement("div");
    who.className = "msg-role";
    who.textContent = role === "user" ? "You" : model.value;
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
    messages.appendChild(div);
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
        meta(div, [["tokens", "Tokens", rec.prompt_tokens + " in · " + rec.completion_tokens + " out" + (rec.usage_estimated ? " (est.)" : "")],
                   ["cost", "Cost", "$" + rec.cost_usd.replace(/0+$/, "").replace(/\.$/, ".00")],
                   ["latency", "Latency", ms(rec.latency_ms)],
                   ["ttft", "TTFT", rec.ttft_ms === null ? "—" : ms(rec.ttft_ms)]]);
        div.classList.add("billed");
      }).catch(function () {});
  }

  function ms(v) { return v < 1 ? "< 1 ms" : Math.round(v) + " ms"; }

  async function send(text) {
    showError("");
    var payload = request(text);
    bubble("user", text);
    var div = bubble("assistant", "");
    div.classList.add("streaming");
    var body = div.querySelector(".msg-text");
    var think = div.querySelector(".msg-reasoning"), thinkText = div.querySelector(".msg-reasoning-text");
    var t0 = performance.now(), ttft = null, answer = "", reasoning = "", chunks = 0, usage = null;
    var answered = false;
    lastSent = payload;
    controller = new AbortController();
    busy(true);
    var rid = null;
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
        showError(err && err.error ? err.error.message : "The request failed (" + resp.status + ").");
        return;
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
              if (!d.content && !d.reasoning_content) return;
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
                body.textContent = answer;
              }
              div.setAttribute("data-chunks", chunks);
              messages.scrollTop = messages.scrollHeight;
            });
          });
        }
      }
      answered = true;
      // Only the answer goes back in the history: reasoning is not part of the conversation.
      history.push({role: "user", content: text}, {role: "assistant", content: answer});
      var latency = Math.round(performance.now() - t0);
      meta(div, [["tokens", "Tokens", usage ? usage.prompt_tokens + " in · " + usage.completion_tokens + " out" : "…"],
                 ["cost", "Cost", "…"], ["latency", "Latency", ms(latency)],
                 ["ttft", "TTFT", ttft === null ? "—" : ms(ttft)]]);
    } catch (e) {
      if (e.name === "AbortError") { body.textContent = answer + " [stopped]"; answered = true; }
      else showError("The connection failed: " + e.message);
    } finally {
      div.classList.remove("streaming");
      div.classList.add("done");
      busy(false);
      controller = null;
      if (rid && answered) ledger(div, rid);
    }
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
    messages.innerHTML = '<div class="pg-empty" id="pg-empty">Conversation cleared.</div>';
    showError("");
  });

  var modal = $("code-modal");
  $("view-code").addEventListener("click", function () {
    // A prompt being written: the request it would send; otherwise the last request sent.
    var text = prompt.value.trim();
    var body = text ? request(text) : (lastSent || request("Explain the best use case for this model."));
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
