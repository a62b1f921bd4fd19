"""One-op graphs run on the native engine and on the wasm side module, compared bit for bit.

`cases()` builds the inputs on the host (random activations, real Gemma 3 270M weight rows
for the quantized types); `PROBE_CODE` is plain Python (no numpy) that runs one case on an
engine library and returns the output bytes, the same text executed natively and inside
Pyodide. `compare()` reports, per case, how many output floats differ and by how much.

    python3 tests/browser/op_probe.py            # table of native vs side module per op
"""
from __future__ import annotations

import base64
import json
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

F32, F16 = 0, 1

# case: {"name", "op", "inputs": [{"type", "shape", "data" (b64), "weight": bool}], "args": {...}}
PROBE_CODE = r'''
import base64, ctypes

def run_case(lib, case):
    e = lib.eng_new(1)
    p = lib.eng_pool_new(e, 8)
    g = lib.eng_graph_new(e, 64)
    handles, bufs, later = [], [], []
    for inp in case["inputs"]:
        ne = list(inp["shape"]) + [1] * (4 - len(inp["shape"]))
        if inp.get("weight"):
            t = lib.eng_pool_tensor(p, inp["type"], ne[0], ne[1], ne[2], ne[3], 1)
        else:
            t = lib.eng_input(g, inp["type"], ne[0], ne[1], ne[2], ne[3])
        handles.append(t)
    assert lib.eng_pool_alloc(p) == 0
    for inp, t in zip(case["inputs"], handles):
        if inp.get("weight"):
            raw = base64.b64decode(inp["data"])
            buf = ctypes.create_string_buffer(raw, len(raw))
            assert lib.eng_tensor_set(t, 0, ctypes.addressof(buf), len(raw)) == 0
    op, a = case["op"], case.get("args", {})
    h = handles
    if op == "mul_mat":
        y = lib.eng_mul_mat(g, h[0], h[1])
    elif op == "rms_norm":
        y = lib.eng_rms_norm(g, h[0], a["eps"])
    elif op == "unary":
        y = lib.eng_unary(g, h[0], a["op"])
    elif op == "glu":
        y = lib.eng_glu_split(g, h[0], h[1], a["op"])
    elif op == "add":
        y = lib.eng_add(g, h[0], h[1])
    elif op == "mul":
        y = lib.eng_mul(g, h[0], h[1])
    elif op == "scale":
        y = lib.eng_scale(g, h[0], a["s"])
    elif op == "soft_max":
        y = lib.eng_soft_max(g, h[0], -1, a["scale"], 0.0)
    elif op == "rope":
        y = lib.eng_rope(g, h[0], h[1], -1, a["n_dims"], a["mode"], 0, a["base"], 1.0, 0.0, 1.0, 32.0, 1.0)
    elif op == "flash_attn":
        q, k, v, m = h
        qp = lib.eng_permute(g, q, 0, 2, 1, 3)
        kp = lib.eng_permute(g, k, 0, 2, 1, 3)
        vp = lib.eng_permute(g, v, 0, 2, 1, 3)
        y = lib.eng_flash_attn(g, qp, kp, vp, m, a["scale"], 0.0, a.get("softcap", 0.0))
        later.append(("mask", m))
    else:
        raise ValueError(op)
    assert y >= 0, lib.eng_last_error()
    assert lib.eng_graph_output(g, y) == 0
    assert lib.eng_graph_alloc(g) == 0
    for inp, t in zip(case["inputs"], handles):
        if inp.get("weight"):
            continue
        if inp.get("fill") == "arange":
            lib.eng_fill_arange(t, inp["start"], inp["shape"][0])
        elif inp.get("fill") == "causal":
            lib.eng_fill_causal_mask(t, inp["shape"][0], inp["n_tokens"], inp["pos0"], 0)
        else:
            raw = base64.b64decode(inp["data"])
            buf = ctypes.create_string_buffer(raw, len(raw))
            bufs.append(buf)
            assert lib.eng_tensor_set(t, 0, ctypes.addressof(buf), len(raw)) == 0
    assert lib.eng_graph_compute(g) == 0
    n = int(lib.eng_tensor_nbytes(y))
    out = ctypes.create_string_buffer(n)
    lib.eng_tensor_get(y, 0, ctypes.addressof(out), n)
    lib.eng_graph_free(g); lib.eng_pool_free(p); lib.eng_free(e)
    return base64.b64encode(out.raw).decode()
'''


def _inp(arr, type_=F32, weight=False, **extra) -> dict:
    import numpy as np

    if type_ == F16:
        data = np.asarray(arr, dtype=np.float16).tobytes()
    else:
        data = np.asarray(arr, dtype=np.float32).tobytes()
    shape = list(reversed(arr.shape))
    return {"type": type_, "shape": shape, "data": base64.b64encode(data).decode(), "weight": weight, **extra}


