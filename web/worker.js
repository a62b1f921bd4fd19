// The worker: Pyodide (self-hosted from ./pyodide/) + the app wheels, one WorkerSession
// (app/worker/session.py) holding the model. It owns the I/O; Python owns the rest.
//
// A module worker (Pyodide 314 refuses classic workers). The pthreads engine module is a
// classic Emscripten script (its own pthread workers importScripts it): it is evaluated
// here from its text.
//
// page -> worker: {type: "load", url | file, name, size, threads}   stream a GGUF into the engine
//                 (threads > 1 and a cross-origin isolated page: the pthreads module, sized
//                 for this model; else the single-threaded side module inside Pyodide)
//                 {type: "generate", id, messages, options}
//                 {type: "cancel"}                  stop the reply being generated (see also stop-flag)
//                 {type: "chat-save", messages} / {type: "chat-restore"}   the conversation and
//                 the model state, kept per model (web/saved_chats.js, app/worker/chat_state.py)
//                 {type: "reset"}                   new chat (forget the state)
//                 {type: "cache-list"} / {type: "cache-delete", url}   models kept offline
//                 (Cache API "pyllm-models-v1"; answered with {type: "cached", models, usage, quota})
// worker -> page: {type: "status", phase, text}     boot steps
//                 {type: "ready", boot_ms, engine, build}
//                 {type: "progress", loaded, total, percent, speed, eta_s}
//                 {type: "loaded", ...}             model facts, load_ms
//                 {type: "prefill", id, n_prompt, n_eval}
//                 {type: "token", id, token, text, n}
//                 {type: "done", id, text, stats, stopped}
//                 {type: "error", id?, during, message}
//                 {type: "stop-flag", buffer | memory, ptr}   an Int32 shared with the page: the
//                 page sets it to 1 to stop, 0 before each request; Python polls it between
//                 tokens and prompt chunks, the pthreads engine between graph nodes
//                 {type: "chat-saved", bytes, saved_at} (or null)   after a load or a save
//                 {type: "restored", messages, n_tokens}
import { loadPyodide } from "./pyodide/pyodide.mjs";
import "./engine_bridge.js"; // defines self.pyllmBridge
import { getSavedChat, putSavedChat, savedChatInfo } from "./saved_chats.js";

const post = (m) => self.postMessage(m);
let py = null;
let session = null;
let queue = Promise.resolve(); // load/generate/reset run one at a time; cancel jumps the queue
let build = null;
let sideLib = null; // the side module's Library (Python object)
let mt = null; // the current pthreads module instance
const base = new URL("./", self.location.href);
// the stop flag of the single-threaded engine (Pyodide's memory is not shared: Python polls
// this one between tokens and prompt chunks); the pthreads engine gets one in its own memory
const sideStopFlag = self.crossOriginIsolated ? new Int32Array(new SharedArrayBuffer(4)) : null;

function shareStopFlag(view, transfer) {
  session.cancel_probe = () => Atomics.load(view(), 0) !== 0;
  post({ type: "stop-flag", ...transfer });
}

function pyMessage(err) {
  // a PythonError's message is the whole traceback: the last line is the one a user can act on
  const text = String((err && err.message) || err);
  const lines = text.trim().split("\n").filter((l) => l.trim());
  const last = lines[lines.length - 1] || text;
  return last.replace(/^[A-Za-z_.]*(Error|Exception): /, "");
}

async function boot() {
  const t0 = performance.now();
  post({ type: "status", phase: "boot", text: "Starting Python (Pyodide)…" });
  build = await (await fetch(new URL("build.json", base), { cache: "no-cache" })).json();
  py = await loadPyodide({ indexURL: new URL(build.pyodide.indexURL, base).href });
  post({ type: "status", phase: "install", text: "Installing the app and the engine…" });
  const wheels = [...(build.wheels.deps || []), build.wheels.app, build.wheels.engine];
  await py.loadPackage(wheels.map((w) => new URL(w, base).href), { messageCallback: () => {} });
  self._pyllm_post = (ev) => post(ev);
  session = py.runPython(`
import js
from pyodide.ffi import to_js
import pyllm_engine_wasm
from app.backends.ggml.library import load_library
from app.worker import WorkerSession

def _emit(event):
    js._pyllm_post(to_js(event, dict_converter=js.Object.fromEntries))

WorkerSession(_emit, load_library(pyllm_engine_wasm.LIBRARY))
`);
  sideLib = session.lib;
  if (sideStopFlag) shareStopFlag(() => sideStopFlag, { buffer: sideStopFlag.buffer, ptr: 0 });
  const engine = session.lib.eng_system_info().decode();
  const threadsOk = self.crossOriginIsolated === true && !!(build.engine && build.engine.threads);
  post({ type: "ready", boot_ms: Math.round(performance.now() - t0), engine, build, threads_ok: threadsOk,
         cores: navigator.hardwareConcurrency || 1 });
}

