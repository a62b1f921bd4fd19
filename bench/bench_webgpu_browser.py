"""WebGPU in headless Chromium: a decode step's time and where it goes, per kernel.

    python bench/bench_webgpu_browser.py [--model llama:Q4_0] [--steps 8] [--ctx 256] [--dawn TOGGLES]

Opens the WebGPU harness page (tests/browser/webgpu_support.py: Pyodide worker, the app
wheel, web/webgpu_device.js), loads a tiny test model (tools/testmodels.py) onto the
adapter Chromium offers (SwiftShader with `--enable-unsafe-webgpu` on a machine without a
GPU), then times the first prefill (pipeline compilation included), --steps decode steps
(each with its logits read back), and one decode step's dispatches run one at a time
(the per-kernel profile). --dawn passes Dawn toggles (e.g. disable_workgroup_init) to
compare. Prints JSON; numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "browser"))

CODE = """
import json, time
from app.backends.webgpu import BrowserDevice, WebGPURunner
from app.backends.webgpu.stream import GPUModelStream
from app.models import model_for
import js

dev = await BrowserDevice.open()
ms = GPUModelStream("m.gguf", None, make_runner=lambda g, loader: WebGPURunner(model_for(g), n_ctx=%d, device=dev,
                                                                              loader=loader))
ms.feed((await (await js.fetch("m.gguf")).arrayBuffer()).to_bytes())
r = ms.finish()
t0 = time.perf_counter()
r.eval(list(range(5, 21)))
await r.logits_async()
t1 = time.perf_counter()
r.eval([3])
await r.logits_async()  # the decode recording
t2 = time.perf_counter()
for i in range(%d):
    r.eval([7 + i])
    await r.logits_async()
t3 = time.perf_counter()
prof = await dev.profile_async(r.last.program)
names = [d.kernel + "".join(f" {k}={v}" for k, v in sorted(d.consts.items())) for d in r.last.disp]
by = {}
for ms_, n in zip(prof, names):
    by[n] = by.get(n, 0.0) + ms_
json.dumps({"adapter": dev.name, "first_prefill_16_ms": round((t1 - t0) * 1e3, 1),
            "first_decode_ms": round((t2 - t1) * 1e3, 1), "decode_ms": round((t3 - t2) * 1e3 / %d, 1),
            "dispatches": len(prof), "profile_sum_ms": round(sum(prof), 1),
            "profile_ms": {k: round(v, 2) for k, v in sorted(by.items(), key=lambda kv: -kv[1])}})
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="llama:Q4_0", help="arch:type of a tiny test model")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--dawn", default="", help="comma-separated Dawn toggles to enable")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    import webgpu_support as ws
    from scripts.build_web import build_site
    from scripts.serve import serve_in_thread
    from tools.testmodels import tiny

    build_site(with_model=True)
    arch, type_name = args.model.split(":")
    site = ws.make_site({"m.gguf": tiny(arch, type_name)})
    httpd, url = serve_in_thread(0, site)
    extra = [f"--enable-dawn-features={args.dawn}"] if args.dawn else []
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=ws.CHROMIUM, headless=True, args=ws.CHROMIUM_ARGS + extra)
            t0 = time.perf_counter()
            h = ws.open_harness(b, url)
            res = h.run(CODE % (args.ctx, args.steps, args.steps))
            res.update({"model": args.model, "dawn": args.dawn or None, "harness_ready_s":
                        round(time.perf_counter() - t0, 1), "cpus": os.cpu_count(), "load_avg": os.getloadavg()[0]})
            b.close()
    finally:
        httpd.shutdown()
        ws.cleanup(site)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