def _weight_rows(type_name: str, rows: int) -> tuple[int, list[int], bytes]:
    """The first `rows` rows of a Gemma 3 270M tensor of that type (real quantized weights)."""
    from tools.assets import gemma3_270m_path
    from tools.testmodels import gguf

    r = gguf.GGUFReader(str(gemma3_270m_path()))
    for t in r.tensors:
        if t.tensor_type.name == type_name and len(t.shape) == 2:
            return int(t.tensor_type), [int(t.shape[0]), rows], t.data[:rows].tobytes()
    raise KeyError(type_name)


def cases() -> list[dict]:
    import numpy as np

    from tools.testmodels import gguf

    rng = np.random.default_rng(3)
    out = []
    K, N = 256, 48
    for name in ("F32", "F16", "Q8_0", "Q4_0"):
        w = rng.standard_normal((N, K), dtype=np.float32)
        qt = gguf.GGMLQuantizationType[name]
        wb = w.tobytes() if name == "F32" else (w.astype(np.float16).tobytes() if name == "F16"
                                                 else gguf.quants.quantize(w, qt).tobytes())
        for B in (1, 7):
            x = rng.standard_normal((B, K), dtype=np.float32)
            out.append({"name": f"mul_mat {name} B={B}", "op": "mul_mat",
                        "inputs": [{"type": int(qt), "shape": [K, N], "weight": True,
                                    "data": base64.b64encode(wb).decode()}, _inp(x)]})
    for name in ("Q5_0", "Q8_0", "Q4_K", "Q6_K"):
        qt, shape, wb = _weight_rows(name, 48)
        for B in (1, 7, 9):  # Q6_K: x86 runs ggml-cpu/tiled from 8 rows on
            x = rng.standard_normal((B, shape[0]), dtype=np.float32)
            out.append({"name": f"mul_mat gemma {name} B={B}", "op": "mul_mat",
                        "inputs": [{"type": qt, "shape": shape, "weight": True,
                                    "data": base64.b64encode(wb).decode()}, _inp(x)]})
    x = rng.standard_normal((7, 640), dtype=np.float32) * 3
    out.append({"name": "rms_norm", "op": "rms_norm", "inputs": [_inp(x)], "args": {"eps": 1e-6}})
    for op, code in (("gelu", 1), ("silu", 2), ("tanh", 0), ("exp", 4)):
        out.append({"name": f"unary {op}", "op": "unary", "inputs": [_inp(x)], "args": {"op": code}})
    y = rng.standard_normal((7, 640), dtype=np.float32)
    for op, code in (("swiglu", 0), ("geglu", 1)):
        out.append({"name": f"glu {op}", "op": "glu", "inputs": [_inp(x), _inp(y)], "args": {"op": code}})
    # GELU is a table of F16 results built at start-up: every entry
    h = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
    every = h[np.isfinite(h) & (np.abs(h) < 10)]
    every = every[:len(every) // 64 * 64].reshape(-1, 64)
    out.append({"name": "glu geglu (all F16 inputs)", "op": "glu", "inputs": [_inp(every), _inp(np.ones_like(every))],
                "args": {"op": 1}})
    out.append({"name": "add", "op": "add", "inputs": [_inp(x), _inp(y)]})
    out.append({"name": "mul", "op": "mul", "inputs": [_inp(x), _inp(y)]})
    out.append({"name": "scale", "op": "scale", "inputs": [_inp(x)], "args": {"s": 0.37}})
    out.append({"name": "soft_max", "op": "soft_max", "inputs": [_inp(x)], "args": {"scale": 0.7}})
    for hd in (64, 256):
        q = rng.standard_normal((7, 4, hd), dtype=np.float32)  # [n_tokens][n_head][hd]
        out.append({"name": f"rope neox hd={hd}", "op": "rope", "args": {"n_dims": hd, "mode": 2, "base": 10000.0},
                    "inputs": [_inp(q), {"type": 26, "shape": [7], "fill": "arange", "start": 5}]})
    # from 64 query rows ggml takes its tiled path (a prefill's ubatch)
    for hd, n_kv, nt, pos0 in ((64, 256, 1, 100), (256, 256, 1, 200), (64, 256, 7, 30), (256, 256, 7, 30),
                               (256, 256, 64, 100), (64, 256, 70, 20)):
        q = rng.standard_normal((nt, 4, hd), dtype=np.float32)
        k = rng.standard_normal((n_kv, 1, hd), dtype=np.float32)
        v = rng.standard_normal((n_kv, 1, hd), dtype=np.float32)
        out.append({"name": f"flash_attn hd={hd} n={nt}", "op": "flash_attn", "args": {"scale": hd ** -0.5},
                    "inputs": [_inp(q), _inp(k, F16), _inp(v, F16),
                               {"type": F16, "shape": [n_kv, nt], "fill": "causal", "n_tokens": nt, "pos0": pos0}]})
    # head dim 576 (> fattn_wasm.inc's 512): one_chunk's own loop with the patched F16 accumulator
    q = rng.standard_normal((2, 4, 576), dtype=np.float32)
    k = rng.standard_normal((64, 1, 576), dtype=np.float32)
    v = rng.standard_normal((64, 1, 576), dtype=np.float32)
    out.append({"name": "flash_attn hd=576 n=2", "op": "flash_attn", "args": {"scale": 576 ** -0.5},
                "inputs": [_inp(q), _inp(k, F16), _inp(v, F16),
                           {"type": F16, "shape": [64, 2], "fill": "causal", "n_tokens": 2, "pos0": 50}]})
    # grouped-query layout with 2 KV heads: rows of different K/V heads in one chunk
    q = rng.standard_normal((3, 4, 64), dtype=np.float32)
    k = rng.standard_normal((96, 2, 64), dtype=np.float32)
    v = rng.standard_normal((96, 2, 64), dtype=np.float32)
    out.append({"name": "flash_attn hd=64 kv_heads=2 n=3", "op": "flash_attn", "args": {"scale": 0.125},
                "inputs": [_inp(q), _inp(k, F16), _inp(v, F16),
                           {"type": F16, "shape": [96, 3], "fill": "causal", "n_tokens": 3, "pos0": 60}]})
    # long contexts (decode and a batch; 512 cells take ggml's split-KV decode path): masked
    # holes, a new maximum late, V columns that make the F16 accumulator hit F16 subnormals
    # (tiny values), overflow to inf (large ones) and rounding ties (every step)
    for n_kv, nt in ((320, 1), (320, 7), (512, 1)):
        hd = 256
        q = rng.standard_normal((nt, 4, hd), dtype=np.float32)
        k = rng.standard_normal((n_kv, 1, hd), dtype=np.float32) * 0.3
        k[n_kv - 30, 0] = q[0, 0] * 0.6
        v = rng.standard_normal((n_kv, 1, hd), dtype=np.float32)
        v[:, :, :32] *= 1e-4
        v[:, :, 32:40] += 4000.0
        v[:, :, 40:48] = np.round(v[:, :, 40:48] * 4) / 4
        mask = np.zeros((nt, n_kv), dtype=np.float32)
        mask[:, 100:140] = -np.inf
        mask[rng.random((nt, n_kv)) < 0.1] = -np.inf
        for i in range(nt):
            mask[i, n_kv - nt + i + 1:] = -np.inf
        out.append({"name": f"flash_attn long hd={hd} kv={n_kv} n={nt}", "op": "flash_attn",
                    "args": {"scale": hd ** -0.5},
                    "inputs": [_inp(q), _inp(k, F16), _inp(v, F16), _inp(mask, F16)]})
    return out


def run_native(cs: list[dict]) -> list[bytes]:
    from app.backends.ggml.library import load_library

    ns: dict = {}
    exec(PROBE_CODE, ns)
    lib = load_library()
    return [base64.b64decode(ns["run_case"](lib, c)) for c in cs]


def run_native_preloaded(cs: list[dict], preload: str) -> list[bytes]:
    """run_native in a child process with LD_PRELOAD=preload (e.g. musl's cosf/sinf)."""
    import os
    import subprocess

    code = (f"import sys, json, base64\nsys.path[:0] = [{str(HERE)!r}, {str(HERE.parent.parent)!r}]\n"
            "from op_probe import run_native\n"
            "print(json.dumps([base64.b64encode(b).decode() for b in run_native(json.load(sys.stdin))]))")
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(cs), capture_output=True, text=True,
                          env=dict(os.environ, LD_PRELOAD=preload), timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return [base64.b64decode(x) for x in json.loads(proc.stdout.strip().splitlines()[-1])]


def run_wasm(cs: list[dict]) -> list[bytes]:
    from wasm_support import run_pyodide

    code = (f"CASES = json.loads({json.dumps(json.dumps(cs))})\n" + PROBE_CODE +
            "\nimport pyllm_engine_wasm\nfrom app.backends.ggml.library import load_library\n"
            "lib = load_library(pyllm_engine_wasm.LIBRARY)\njson.dumps([run_case(lib, c) for c in CASES])")
    return [base64.b64decode(s) for s in run_pyodide("import json\n" + code)]


def compare(cs: list[dict], native: list[bytes], wasm: list[bytes]) -> list[dict]:
    rows = []
    for c, a, b in zip(cs, native, wasm):
        n = len(a) // 4
        fa, fb = struct.unpack(f"{n}f", a), struct.unpack(f"{n}f", b)
        diff = [i for i in range(n) if a[4 * i:4 * i + 4] != b[4 * i:4 * i + 4]]
        md = max((abs(fa[i] - fb[i]) for i in diff), default=0.0)
        rows.append({"name": c["name"], "n": n, "differ": len(diff), "max_abs": md})
    return rows


if __name__ == "__main__":
    cs = cases()
    if len(sys.argv) > 1:
        cs = [c for c in cs if any(s in c["name"] for s in sys.argv[1:])]
    rows = compare(cs, run_native(cs), run_wasm(cs))
    for r in rows:
        print(f"{r['name']:28s} {r['differ']:6d}/{r['n']:<6d} differ  max |diff| {r['max_abs']:.3g}")
