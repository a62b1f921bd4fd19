// Service worker: keeps the app shell (page, worker, Pyodide, wheels, engine) so a reload
// works with the server gone. Network first (a rebuilt app shows at once), the cache when
// the network fails. Models are not handled here: the worker keeps them in the Cache API
// itself (web/model_store.js), with integrity checks and resumable downloads.
importScripts("engine_flavor.js"); // self.pyllmEngineFlavor: the engine build this browser runs

const SHELL = "pyllm-shell-v1";
const CORE = ["./", "index.html", "app.js", "worker.js", "engine_bridge.js", "model_store.js", "saved_chats.js",
              "style.css", "build.json", "engine_flavor.js", "wheel_files.js", "part_reader.js",
              "webgpu_device.js", "webgpu_worker.js", "webgpu_ui.js"];

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    await cache.addAll(CORE);
    const build = await (await cache.match("build.json")).json();
    const files = ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"]
      .map((f) => build.pyodide.indexURL + f);
    if (build.pyodide.snapshot) files.push(build.pyodide.indexURL + build.pyodide.snapshot); // Python, started
    const engine = self.pyllmEngineFlavor(build); // only the build the worker will load
    files.push(build.wheels.app, engine.wheel, ...(build.wheels.deps || []));
    if (engine.threads) {
      const dir = engine.threads.dir;
      files.push(engine.threads.js, dir + "pyllm_engine_mt.wasm", dir + "pyllm_engine_mt.worker.js");
    }
    await cache.addAll(files);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin || url.pathname.endsWith(".gguf")) return;
  event.respondWith((async () => {
    const cache = await caches.open(SHELL);
    try {
      const resp = await fetch(req);
      if (resp.ok && resp.status === 200) cache.put(req, resp.clone()).catch(() => {});
      return resp;
    } catch (e) {
      const hit = await cache.match(req, { ignoreSearch: true });
      if (hit) return hit;
      throw e;
    }
  })());
});
