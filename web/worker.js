// The worker: Pyodide (self-hosted from ./pyodide/) + the app wheels, one WorkerSession
// (app/worker/session.py) holding the model. It owns the I/O; Python owns the rest.
//
// A module worker (Pyodide 314 refuses classic workers). The pthreads engine module is a
// classic Emscripten script (its own pthread workers importScripts it): it is evaluated
// here from its text.
//
// page -> worker: {type: "load", url, name, size, threads}   stream a GGUF into the engine
//                 (threads > 1 and a cross-origin isolated page: the pthreads module, sized
//                 for this model; else the single-threaded side module inside Pyodide)
//                 {type: "generate", id, messages, options}
//                 {type: "cancel"}                  stop the reply being generated
//                 {type: "reset"}                   new chat (forget the state)
// worker -> page: {type: "status", phase, text}     boot steps
//                 {type: "ready", boot_ms, engine, build}
//                 {type: "progress", loaded, total, percent, speed, eta_s}
//                 {type: "loaded", ...}             model facts, load_ms
//                 {type: "prefill", id, n_prompt, n_eval}
//                 {type: "token", id, token, text, n}
//                 {type: "done", id, text, stats, stopped}
//                 {type: "error", id?, during, message}
import { loadPyodide } from "./pyodide/pyodide.mjs";
import "./engine_bridge.js"; // defines self.pyllmBridge

const post = (m) => self.postMessage(m);
let py = null;
let session = null;
let queue = Promise.resolve(); // load/generate/reset run one at a time; cancel jumps the queue
let build = null;
let sideLib = null; // the side module's Library (Python object)
let mt = null; // the current pthreads module instance
const base = new URL("./", self.location.href);

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
}

async function loadModel(msg) {
  const t0 = performance.now();
  let resp;
  try {
    resp = await fetch(msg.url);
  } catch (e) {
    throw new Error(`${msg.url}: cannot download (${e.message})`);
  }
  if (!resp.ok) throw new Error(`${msg.url}: HTTP ${resp.status} ${resp.statusText || ""}`.trim());
  const total = Number(resp.headers.get("Content-Length")) || msg.size || 0;
  const threads = Math.max(1, Math.floor(msg.threads || 1));
  if (threads > 1 && self.crossOriginIsolated && build.engine.threads) {
    await startThreadsEngine(threads, total);
  } else {
    session.use_engine(sideLib, 1);
  }
  const ms = session.begin_load(msg.name || msg.url, total || null);
  const heap = () => py._module.HEAPU8;
  let loaded = 0;
  let lastPost = 0;
  try {
    const reader = resp.body.getReader();
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
               speed, eta_s: total ? (total - loaded) / speed : null });
      }
    }
    post({ type: "progress", loaded, total: total || loaded, percent: 100, speed: 0, eta_s: 0 });
    session.finish_load(); // emits "loaded"
  } catch (e) {
    session.abort_load();
    throw e;
  } finally {
    ms.destroy();
  }
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
