// The worker's WebGPU messages (app/worker/gpu.py holds the logic):
//   selectBackend: "auto" | "webgpu" | "wasm" -> {backend, adapter, reason} for the next load
//   diagnose:      stream the loaded model's bytes again into the wasm engine and compare
//                  forced decoding on both backends; Python emits {type: "diagnostics", ...}
import "./webgpu_device.js"; // defines self.pyllmWebGPU (app/backends/webgpu/browser_device.py)

let gpu = null; // the app.worker.gpu module

function gpuModule(py) {
  if (!gpu) gpu = py.pyimport("app.worker.gpu");
  return gpu;
}

export async function selectBackend(py, session, preference) {
  const res = await gpuModule(py).select(session, preference || "auto");
  try {
    return res.toJs({ dict_converter: Object.fromEntries });
  } finally {
    res.destroy();
  }
}

// source: the last "load" message ({file} or {url}); modelCache: the Cache API name
export async function diagnose(py, session, source, positions, modelCache) {
  if (!source) throw new Error("load a model first");
  let resp;
  if (source.file) {
    resp = new Response(source.file.stream());
  } else {
    const key = new URL(source.url, self.location.href).href;
    const cache = self.caches ? await caches.open(modelCache) : null;
    resp = (cache && (await cache.match(key))) || (await fetch(key));
    if (!resp.ok) throw new Error(`${source.url}: HTTP ${resp.status}`);
  }
  const ms = gpuModule(py).begin_reference(session, source.file ? source.file.size : null);
  const reader = resp.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const ptr = ms.staging(value.length);
      py._module.HEAPU8.set(value, ptr);
      ms.feed_staged(value.length);
    }
    await gpuModule(py).diagnose(session, ms, positions || 32);
  } catch (e) {
    ms.abort();
    throw e;
  } finally {
    ms.destroy();
  }
}
