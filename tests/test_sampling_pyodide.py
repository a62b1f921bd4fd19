"""Same seed, same tokens on every engine build: the sampler in the wasm side module,
inside real Pyodide, draws exactly what the native engine draws from the same logits."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pyodide_support import ROOT, app_files, run_in_pyodide

# Runs unchanged on the host (native engine) and in Pyodide (wasm engine); pure Python.
CODE = r"""
import array, json, math
from app.backends.ggml.library import load_library
from app.sampling import Sampler, SamplingParams

lib = load_library()
eng = lib.check(lib.eng_new(1), "engine")

def logits(n, seed):
    # integer hashing only, so both sides start from the same float32 values
    return array.array("f", ((((i * 2654435761 + seed * 40503) % 4294967296) / 4294967296.0) * 12.0 - 6.0
                             for i in range(n)))

def tensor(vals):
    pool = lib.check(lib.eng_pool_new(eng, 1), "pool")
    t = lib.check(lib.eng_pool_tensor(pool, 0, len(vals), 1, 1, 1, 0), "tensor")
    lib.check(lib.eng_pool_alloc(pool), "alloc")
    lib.check(lib.eng_tensor_set(t, 0, vals.buffer_info()[0], 4 * len(vals)), "set")
    return t

CHAINS = [dict(seed=42), dict(seed=7, top_k=0, min_p=0.0, top_p=0.9, temperature=1.0),
          dict(seed=3, top_k=0, top_p=1.0, min_p=0.0, typical_p=0.8, temperature=1.3),
          dict(seed=2**63 + 5, top_k=50, top_p=0.8, min_p=0.01, temperature=0.7, repeat_penalty=1.2,
               frequency_penalty=0.1, presence_penalty=0.3, logit_bias={5: 3.0, 6: -math.inf}),
          dict(seed=11, top_k=0, top_p=1.0, min_p=0.1, temperature=1.1), dict(temperature=0.0)]
out = {}
s = Sampler(lib)
for n in (1000, 262144):
    t = tensor(logits(n, n))
    for i, c in enumerate(CHAINS):
        s.configure(SamplingParams(**c))
        history = [5, 9, 9, 17]
        for _ in range(60 if n > 1000 else 300):
            history.append(s.sample(t, 0, history))
        out[f"{n}/{i}"] = history[4:]
s.seed(123)
out["uniform"] = [s.uniform().hex() for _ in range(20)]
json.dumps(out)
"""


def _host() -> str:
    code = "import sys\nsys.path.insert(0, %r)\n" % str(ROOT) + CODE.rsplit("\n", 2)[0] + "\nprint(json.dumps(out))\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def _wasm_library() -> Path:
    sys.path.insert(0, str(ROOT))
    from wasm_ext.build_wasm import side_module  # builds (or reuses the cached build of) the side module
    return Path(side_module())


def test_wasm_sampler_draws_the_native_tokens():
    lib = _wasm_library()
    files = app_files("sampling")
    files["/work/app/backends/__init__.py"] = str(ROOT / "app" / "backends" / "__init__.py")
    files["/work/app/backends/ggml/library.py"] = str(ROOT / "app" / "backends" / "ggml" / "library.py")
    files["/work/pyllm_engine.so"] = str(lib)
    code = "import os\nos.environ['PYLLM_ENGINE_LIB'] = '/work/pyllm_engine.so'\n" + CODE
    wasm = json.loads(run_in_pyodide(code, files, timeout=300))
    native = json.loads(_host())
    assert wasm.keys() == native.keys()
    for key in native:
        assert wasm[key] == native[key], key
    assert len(set(native["1000/0"])) > 5  # the draws are really random ones
