// The chat page: talks to web/worker.js, streams replies, never blocks.
// Model output is rendered with DOM text nodes only (a tiny markdown subset: ``` code
// blocks, `inline code`, **bold**), so nothing the model writes can inject HTML.
import { backendChoice, setupWebGPU } from "./webgpu_ui.js";

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"), select: $("model-select"), load: $("load-btn"), progress: $("progress"),
  bar: $("progress-bar"), progressText: $("progress-text"), info: $("model-info"), chat: $("chat"),
  prompt: $("prompt"), send: $("send-btn"), stop: $("stop-btn"), newChat: $("new-btn"), stats: $("stats"),
  form: $("composer"),
};
const state = { ready: false, loaded: false, busy: false, models: [], messages: [], current: null, nextId: 1,
                bootMs: null, pageT0: performance.now(), timings: {} };
window.pyllm = state; // for tests and the curious

const worker = new Worker("worker.js", { type: "module" });
window.pyllmWorker = worker;
const webgpuEvent = setupWebGPU(worker, state);
// the app shell works offline after one visit (web/sw.js); models live in the Cache API
if ("serviceWorker" in navigator) navigator.serviceWorker.register("sw.js").catch(() => {});

// Where the time went (web/worker.js phase clocks, app/worker/session.py): the boot from the
// page's start to a ready worker, and the last model load.
function showTimings() {
  const t = state.timings;
  const fmt = (phases) => phases.filter(([, ms]) => ms != null).map(([n, ms]) => `${n} ${(ms / 1000).toFixed(2)}`)
    .join(" · ");
  const sum = (phases) => phases.reduce((a, [n, ms]) => a + (n === "stream_waiting" ? 0 : ms), 0);
  const lines = [];
  if (t.boot) {
    lines.push(`Boot ${(sum(t.boot) / 1000).toFixed(2)} s` + (t.pythonFrom === "snapshot" ? " (Python from its snapshot)" : "") +
               `: ${fmt(t.boot)}`);
  }
  if (t.load) {
    const py = t.model ? Object.entries(t.model).map(([k, ms]) => [k.replace(/_ms$/, ""), ms]) : [];
    lines.push(`Load ${(sum(t.load) / 1000).toFixed(2)} s: ${fmt(t.load)}` + (py.length ? ` (Python: ${fmt(py)})` : ""));
  }
  $("timings").textContent = lines.join("\n");
}

function setStatus(text, isError = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("error", isError);
}

function fmtBytes(n) {
  if (n == null) return "?";
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(2) + " GB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MB";
  return (n / 1024).toFixed(0) + " kB";
}

// ---- safe rendering ---------------------------------------------------------------------
function renderInline(parent, text) {
  const re = /(`[^`\n]+`|\*\*[^*\n]+\*\*)/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
    const tok = m[0];
    const el = document.createElement(tok.startsWith("`") ? "code" : "strong");
    el.textContent = tok.startsWith("`") ? tok.slice(1, -1) : tok.slice(2, -2);
    parent.appendChild(el);
    last = m.index + tok.length;
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
}

