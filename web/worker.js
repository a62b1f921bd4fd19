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
//                 (backend: "auto" | "webgpu" | "wasm"; WebGPU runs on the side module's sampler)
//                 {type: "diagnose", positions}   the loaded WebGPU model vs the wasm engine
//                 {type: "cache-list"} / {type: "cache-delete", url}   models kept offline
//                 (web/model_store.js; answered with {type: "cached", models, partial, usage,
//                 quota, persisted}); a load may carry sha256 (checked while streaming) and
//                 part_bytes (the store's part size; tests use small parts)
// worker -> page: {type: "status", phase, text}     boot steps
//                 {type: "ready", boot_ms, engine, build, timings, python_from, time_origin}   timings:
//                 the boot's phases ([name, ms]: script, build.json, python (from the snapshot or
//                 started), wheels, app); time_origin: the worker's clock origin (the page's offset)
//                 {type: "timings", phase: "load", timings}   a load's phases (open, engine,
//                 warmup (the pthreads engine's), stream, stream_waiting, finish, store); "loaded"
//                 has Python's own (header, ...)
//                 {type: "progress", loaded, total, percent, speed, eta_s, cached, resumed_from}
//                 {type: "loaded", ...}             model facts, load_ms, backend, adapter
//                 {type: "backend", backend, adapter, reason}   what the load runs on
//                 {type: "diagnostics", top1, min_cos, positions, passes, ...}
//                 {type: "prefill", id, n_prompt, n_eval}
//                 {type: "token", id, token, text, n}
//                 {type: "done", id, text, stats, stopped}
//                 {type: "error", id?, during, message}
//                 {type: "stop-flag", buffer | memory, ptr}   an Int32 shared with the page: the
//                 page sets it to 1 to stop, 0 before each request; Python polls it between
//                 tokens, the engine between graph nodes (pthreads: in its shared memory;
//                 side module: through a JS function in Pyodide's table)
//                 {type: "chat-saved", bytes, saved_at} (or null)   after a load or a save
//                 {type: "restored", messages, n_tokens}
import { loadPyodide } from "./pyodide/pyodide.mjs";
import "./engine_bridge.js"; // defines self.pyllmBridge
import "./engine_flavor.js"; // defines self.pyllmEngineFlavor
import { getSavedChat, putSavedChat, savedChatInfo } from "./saved_chats.js";
import { abortDownloads, deleteStored, listStore, NetworkError, openModelSource } from "./model_store.js";
import { selectBackend, diagnose } from "./webgpu_worker.js";
import { fetchWheelFiles, installWheelFiles } from "./wheel_files.js";

const post = (m) => self.postMessage(m);
// Where the time goes: a clock of phases, each [name, ms]. The boot's go with "ready" (the
// first, "script", is the worker's own start: fetching and evaluating this module), the
// load's with "timings" after a load; Python adds its own (app/worker/session.py).
function phaseClock(t0 = 0) {
  const phases = [];
  let last = t0;
  return {
    phases,
    lap(name) {
      const now = performance.now();
      phases.push([name, Math.round(now - last)]);
      last = now;
    },
  };
}
const bootClock = phaseClock();
bootClock.lap("script");
let pythonFrom = "start"; // or "snapshot"
let py = null;
let session = null;
let queue = Promise.resolve(); // load/generate/reset run one at a time; cancel jumps the queue
let build = null;
let engineFlavor = null; // {name, wheel, threads}: the engine build this browser runs
let sideLib = null; // the side module's Library (Python object)
let mt = null; // the current pthreads module instance
let lastLoad = null; // the last "load" message (diagnostics read the model again)
const base = new URL("./", self.location.href);
// the stop flag of the single-threaded engine (Pyodide's memory is not shared, so Python and
// the engine read it through JS); the pthreads engine gets one in its own shared memory
const sideStopFlag = self.crossOriginIsolated ? new Int32Array(new SharedArrayBuffer(4)) : null;

let sideAbortFn = 0; // a wasm function the side module's engine calls between graph nodes

function useSideEngine() {
  session.use_engine(sideLib, 1);
  if (!sideStopFlag) return;
  // the side module runs in Pyodide's memory, which the page cannot write: its engine asks
  // this JS function (in Pyodide's function table) whether the stop flag is set
  if (!sideAbortFn) sideAbortFn = py._module.addFunction(() => (Atomics.load(sideStopFlag, 0) !== 0 ? 1 : 0), "i");
  session.set_abort_function(sideAbortFn);
  shareStopFlag(() => sideStopFlag, { buffer: sideStopFlag.buffer, ptr: 0 });
}

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

