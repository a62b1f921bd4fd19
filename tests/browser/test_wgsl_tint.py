"""Every kernel in shaders/ compiles under Chromium's WGSL compiler (Tint), which is stricter
than naga (wgpu-py's): its uniformity analysis rejects a workgroup barrier that some
invocations may skip (sample.wgsl had a `return` under `li == 0` ahead of barriers), and
a constant expression that overflows to infinity. Headless Chromium, SwiftShader adapter.
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
  const device = await adapter.requestDevice();
  const out = {};
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
    site = Path(tempfile.mkdtemp(prefix="pyllm-tint-"))
    (site / "index.html").write_text("<!doctype html><title>tint</title>")
    httpd, url = serve_in_thread(0, site)  # WebGPU needs a secure context: http://127.0.0.1
    try:
        with sync_playwright() as p:
            b = ws.launch(p)
            try:
                page = b.new_page()
                page.goto(url + "index.html")
                errors = page.evaluate(COMPILE, {n: source(n) for n in names})
            finally:
                b.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
        ws.cleanup(site)
    assert "sample" in errors and "gated_delta" in errors and len(errors) == len(names)
    assert {n: e for n, e in errors.items() if e} == {}
