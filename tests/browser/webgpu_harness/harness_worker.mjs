// The harness's worker: Pyodide + the app and engine wheels (from web/build.json) + the
// WebGPU helper; runs each message's Python with runPythonAsync (top-level await works, and
// synchronous GPU read-backs may block through JS Promise Integration).
import { loadPyodide } from "./pyodide/pyodide.mjs";
import "./webgpu_device.js";

try {
  const base = new URL("./", self.location.href);
  const build = await (await fetch(new URL("build.json", base))).json();
  const py = await loadPyodide({ indexURL: new URL(build.pyodide.indexURL, base).href });
  const wheels = [...(build.wheels.deps || []), build.wheels.app, build.wheels.engine];
  await py.loadPackage(wheels.map((w) => new URL(w, base).href), { messageCallback: () => {} });
  self.onmessage = async (e) => {
    const { id, code } = e.data;
    try {
      const r = await py.runPythonAsync(code);
      self.postMessage({ id, result: r && r.toJs ? r.toJs() : r });
    } catch (err) {
      self.postMessage({ id, error: String(err && err.message || err) });
    }
  };
  self.postMessage({ ready: true });
} catch (err) {
  self.postMessage({ ready: false, error: String(err && err.message || err) });
}
