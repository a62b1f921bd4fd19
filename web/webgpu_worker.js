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

// openChunks(): an async iterable of the loaded model's bytes again (the picked file, or
// the model store's stored parts); size: its byte count when known
export async function diagnose(py, session, openChunks, size, positions) {
  if (!openChunks) throw new Error("load a model first");
  const chunks = await openChunks();
  const ms = gpuModule(py).begin_reference(session, size || null);
  try {
    for await (const value of chunks) {
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