// The pthreads module for one model: memory sized from the model (weights + KV cache +
// compute buffers), and threads-1 workers started up front (asking ggml for more threads
// than pool+1 would hang).
async function startThreadsEngine(threads, modelBytes) {
  session.unload(); // free the previous model while its engine still runs
  if (mt) {
    try { mt.PThread.terminateAllThreads(); } catch (e) { /* best effort */ }
    mt = null;
  }
  const page = 65536;
  const want = (modelBytes || 0) * 1.15 + (256 << 20);
  const memory = Math.min(Math.ceil(want / page) * page, 4 * 1024 * 1024 * 1024 - page);
  const dir = new URL(build.engine.threads.dir, base);
  const scriptUrl = new URL(build.engine.threads.js, base).href;
  if (!self.createPyllmEngine) {
    const text = await (await fetch(scriptUrl)).text();
    self.createPyllmEngine = new Function(`${text}\nreturn createPyllmEngine;`)();
  }
  mt = await self.createPyllmEngine({
    pyllmPoolSize: Math.max(1, threads - 1), // 0 would never resolve (Emscripten 3.1.6)
    INITIAL_MEMORY: memory,
    locateFile: (path) => new URL(path, dir).href,
    mainScriptUrlOrBlob: scriptUrl,
  });
  const bridge = self.pyllmBridge(py, mt);
  const jslib = py.pyimport("app.worker.jslib");
  session.use_engine(jslib.JsLibrary(bridge), threads);
  jslib.destroy();
  // its memory is shared: the page's stop button can reach into a running compute
  const flag = mt._malloc(4);
  const view = () => new Int32Array(mt.wasmMemory.buffer, flag, 1);
  Atomics.store(view(), 0, 0);
  session.set_abort_flag(flag);
  shareStopFlag(view, { memory: mt.wasmMemory, ptr: flag });
}

const MODEL_CACHE = "pyllm-models-v1";

