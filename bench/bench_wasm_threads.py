"""The pthreads engine module at 2 threads in Node (Pyodide drives it through JS, as the page
does): Gemma 3 270M prefill and decode tok/s, optionally with one more busy process on the
machine, for one or more builds of the module run in turn (A, B, A, B, ...).

    python bench/bench_wasm_threads.py [A.js B.js ...] [--busy] [--rounds 2] [--threads 2]

Without modules: the current build (wasm_ext/build_wasm.py). Each job loads the model, then
runs 4 rounds of a 113-token prompt and 32 greedy tokens (the first round includes V8's
tier-up); a line per job prints [prefill tok/s, decode tok/s] per round. --busy starts a
spinning Python process for each job: the page's threads always share their cores.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "browser"))

CODE = r"""
import time, json
from app.backends.ggml.runner import GGMLRunner
from app.models import model_for
from app.store import ModelStream
from js import streamHostFile, mtBridge
from app.worker.jslib import JsLibrary
mt = JsLibrary(mtBridge)
ms = ModelStream("g", None, lib=mt, make_runner=lambda g, ld: GGMLRunner(model_for(g), loader=ld, n_threads=THREADS,
                                                                       n_ctx=512, lib=mt))
streamHostFile(HOST, ms, 1 << 20)
r = ms.finish()
prompt = [2] + [(i * 7919 + 13) % 20000 + 100 for i in range(112)]
res = []
for rnd in range(4):
    r.reset()
    t0 = time.perf_counter(); r.eval(prompt); t1 = time.perf_counter()
    tok = r.argmax()
    for i in range(32):
        r.eval([tok]); tok = r.argmax()
    t2 = time.perf_counter()
    res.append((round(len(prompt) / (t1 - t0), 1), round(32 / (t2 - t1), 1)))
json.dumps(res)
"""


def run(module: str, model: Path, threads: int) -> str:
    import wasm_support as ws
    from tools.pyodide_dist import pyodide_dir
    job = {"indexURL": str(pyodide_dir()), "wheels": [str(p) for p in ws.site_wheels(True)],
           "mounts": {ws.HOST_CACHE: str(ws.cache_root().resolve())},
           "code": f"HOST = {str(model)!r}\nTHREADS = {threads}\n" + CODE,
           "mt": {"js": module, "bridge": str(ROOT / "web" / "engine_bridge.js"), "pool": threads}}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    p = subprocess.run(["node", *ws.NODE_WASM_FLAGS, str(ROOT / "tests" / "browser" / "pyodide_node.mjs"), f.name],
                       capture_output=True, text=True)
    Path(f.name).unlink()
    return p.stdout.strip().splitlines()[-1] if p.returncode == 0 else "failed: " + p.stderr[-400:]


def main() -> None:
    from tools.assets import gemma3_270m_path
    from wasm_ext.build_wasm import threads_module
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*")
    ap.add_argument("--busy", action="store_true")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    modules = args.modules or [str(threads_module(True))]
    model = gemma3_270m_path()
    for _ in range(args.rounds):
        for m in modules:
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
            try:
                print(Path(m).parent.name, "busy" if args.busy else "idle", run(m, model, args.threads), flush=True)
            finally:
                if hog:
                    hog.kill()


if __name__ == "__main__":
    main()
