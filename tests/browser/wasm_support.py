"""Run the app inside real Pyodide (Node) with the wasm engine, as the browser worker does.

`run_pyodide(code)` installs the built wheels (app + engine side module + Jinja2/MarkupSafe)
with loadPackage, mounts the model cache read-only at /host/cache, runs `code` and returns
its last expression (a JSON string) decoded.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from wasm_ext.relaxed_simd import NODE_WASM_FLAGS  # noqa: E402
from wasm_ext.sources import cache_root  # noqa: E402

HOST_CACHE = "/host/cache"


def tools_missing() -> str | None:
    for tool, how in (("emcc", "apt-get install -y emscripten"), ("node", "apt-get install -y nodejs npm"),
                      ("npm", "apt-get install -y npm")):
        if shutil.which(tool) is None:
            return f"{tool} not found ({how})"
    return None


def site_wheels(relaxed: bool = True) -> list[Path]:
    """Build (or reuse) the web wheels; returns app, engine and dependency wheels (the engine:
    the relaxed-SIMD build, or the baseline one)."""
    from scripts.build_web import app_wheel, engine_wheel
    from tools.chat_wheels import chat_wheels
    from wasm_ext.build_wasm import side_module

    # one directory per checkout: the wheels' names are fixed, and several checkouts (or
    # developers) sharing the cache would otherwise overwrite each other's between build and use
    import hashlib
    out = cache_root() / f"test-wheels-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]}"
    if not relaxed:  # the same wheel name: a directory of its own
        out = out.with_name(out.name + "-baseline")
    return [app_wheel(out), engine_wheel(out, side_module(relaxed)), *chat_wheels()]


def in_pyodide(path: Path) -> str:
    """Where a file under the cache dir appears inside Pyodide."""
    return HOST_CACHE + "/" + Path(path).resolve().relative_to(cache_root().resolve()).as_posix()


def run_pyodide(code: str, timeout: float = 420, threads_pool: int | None = None, relaxed: bool = True,
                engine: Path | None = None) -> object:
    """threads_pool: also start the pthreads engine module with that many workers
    (Python gets it as `from js import mtBridge`; app.worker.jslib.JsLibrary(mtBridge)).
    relaxed: the engine builds that use relaxed SIMD (False: the baseline builds).
    engine: install this side module as `pyllm_engine_wasm` instead (a benchmark's build).
    Load the engine as `pyllm_engine_wasm.LIBRARY`: Pyodide loads a wheel's .so when it
    installs it, and a second copy from another path would resolve its symbols (and so its
    static data, e.g. ggml's buffer types) to the first one's."""
    from tools.pyodide_dist import pyodide_dir

    wheels = site_wheels(relaxed)
    if engine is not None:
        from scripts.build_web import engine_wheel
        wheels[1] = engine_wheel(Path(tempfile.mkdtemp(prefix="pyllm-engine-wheel-")), engine)
    job = {"indexURL": str(pyodide_dir()), "wheels": [str(p) for p in wheels],
           "mounts": {HOST_CACHE: str(cache_root().resolve())}, "code": code}
    if threads_pool is not None:
        from wasm_ext.build_wasm import threads_module
        job["mt"] = {"js": str(threads_module(relaxed)), "bridge": str(ROOT / "web" / "engine_bridge.js"),
                     "pool": threads_pool}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    try:
        proc = subprocess.run(["node", *NODE_WASM_FLAGS, str(ROOT / "tests" / "browser" / "pyodide_node.mjs"), f.name],
                              capture_output=True, text=True, timeout=timeout)
    finally:
        Path(f.name).unlink()
    if proc.returncode != 0:
        raise RuntimeError(f"pyodide run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Python run inside Pyodide: greedy tokens for each job, loaded from the mounted file
# (engine fopen through NODEFS) or streamed chunk by chunk from JS (the browser's way).
GREEDY_CODE = r'''
import json, time
import pyllm_engine_wasm
from app.backends.ggml.library import load_library
from app.backends.ggml.runner import GGMLRunner
from app.gguf import read_gguf
from app.models import model_for
from app.store import ModelStream
from js import streamHostFile, timings

lib = load_library(pyllm_engine_wasm.LIBRARY)

def greedy(r, prompt, n):
    t0 = time.perf_counter()
    r.eval(prompt)
    out = [r.argmax()]
    t1 = time.perf_counter()
    for _ in range(n - 1):
        r.eval([out[-1]])
        out.append(r.argmax())
    t2 = time.perf_counter()
    return out, {"prefill_tok_s": len(prompt) / (t1 - t0), "decode_tok_s": (n - 1) / (t2 - t1) if n > 1 else 0.0}

results = []
for job in JOBS:
    t0 = time.perf_counter()
    if job["mode"] == "file":
        g = read_gguf(job["path"])
        r = GGMLRunner(model_for(g), job["path"], n_threads=1, n_ctx=job.get("ctx", 1024), lib=lib)
    else:
        ms = ModelStream(job["path"], None, lib=lib,
                         make_runner=lambda g, ld: GGMLRunner(model_for(g), loader=ld, n_threads=1,
                                                              n_ctx=job.get("ctx", 1024), lib=lib))
        streamHostFile(job["host_path"], ms, job.get("chunk", 1 << 20))
        r = ms.finish()
    load_ms = (time.perf_counter() - t0) * 1e3
    tokens, speed = greedy(r, job["prompt"], job["n"])
    r.close()
    results.append({"tokens": tokens, "load_ms": load_ms, **speed})
json.dumps({"results": results, "system_info": lib.eng_system_info().decode(), "timings": timings.to_py()})
'''


def greedy_in_pyodide(jobs: list[dict]) -> dict:
    return run_pyodide(f"JOBS = {json.dumps(jobs)}\n" + GREEDY_CODE)


def greedy_native(path: Path, prompt: list[int], n: int, ctx: int = 1024, n_threads: int = 1) -> tuple[list[int], dict]:
    import time

    from app.backends.ggml.runner import GGMLRunner
    from app.gguf import read_gguf
    from app.models import model_for

    r = GGMLRunner(model_for(read_gguf(str(path))), str(path), n_threads=n_threads, n_ctx=ctx)
    t0 = time.perf_counter()
    r.eval(prompt)
    out = [r.argmax()]
    t1 = time.perf_counter()
    for _ in range(n - 1):
        r.eval([out[-1]])
        out.append(r.argmax())
    t2 = time.perf_counter()
    r.close()
    return out, {"prefill_tok_s": len(prompt) / (t1 - t0), "decode_tok_s": (n - 1) / (t2 - t1) if n > 1 else 0.0}
