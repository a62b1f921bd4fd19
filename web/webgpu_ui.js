// The page's WebGPU bits: which backend the model runs on (badge), and the diagnostics
// action (the loaded model on WebGPU against the wasm engine, forced decoding). The
// settings field #opt-backend ("auto" | "webgpu" | "wasm") goes with every load message.
const $ = (id) => document.getElementById(id);

export function backendChoice() {
  const el = $("opt-backend");
  return el ? el.value : "auto";
}

export function setupWebGPU(worker, state) {
  const btn = $("diag-btn");
  btn.addEventListener("click", () => {
    btn.disabled = true;
    state.diagnostics = null;
    $("diag-result").textContent = "Comparing WebGPU with the wasm engine…";
    worker.postMessage({ type: "diagnose", positions: Number(btn.dataset.positions) || 32 });
  });

  // called with every worker event before the page's own handling
  return function onEvent(m) {
    switch (m.type) {
      case "backend":
        state.backend = m;
        break;
      case "loaded":
        state.backend = { backend: m.backend, adapter: m.adapter, reason: (state.backend || {}).reason };
        $("backend-badge").textContent = m.backend === "webgpu" ? `WebGPU · ${m.adapter}`
          : "wasm engine" + (state.backend.reason ? ` (WebGPU: ${state.backend.reason})` : "");
        $("backend-badge").title = state.backend.reason || "";
        btn.hidden = m.backend !== "webgpu";
        btn.disabled = false;
        $("diag-result").textContent = "";
        break;
      case "diagnostics": {
        state.diagnostics = m;
        btn.disabled = false;
        $("diag-result").textContent = `${m.passes ? "OK" : "MISMATCH"}: top-1 agreement ` +
          `${(100 * m.top1).toFixed(1)}% over ${m.positions} positions, min logits cosine ${m.min_cos.toFixed(5)} ` +
          `(vs wasm engine, ${(m.total_ms / 1000).toFixed(1)} s)`;
        break;
      }
      case "error":
        if (m.during === "diagnose") {
          btn.disabled = false;
          $("diag-result").textContent = `Diagnostics failed: ${m.message}`;
        }
        break;
    }
  };
}