// Python from the build's memory snapshot (tools/pyodide_snapshot.py: started, with the app's
// modules imported) when there is one: restoring it skips the interpreter's start, most of the
// boot. Without one, or when it cannot be restored, Python starts the usual way.
// A restored Python cannot suspend on JS promises (Pyodide 314's experimental snapshots lose
// JS Promise Integration), which the WebGPU backend needs: where a WebGPU adapter exists,
// Python starts the usual way.
async function webgpuPossible() {
  if (!("Suspending" in WebAssembly) || !self.navigator || !navigator.gpu) return false;
  try { return !!(await navigator.gpu.requestAdapter()); } catch (e) { return false; }
}

async function startPython(indexURL) {
  const snap = build.pyodide.snapshot;
  if (snap && !(await webgpuPossible())) {
    try {
      const bytes = fetch(new URL(snap, indexURL)).then((r) => {
        if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
        return new Response(r.body.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
      });
      const restored = await loadPyodide({ indexURL: indexURL.href, _loadSnapshot: bytes });
      pythonFrom = "snapshot";
      return restored;
    } catch (e) {
      console.warn(`the Python snapshot could not be restored (${e.message || e}): starting Python`);
    }
  }
  return loadPyodide({ indexURL: indexURL.href });
}

async function boot() {
  const t0 = performance.now();
  post({ type: "status", phase: "boot", text: "Starting Python (Pyodide)…" });
  build = await (await fetch(new URL("build.json", base), { cache: "no-cache" })).json();
  bootClock.lap("build.json");
  engineFlavor = self.pyllmEngineFlavor(build);
  // the pure-Python wheels are fetched and unpacked while Python starts (web/wheel_files.js)
  const pure = [...(build.wheels.deps || []), build.wheels.app].map((w) => new URL(w, base).href);
  const pureFiles = Promise.all(pure.map(fetchWheelFiles));
  pureFiles.catch(() => {}); // handled below
  py = await startPython(new URL(build.pyodide.indexURL, base));
  bootClock.lap("python");
  post({ type: "status", phase: "install", text: "Installing the app and the engine…" });
  let files = null;
  try {
    files = await pureFiles;
  } catch (e) {
    console.warn(`unpacking the wheels in JS failed (${e.message || e}): Pyodide installs them`);
  }
  if (files) files.forEach((f) => installWheelFiles(py, f));
  const wheels = [...(files ? [] : pure), new URL(engineFlavor.wheel, base).href];
  await py.loadPackage(wheels, { messageCallback: () => {} });
  bootClock.lap("wheels");
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
  bootClock.lap("app");
  sideLib = session.lib;
  if (sideStopFlag) shareStopFlag(() => sideStopFlag, { buffer: sideStopFlag.buffer, ptr: 0 });
  const engine = session.lib.eng_system_info().decode();
  const threadsOk = self.crossOriginIsolated === true && !!engineFlavor.threads;
  post({ type: "ready", boot_ms: Math.round(performance.now() - t0), engine, build, threads_ok: threadsOk,
         timings: bootClock.phases, python_from: pythonFrom, time_origin: performance.timeOrigin,
         engine_flavor: engineFlavor.name,
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
  const dir = new URL(engineFlavor.threads.dir, base);
  const scriptUrl = new URL(engineFlavor.threads.js, base).href;
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

// The model's bytes come from web/model_store.js: from the store when this URL was loaded
// before (offline works), else downloaded (resumed after a reload or a lost connection),
// and stored in parts while the engine reads them. Only a model the engine accepted, of the
// right size and sha256, becomes a stored model: a bad file (not a GGUF, truncated, another
// digest) leaves nothing behind; a network failure keeps the good bytes for a resume.
async function loadModel(msg) {
  const t0 = performance.now();
  const clock = phaseClock(t0);
  // a local file (picker or drag-and-drop) is read in place, never copied into the store
  const src = msg.file
    ? { chunks: fileChunks(msg.file), total: msg.file.size, fromCache: false, resumedFrom: 0, header: null,
        commit: async () => {}, keep: async () => {}, discard: async () => {}, saveHeader: async () => {} }
    : await openModelSource(msg.url, { size: msg.size || 0, partBytes: msg.part_bytes || undefined });
  clock.lap("open");
  const total = src.total || msg.size || 0;
  const threads = Math.max(1, Math.floor(msg.threads || 1));
  const sha256 = src.fromCache ? null : msg.sha256 || null; // stored bytes were checked when stored
  let ms = null;
  let threadsStarted = false;
  let loaded = 0;
  let lastPost = 0;
  const progress = (final) => {
    const now = performance.now();
    if (!final && now - lastPost <= 100) return;
    lastPost = now;
    const speed = loaded / Math.max((now - t0) / 1000, 1e-3);
    post({ type: "progress", loaded, total: total || loaded, percent: total ? (100 * loaded) / total : null,
           speed: final ? 0 : speed, eta_s: final ? 0 : total ? (total - loaded) / speed : null,
           cached: src.fromCache, resumed_from: src.resumedFrom });
  };
  // the first read starts now (a stored model: its part reader, web/model_store.js), so the
  // bytes come in while the engine starts and warms up; its error surfaces where it is awaited
  const chunks = src.chunks[Symbol.asyncIterator]();
  const first = chunks.next();
  first.catch(() => {});
  try {
    const backend = await selectBackend(py, session, msg.backend);
    post({ type: "backend", ...backend });
    if (backend.backend === "webgpu") {
      useSideEngine(); // the sampler's engine; the model itself goes to the GPU
    } else if (threads > 1 && self.crossOriginIsolated && engineFlavor.threads) {
      await startThreadsEngine(threads, total);
      threadsStarted = true;
    } else {
      useSideEngine();
    }
    clock.lap("engine");
    if (threadsStarted) {
      // a new instance starts on unoptimised code, and with every core computing V8 has none
      // to optimise it on: a tiny model on one thread makes the kernels hot now, and they are
      // compiled while the model streams in (app/worker/warmup.py)
      const warmup = py.pyimport("app.worker.warmup");
      const lib = session.lib;
      try {
        warmup.warm_up(lib);
      } catch (e) {
        console.warn(`engine warm-up failed: ${e.message || e}`);
      } finally {
        lib.destroy();
        warmup.destroy();
      }
      clock.lap("warmup");
    }
    ms = session.begin_load.callKwargs(msg.name || msg.url, total || null, { sha256, header: src.header ?? undefined });
    const heap = () => py._module.HEAPU8;
    let waited = 0;
    let tw = performance.now();
    for (let r = await first; !r.done; r = await chunks.next()) {
      const value = r.value;
      waited += performance.now() - tw;
      const ptr = ms.staging(value.length);
      heap().set(value, ptr);
      ms.feed_staged(value.length);
      loaded += value.length;
      progress(false);
      tw = performance.now();
    }
    clock.lap("stream"); // the bytes into the engine (Python's header, runner and copies are part of it)
    clock.phases.push(["stream_waiting", Math.round(waited)]); // of which waiting for bytes
    if (total && loaded !== total) { // the connection ended early: what arrived is good, resume later
      throw new NetworkError(`${msg.url || msg.name}: truncated download: got ${loaded} of ${total} bytes`);
    }
    progress(true);
    session.finish_load(); // emits "loaded" (checks every tensor got all its bytes, the size, the sha256)
    clock.lap("finish");
    lastLoad = msg;
    try {
      await src.commit(sha256);
    } catch (e) {
      post({ type: "status", phase: "cache", text: `The model could not be stored for offline use (${e.message}).` });
    }
    clock.lap("store");
    // the parsed header, kept with a stored model so that its next load skips the parse
    // (null when this load used a good one already)
    const blob = session.header_blob();
    if (blob) {
      try {
        await src.saveHeader(blob.toJs());
      } catch (e) {
        console.warn(`the model's header could not be stored: ${e.message || e}`);
      } finally {
        blob.destroy();
      }
    }
    post({ type: "timings", phase: "load", timings: clock.phases });
    post({ type: "chat-saved", info: await savedChatInfo(modelIdentity()) });
  } catch (e) {
    abortDownloads();
    if (ms) session.abort_load();
    if (e instanceof NetworkError && !msg.file) {
      await src.keep().catch(() => {});
      throw new Error(`${e.message}: download interrupted after ${loaded} of ${total || "?"} bytes; load it ` +
                      `again to resume`);
    }
    await src.discard().catch(() => {}); // a bad or partial model never stays stored
    throw e;
  } finally {
    if (ms) ms.destroy();
    chunks.return().catch(() => {}); // an unfinished stream stops reading (done: a no-op)
  }
}

async function* fileChunks(file) {
  const reader = file.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    yield value;
  }
}

async function listCached() {
  const st = await listStore();
  post({ type: "cached", ...st });
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
    case "diagnose":
      return diagnose(py, session, lastLoad && (() => (lastLoad.file ? fileChunks(lastLoad.file)
        : openModelSource(lastLoad.url, { size: lastLoad.size || 0 }).then((s) => s.chunks))),
      lastLoad && (lastLoad.file ? lastLoad.file.size : lastLoad.size), msg.positions);
    case "cache-list":
      return listCached();
    case "cache-delete":
      await deleteStored(msg.url);
      return listCached();
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
      console.error(String((e && e.stack) || e));
      post({ type: "error", id: msg.id, during: msg.type, message: pyMessage(e) });
    }
  });
};