// The model's bytes: from the Cache API when this URL was loaded before (offline works),
// else from the network, written into the cache while the engine reads them (one pass,
// no extra full copy). A download that fails, is cut short or is not a GGUF never stays
// in the cache: the cache write is aborted or the entry deleted.
async function openModel(url, expectedSize) {
  const key = new URL(url, base).href;
  const cache = self.caches ? await caches.open(MODEL_CACHE) : null;
  if (cache) {
    const hit = await cache.match(key);
    if (hit) return { resp: hit, fromCache: true, cache, key };
  }
  let resp;
  const abort = new AbortController();
  try {
    resp = await fetch(key, { signal: abort.signal });
  } catch (e) {
    throw new Error(`${url}: cannot download (${e.message})`);
  }
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status} ${resp.statusText || ""}`.trim());
  if (!cache) return { resp, fromCache: false };
  const [forEngine, forCache] = resp.body.tee();
  const headers = new Headers(resp.headers);
  const stored = cache.put(key, new Response(forCache, { headers })).then(() => true, () => false);
  return { resp: new Response(forEngine, { headers }), fromCache: false, cache, key, stored, abort };
}

async function loadModel(msg) {
  const t0 = performance.now();
  // a local file (picker or drag-and-drop) is read in place, never copied into the cache
  const src = msg.file
    ? { resp: new Response(msg.file.stream(), { headers: { "Content-Length": String(msg.file.size) } }),
        fromCache: false }
    : await openModel(msg.url, msg.size);
  const resp = src.resp;
  const total = Number(resp.headers.get("Content-Length")) || msg.size || 0;
  const threads = Math.max(1, Math.floor(msg.threads || 1));
  let ms = null;
  let loaded = 0;
  let lastPost = 0;
  const reader = resp.body.getReader();
  try {
    if (threads > 1 && self.crossOriginIsolated && build.engine.threads) {
      await startThreadsEngine(threads, total);
    } else {
      session.use_engine(sideLib, 1);
      if (sideStopFlag) shareStopFlag(() => sideStopFlag, { buffer: sideStopFlag.buffer, ptr: 0 });
    }
    ms = session.begin_load(msg.name || msg.url, total || null);
    const heap = () => py._module.HEAPU8;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const ptr = ms.staging(value.length);
      heap().set(value, ptr);
      ms.feed_staged(value.length);
      loaded += value.length;
      const now = performance.now();
      if (now - lastPost > 100) {
        lastPost = now;
        const speed = loaded / Math.max((now - t0) / 1000, 1e-3);
        post({ type: "progress", loaded, total, percent: total ? (100 * loaded) / total : null,
               speed, eta_s: total ? (total - loaded) / speed : null, cached: src.fromCache });
      }
    }
    if (total && loaded !== total) {
      throw new Error(`${msg.url}: truncated download: got ${loaded} of ${total} bytes`);
    }
    post({ type: "progress", loaded, total: total || loaded, percent: 100, speed: 0, eta_s: 0,
           cached: src.fromCache });
    session.finish_load(); // emits "loaded" (checks every tensor got all its bytes)
    post({ type: "chat-saved", info: await savedChatInfo(modelIdentity()) });
    if (src.stored && !(await src.stored)) {
      post({ type: "status", phase: "cache", text: "The model could not be stored for offline use." });
    }
  } catch (e) {
    if (src.abort) src.abort.abort(); // stops the download and the cache write
    try { await reader.cancel(); } catch (_) { /* already closed */ }
    if (src.cache) {
      if (src.stored) await src.stored; // the aborted write settles first
      await src.cache.delete(src.key); // a bad or partial model never stays cached
    }
    if (ms) session.abort_load();
    throw e;
  } finally {
    if (ms) ms.destroy();
  }
}

async function listCached() {
  const out = [];
  if (self.caches) {
    const cache = await caches.open(MODEL_CACHE);
    for (const req of await cache.keys()) {
      const r = await cache.match(req);
      out.push({ url: req.url, size: Number(r.headers.get("Content-Length")) || null });
    }
  }
  const est = navigator.storage && navigator.storage.estimate ? await navigator.storage.estimate() : {};
  post({ type: "cached", models: out, usage: est.usage || null, quota: est.quota || null });
}

function modelIdentity() {
  return session.runner ? session.runner.model_identity() : null;
}

async function saveChat(messages) {
  const identity = modelIdentity();
  if (!identity) throw new Error("no model loaded: nothing to save");
  const pyMessages = py.toPy(messages);
  let data;
  try {
    const bytes = session.save_chat(pyMessages);
    const buf = bytes.getBuffer("u8");
    data = buf.data.slice();
    buf.release();
    bytes.destroy();
  } finally {
    pyMessages.destroy();
  }
  await putSavedChat(identity, data);
  post({ type: "chat-saved", info: await savedChatInfo(identity) });
}

async function restoreChat() {
  const identity = modelIdentity();
  if (!identity) throw new Error("no model loaded: load the model the conversation was saved with");
  const data = await getSavedChat(identity);
  if (!data) throw new Error("no conversation was saved with this model");
  session.restore_chat(data); // emits "restored"; a bad one raises and changes nothing
}

async function handle(msg) {
  switch (msg.type) {
    case "load":
      return loadModel(msg);
    case "generate": {
      const messages = py.toPy(msg.messages);
      const options = py.toPy(msg.options || {});
      try {
        await session.generate(msg.id, messages, options);
      } finally {
        messages.destroy();
        options.destroy();
      }
      return;
    }
    case "reset":
      return session.reset();
    case "chat-save":
      return saveChat(msg.messages);
    case "chat-restore":
      return restoreChat();
    case "cache-list":
      return listCached();
    case "cache-delete": {
      const cache = await caches.open(MODEL_CACHE);
      await cache.delete(new URL(msg.url, base).href);
      return listCached();
    }
    default:
      throw new Error(`unknown message type ${msg.type}`);
  }
}

const booted = boot().catch((e) => post({ type: "error", during: "boot", message: pyMessage(e) }));

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === "cancel") {
    if (session) session.cancel();
    return;
  }
  queue = queue.then(async () => {
    await booted;
    if (!session) return;
    try {
      await handle(msg);
    } catch (e) {
      post({ type: "error", id: msg.id, during: msg.type, message: pyMessage(e) });
    }
  });
};
