"""Every kernel in shaders/ compiles under Chromium's WGSL compiler (Tint), which is stricter
than naga (wgpu-py's): its uniformity analysis rejects a workgroup barrier that some
invocations may skip (sample.wgsl had a `return` under `li == 0` ahead of barriers), and
a constant expression that overflows to infinity. Headless Chromium, SwiftShader adapter.

The shader-f16 variants (kernels.F16_SWAPS) are compiled too. SwiftShader has no shader-f16,
and Tint then stops at `enable f16` after parsing the whole module: there the test asserts
that this is the only error (the variants parse; their typing is checked by naga in
tests/test_webgpu_f16.py, and by Tint on an adapter with shader-f16, where they must compile).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import webgpu_support as ws  # noqa: E402

pytestmark = pytest.mark.skipif(ws.missing() is not None, reason=str(ws.missing()))

COMPILE = """async (sources) => {
  const adapter = await navigator.gpu.requestAdapter();
  const f16 = adapter.features.has("shader-f16");
  const device = await adapter.requestDevice({ requiredFeatures: f16 ? ["shader-f16"] : [] });
  const out = { f16 };
  for (const [name, code] of Object.entries(sources)) {
    const info = await device.createShaderModule({ code }).getCompilationInfo();
    out[name] = info.messages.filter((m) => m.type === "error").map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
  }
  return out;
}"""


def test_every_kernel_compiles_under_tint():
    from playwright.sync_api import sync_playwright

    from app.backends.webgpu.kernels import source
    from scripts.serve import serve_in_thread
    names = sorted(p.stem for p in (ROOT / "shaders").glob("*.wgsl") if "@compute" in source(p.stem))
    # the f16 variant of each kernel that has one (F16 weights: the mat-vecs' TYPE 1 variant)
    f16 = {n + "+f16": source(n, f16=True, f16_weights=True) for n in names}
    f16 = {n: code for n, code in f16.items() if code != source(n[:-4])}
    site = Path(tempfile.mkdtemp(prefix="pyllm-tint-"))
    (site / "index.html").write_text("<!doctype html><title>tint</title>")
    httpd, url = serve_in_thread(0, site)  # WebGPU needs a secure context: http://127.0.0.1
    try:
        with sync_playwright() as p:
            b = ws.launch(p)
            try:
                page = b.new_page()
                page.goto(url + "index.html")
                errors = page.evaluate(COMPILE, {**{n: source(n) for n in names}, **f16})
            finally:
                b.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
        ws.cleanup(site)
    has_f16 = errors.pop("f16")
    assert "sample" in errors and "gated_delta" in errors and len(errors) == len(names) + len(f16)
    assert {"attention_split+f16", "attention_tiled+f16", "attention+f16", "matvec+f16", "matvec_multi+f16",
            "matvec_multi4+f16"} <= set(f16)
    if not has_f16:  # Tint parsed them, then refused the extension (an error per module, at `enable f16`)
        for n in f16:
            assert len(errors[n]) == 1 and "extension 'f16' is not allowed" in errors[n][0], (n, errors[n])
            errors[n] = []
    assert {n: e for n, e in errors.items() if e} == {}
