// The worker: Pyodide (self-hosted from ./pyodide/) + the app wheels, one WorkerSession
// (app/worker/session.py) holding the model. It owns the I/O; Python owns the rest.
//
// page -> worker: {type: "load", url, name, size}   stream a GGUF into the engine
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

const post = (m) => self.postMessage(m);
let py = null;
let session = null;
let queue = Promise.resolve(); // load/generate/reset run one at a time; cancel jumps the queue

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
  const base = new URL("./", self.location.href);
  const build = await (await fetch(new URL("build.json", base), { cache: "no-cache" })).json();
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
  const engine = session.lib.eng_system_info().decode();
  post({ type: "ready", boot_ms: Math.round(performance.now() - t0), engine, build });
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