function renderMarkdown(el, text) {
  el.replaceChildren();
  const parts = text.split(/```/);
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      code.textContent = part.replace(/^[^\n]*\n/, ""); // drop the language tag line
      pre.appendChild(code);
      el.appendChild(pre);
    } else {
      renderInline(el, part);
    }
  });
}

function addMessage(role, text) {
  const el = document.createElement("div");
  el.className = `msg ${role}`;
  renderMarkdown(el, text);
  ui.chat.appendChild(el);
  ui.chat.scrollTop = ui.chat.scrollHeight;
  return el;
}

// ---- controls -----------------------------------------------------------------------------
function refresh() {
  ui.load.disabled = !state.ready || state.busy;
  ui.select.disabled = !state.ready || state.busy;
  ui.prompt.disabled = !state.loaded;
  ui.send.disabled = !state.loaded || state.busy;
  ui.stop.disabled = !state.current;
  $("url-btn").disabled = !state.ready || state.busy;
  $("regen-btn").disabled = !state.loaded || state.busy || !state.messages.length ||
    state.messages[state.messages.length - 1].role !== "assistant";
  $("save-chat-btn").disabled = !state.loaded || state.busy || !state.messages.length;
  $("restore-chat-btn").disabled = !state.loaded || state.busy || !state.savedChat;
  $("restore-chat-btn").title = state.savedChat ? `Saved ${state.savedChat.saved_at || ""}` : "No saved conversation";
}

// the stop flag shared with the worker (web/worker.js "stop-flag"): it is read while the
// worker computes, when a "cancel" message could not be delivered yet (during a prompt)
function setStopFlag(value) {
  if (state.stopFlag) Atomics.store(state.stopFlag(), 0, value);
}

function showStorage() {
  const st = state.storage || {};
  const cached = state.cached || [];
  const partial = state.partial || [];
  const model = state.models.find((m) => m.id === ui.select.value);
  const abs = (url) => new URL(url, location.href).href;
  const here = model && cached.find((c) => c.url === abs(model.url));
  $("storage").textContent = `${cached.length} model(s) kept offline` +
    (partial.length ? `, ${partial.length} partial download(s)` : "") +
    (st.usage != null ? ` · storage ${fmtBytes(st.usage)}${st.quota ? " of " + fmtBytes(st.quota) : ""}` : "") +
    (st.persisted === true ? " · persistent" : st.persisted === false ? " · may be evicted" : "");
  $("forget-btn").hidden = !here;
  $("forget-btn").dataset.url = here ? here.url : "";
  // every stored model and partial download, each with a delete button
  $("store-list").replaceChildren(...[...cached.map((c) => ({ ...c, done: true })), ...partial].map((e) => {
    const li = document.createElement("li");
    const name = e.url.split("/").pop();
    li.textContent = e.done ? `${name} — ${fmtBytes(e.size)}` + (e.sha256 ? " · sha256 checked" : "")
      : `${name} — partial: ${fmtBytes(e.have)} of ${fmtBytes(e.size)} (resumes on the next load)`;
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "Delete";
    del.addEventListener("click", () => worker.postMessage({ type: "cache-delete", url: e.url }));
    li.appendChild(del);
    return li;
  }));
}

function options() {
  return {
    temperature: Number($("opt-temperature").value) || 0,
    top_k: Number($("opt-top-k").value) || 0,
    top_p: Number($("opt-top-p").value) || 1,
    max_tokens: Number($("opt-max-tokens").value) || 256,
    raw: $("opt-raw").checked,
    ...(state.extraOptions || {}), // test/bench hook (e.g. ignore_eos)
  };
}

function loadSelected() {
  const model = state.models.find((m) => m.id === ui.select.value);
  if (!model) return;
  state.busy = true;
  state.loaded = false;
  state.loadT0 = performance.now();
  ui.progress.hidden = false;
  ui.bar.value = 0;
  ui.info.textContent = "";
  setStatus(`Loading ${model.name}…`);
  refresh();
  const threads = Math.max(1, Number($("opt-threads").value) || 1);
  worker.postMessage({ type: "load", url: model.url, name: model.name, size: model.size || 0,
                       sha256: model.sha256 || null, threads, backend: backendChoice(),
                       ...(state.loadOptions || {}) });
}

function loadFile(file) {
  if (!file || !state.ready || state.busy) return;
  state.busy = true;
  state.loaded = false;
  state.loadT0 = performance.now();
  ui.progress.hidden = false;
  ui.bar.value = 0;
  ui.info.textContent = "";
  setStatus(`Loading ${file.name}…`);
  refresh();
  const threads = Math.max(1, Number($("opt-threads").value) || 1);
  worker.postMessage({ type: "load", file, name: file.name, size: file.size, threads, backend: backendChoice() });
}

$("file-input").addEventListener("change", (e) => {
  loadFile(e.target.files[0]);
  e.target.value = ""; // picking the same file again (e.g. on another backend) loads it again
});
document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (e) => {
  e.preventDefault();
  document.body.classList.remove("dragging");
  const f = e.dataTransfer && e.dataTransfer.files[0];
  if (f) loadFile(f);
});

function send(text, regenerate = false) {
  if (!text.trim() || !state.loaded || state.busy) return;
  if (!regenerate) {
    state.messages.push({ role: "user", content: text });
    addMessage("user", text);
  }
  const id = state.nextId++;
  const el = addMessage("assistant thinking", "");
  state.current = { id, el, text: "", t0: performance.now(), firstTokenMs: null };
  state.busy = true;
  ui.prompt.value = "";
  setStatus("Thinking…");
  refresh();
  setStopFlag(0);
  const system = $("opt-system").value.trim();
  const messages = system ? [{ role: "system", content: system }, ...state.messages] : state.messages;
  worker.postMessage({ type: "generate", id, messages, options: options() });
}

ui.form.addEventListener("submit", (e) => { e.preventDefault(); send(ui.prompt.value); });
ui.prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(ui.prompt.value); }
});
ui.stop.addEventListener("click", () => {
  setStopFlag(1);
  worker.postMessage({ type: "cancel" });
});
$("save-chat-btn").addEventListener("click", () => {
  if (!state.loaded || state.busy) return;
  state.saving = true;
  worker.postMessage({ type: "chat-save", messages: state.messages });
});
$("restore-chat-btn").addEventListener("click", () => {
  if (!state.loaded || state.busy) return;
  state.busy = true;
  refresh();
  worker.postMessage({ type: "chat-restore" });
});
$("regen-btn").addEventListener("click", () => {
  // drop the last reply and ask again (with sampling on, a different one)
  if (state.busy || !state.messages.length || state.messages[state.messages.length - 1].role !== "assistant") return;
  state.messages.pop();
  const replies = ui.chat.querySelectorAll(".msg.assistant");
  if (replies.length) replies[replies.length - 1].remove();
  send(state.messages[state.messages.length - 1].content, true);
});
$("url-btn").addEventListener("click", () => {
  const url = $("url-input").value.trim();
  if (!url) return;
  const id = "url:" + url;
  if (!state.models.find((m) => m.id === id)) {
    state.models.push({ id, name: url.split("/").pop() || url, url, size: 0 });
    const o = document.createElement("option");
    o.value = id;
    o.textContent = url.split("/").pop() || url;
    ui.select.appendChild(o);
  }
  ui.select.value = id;
  loadSelected();
});
$("forget-btn").addEventListener("click", () => {
  const url = $("forget-btn").dataset.url;
  if (url) worker.postMessage({ type: "cache-delete", url });
});
ui.load.addEventListener("click", loadSelected);
ui.select.addEventListener("change", showStorage);
$("opt-threads").addEventListener("change", () => { $("opt-threads").dataset.touched = "1"; });
ui.newChat.addEventListener("click", () => {
  if (state.current) { setStopFlag(1); worker.postMessage({ type: "cancel" }); }
  state.messages = [];
  ui.chat.replaceChildren();
  ui.stats.textContent = "";
  worker.postMessage({ type: "reset" });
});

// ---- worker events -------------------------------------------------------------------------
worker.onmessage = (event) => {
  const m = event.data;
  webgpuEvent(m);
  switch (m.type) {
    case "status":
      setStatus(m.text);
      break;
    case "ready":
      state.ready = true;
      state.bootMs = m.boot_ms;
      state.readyMs = performance.now() - state.pageT0;
      // the worker's clock starts when it is created: its phases follow the page's own start
      state.timings.boot = [["page", Math.round(m.time_origin - performance.timeOrigin)], ...(m.timings || [])];
      state.timings.pythonFrom = m.python_from;
      showTimings();
      state.models = m.build.models || [];
      // threads: the machine's cores when the page is cross-origin isolated, else 1
      if (!$("opt-threads").dataset.touched) $("opt-threads").value = m.threads_ok ? m.cores : 1;
      $("opt-threads").disabled = !m.threads_ok;
      ui.select.replaceChildren(...state.models.map((mod) => {
        const o = document.createElement("option");
        o.value = mod.id;
        o.textContent = `${mod.name} — ${fmtBytes(mod.size || mod.approx_size)}` + (mod.remote ? " (download)" : "");
        o.title = mod.remote ? `${mod.url}\n${mod.sha256 ? "sha256 " + mod.sha256 : "no sha256 known: size check only"}` : "";
        return o;
      }));
      setStatus(`Ready (Python started in ${(m.boot_ms / 1000).toFixed(1)} s; engine ${m.engine.includes("WASM_SIMD=1") ? "wasm SIMD" : "wasm"}${m.engine_flavor === "baseline" ? ", without relaxed SIMD: slower" : ""}).`);
      refresh();
      worker.postMessage({ type: "cache-list" });
      if (state.models.find((mod) => mod.bundled)) { // the bundled default model (never a download)
        ui.select.value = state.models.find((mod) => mod.bundled).id;
        loadSelected();
      }
      break;
    case "timings":
      state.timings[m.phase] = m.timings;
      showTimings();
      break;
    case "stop-flag":
      state.stopFlag = () => new Int32Array(m.memory ? m.memory.buffer : m.buffer, m.ptr, 1);
      break;
    case "chat-saved":
      state.savedChat = m.info;
      if (state.saving && m.info) setStatus("Conversation saved in this browser.");
      state.saving = false;
      refresh();
      break;
    case "restored":
      state.messages = m.messages;
      ui.chat.replaceChildren();
      for (const msg of m.messages) if (msg.role !== "system") addMessage(msg.role, msg.content);
      ui.stats.textContent = "";
      state.busy = false;
      setStatus(`Conversation restored (${m.n_tokens} tokens of model state).`);
      refresh();
      break;
    case "cached":
      state.cached = m.models;
      state.partial = m.partial || [];
      state.storage = { usage: m.usage, quota: m.quota, persisted: m.persisted };
      showStorage();
      break;
    case "progress":
      ui.bar.value = m.percent == null ? 0 : m.percent;
      state.loadedFromCache = !!m.cached;
      state.resumedFrom = m.resumed_from || 0;
      ui.progressText.textContent = (m.cached ? "from cache: " : "") +
        (m.resumed_from ? `resumed at ${fmtBytes(m.resumed_from)}: ` : "") + `${fmtBytes(m.loaded)} / ${fmtBytes(m.total)}` +
        (m.percent == null ? "" : ` (${m.percent.toFixed(0)}%)`) +
        (m.speed ? ` · ${fmtBytes(m.speed)}/s` : "") + (m.eta_s ? ` · ${m.eta_s.toFixed(0)} s left` : "");
      break;
    case "loaded":
      state.timings.model = m.timings || null;
      state.headerCached = !!m.header_cached; // the stored model's parsed header was reused
      state.loaded = true;
      state.busy = false;
      state.loadedMs = performance.now() - state.loadT0;
      ui.progress.hidden = true;
      // ask the browser not to evict the models we keep (it may say no; that is fine), then
      // show what the store holds (the worker answers after it stored this model)
      (navigator.storage && navigator.storage.persist ? navigator.storage.persist().catch(() => false)
        : Promise.resolve(false)).then(() => worker.postMessage({ type: "cache-list" }));
      ui.info.textContent = `${m.name} · ${m.arch} · ${(m.n_params / 1e6).toFixed(0)}M params · ` +
        `ctx ${m.n_ctx} · ${m.flavor === "pthreads" ? m.threads + " threads" : "1 thread"} · ` +
        `loaded in ${(m.load_ms / 1000).toFixed(1)} s`;
      // a base model without a chat template continues text better than it chats
      $("opt-raw").checked = !!(m.template && m.template.startsWith("fallback"));
      setStatus("Model loaded. Say something.");
      refresh();
      ui.prompt.focus();
      break;
    case "prefill":
      setStatus(`Reading the prompt (${m.n_eval} tokens)…`);
      break;
    case "token": {
      const c = state.current;
      if (!c || c.id !== m.id) break;
      if (c.firstTokenMs == null) {
        c.firstTokenMs = performance.now() - c.t0;
        setStatus("Writing…");
      }
      c.text += m.text;
      renderMarkdown(c.el, c.text);
      const secs = (performance.now() - c.t0 - c.firstTokenMs) / 1000;
      ui.stats.textContent = `${m.n} tokens` + (secs > 0 && m.n > 1 ? ` · ${((m.n - 1) / secs).toFixed(1)} tok/s` : "");
      ui.chat.scrollTop = ui.chat.scrollHeight;
      break;
    }
    case "done": {
      const c = state.current;
      if (c && c.id === m.id) {
        c.el.classList.remove("thinking");
        renderMarkdown(c.el, m.text);
        state.messages.push({ role: "assistant", content: m.text });
        const s = m.stats;
        ui.stats.textContent = `prompt ${s.n_prompt} tokens (${s.n_eval} new) in ${s.prefill_ms} ms · ` +
          `${s.n_gen} tokens at ${s.decode_tok_s} tok/s` + (m.stopped === "cancelled" ? " · stopped" : "");
        state.lastStats = s;
      }
      state.current = null;
      state.busy = false;
      setStatus(m.stopped === "cancelled" ? "Stopped." : "Done.");
      refresh();
      break;
    }
    case "error": {
      const where = m.during ? ` (${m.during})` : "";
      setStatus(`Error${where}: ${m.message}`, true);
      if (state.current && (m.id == null || state.current.id === m.id)) {
        state.current.el.classList.remove("thinking");
        state.current.el.classList.add("error");
        state.current.el.textContent = m.message;
        state.current = null;
      }
      if (m.during === "load") {
        ui.progress.hidden = true;
        state.loaded = false;
        worker.postMessage({ type: "cache-list" }); // a partial download may have been kept
      }
      state.busy = false;
      state.lastError = m.message;
      refresh();
      break;
    }
  }
};
worker.onerror = (e) => setStatus(`Worker failed: ${e.message || e}`, true);
