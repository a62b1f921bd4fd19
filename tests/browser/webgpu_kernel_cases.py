"""Kernel cases for the in-browser check: random inputs, and each op's output from a
one-op ggml graph on the native engine (the same references as tests/test_webgpu_kernels.py,
whose helpers this reuses). `cases(lib)` -> [(case, expected, tolerance)]; a case is
JSON (base64 bytes) for tests/browser/webgpu_kernel_runner.py."""
from __future__ import annotations

import base64
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_webgpu_kernels import F16, F32, I32, Q4_0, Q5_0, Q8_0, Engine, _k_tensor, quantize  # noqa: E402

from app.backends.ggml.library import GLU, UNARY  # noqa: E402
from app.ops import Rope  # noqa: E402


def _b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode()


def _w(name: str, type_id: int, shape, data: bytes) -> dict:
    return {"name": name, "type": type_id, "shape": list(shape), "data": _b64(data)}


def _x(shape, data: bytes) -> dict:
    return {"shape": list(shape), "data": _b64(data)}


def cases(lib) -> list[tuple[dict, dict, float]]:
    eng = Engine(lib)
    out: list[tuple[dict, dict, float]] = []
    rng = np.random.default_rng

    # products: every type, decode / few-token / prefill (tiled matmul) shapes
    for type_id in (F32, F16, Q4_0, Q5_0, Q8_0):
        for k, n_out, n in ((256, 64, 1), (2080, 96, 3), (96, 40, 70)):
            r = rng(k + n_out + n)
            w = (r.standard_normal((n_out, k)) / np.sqrt(k)).astype(np.float32)
            x = r.standard_normal((n, k)).astype(np.float32)
            wb = quantize(w, type_id)
            gw = eng.tensor(type_id, (k, n_out), wb, 1)
            ref = eng.run([(F32, (k, n), x.tobytes())], lambda g, xh: lib.eng_mul_mat(g, gw, xh))
            out.append(({"id": f"linear-{type_id}-{k}x{n_out}x{n}", "op": "linear", "n": n,
                         "weights": [_w("w", type_id, (k, n_out), wb)], "inputs": [_x((k, n), x.tobytes())]},
                        {"out": ref}, 2e-6))
    for type_name in ("Q4_K", "Q6_K"):
        type_id, (k, n_out), wb = _k_tensor(type_name)
        for n in (1, 40):
            x = rng(n).standard_normal((n, k)).astype(np.float32)
            gw = eng.tensor(type_id, (k, n_out), wb, 1)
            ref = eng.run([(F32, (k, n), x.tobytes())], lambda g, xh: lib.eng_mul_mat(g, gw, xh))
            out.append(({"id": f"linear-{type_name}-{n}", "op": "linear", "n": n,
                         "weights": [_w("w", type_id, (k, n_out), wb)], "inputs": [_x((k, n), x.tobytes())]},
                        {"out": ref}, 2e-6))
    r = rng(3)
    k, n_out, n = 128, 48, 2
    w = r.standard_normal((n_out, k)).astype(np.float32)
    b = r.standard_normal(n_out).astype(np.float32)
    x = r.standard_normal((n, k)).astype(np.float32)
    gw, gb = eng.tensor(F32, (k, n_out), w.tobytes()), eng.tensor(F32, (n_out,), b.tobytes())
    ref = eng.run([(F32, (k, n), x.tobytes())], lambda g, xh: lib.eng_add(g, lib.eng_mul_mat(g, gw, xh), gb))
    out.append(({"id": "linear-bias", "op": "linear", "n": n, "inputs": [_x((k, n), x.tobytes())],
                 "weights": [_w("w", F32, (k, n_out), w.tobytes()), _w("b", F32, (n_out,), b.tobytes())]},
                {"out": ref}, 1e-6))

    # embeddings (dequantization is exact)
    ids = np.array([0, 49, 3, 3, 17, 1, 48], dtype=np.int32)
    table = rng(11).standard_normal((50, 96)).astype(np.float32)
    for type_id in (F32, F16, Q4_0, Q5_0, Q8_0):
        tb = quantize(table, type_id)
        gt = eng.tensor(type_id, (96, 50), tb)
        ref = eng.run([(I32, (len(ids),), ids.tobytes())], lambda g, ih: lib.eng_get_rows(g, gt, ih))
        out.append(({"id": f"embed-{type_id}", "op": "embed", "n": len(ids), "args": {"ids": ids.tolist()},
                     "weights": [_w("t", type_id, (96, 50), tb)]}, {"out": ref}, 0.0))
    for type_name in ("Q4_K", "Q6_K"):
        type_id, (d, vocab), tb = _k_tensor(type_name)
        kid = np.array([0, vocab - 1, 3, 17, 1], dtype=np.int32)
        gt = eng.tensor(type_id, (d, vocab), tb)
        ref = eng.run([(I32, (len(kid),), kid.tobytes())], lambda g, ih: lib.eng_get_rows(g, gt, ih))
        out.append(({"id": f"embed-{type_name}", "op": "embed", "n": len(kid), "args": {"ids": kid.tolist()},
                     "weights": [_w("t", type_id, (d, vocab), tb)]}, {"out": ref}, 1e-6))

    # norms
    for d, rows, w_len in ((256, 3, 256), (64, 12, 64), (1000, 2, 0)):
        r = rng(d + rows)
        x = (3 * r.standard_normal((rows, d))).astype(np.float32)
        eps = 1e-6
        if w_len:
            w = r.standard_normal(w_len).astype(np.float32)
            gw = eng.tensor(F32, (w_len,), w.tobytes())
            ref = eng.run([(F32, (d, rows), x.tobytes())], lambda g, xh: lib.eng_mul(g, lib.eng_rms_norm(g, xh, eps), gw))
        else:
            ref = eng.run([(F32, (d, rows), x.tobytes())], lambda g, xh: lib.eng_rms_norm(g, xh, eps))
        out.append(({"id": f"rms_norm-{d}-{rows}-{w_len}", "op": "rms_norm", "n": 1, "args": {"eps": eps},
                     "inputs": [_x((d, rows), x.tobytes())],
                     "weights": [_w("nw", F32, (w_len,), w.tobytes())] if w_len else []}, {"out": ref}, 1e-6))

    # element-wise
    r = rng(5)
    d, n = 384, 5
    a = (4 * r.standard_normal((n, d))).astype(np.float32)
    a[0, :4] = [-12.0, 12.0, -9.99, 0.0]
    bm = r.standard_normal((n, d)).astype(np.float32)
    bv = r.standard_normal(d).astype(np.float32)
    gbv = eng.tensor(F32, (d,), bv.tobytes())
    inputs = [(F32, (d, n), a.tobytes()), (F32, (d, n), bm.tobytes())]
    refs = {"add": lambda g, x, y: lib.eng_add(g, x, y), "add_bcast": lambda g, x: lib.eng_add(g, x, gbv),
            "mul_bcast": lambda g, x: lib.eng_mul(g, x, gbv), "scale": lambda g, x: lib.eng_scale(g, x, 0.125),
            "tanh": lambda g, x: lib.eng_unary(g, x, UNARY["tanh"]),
            "swiglu": lambda g, x, y: lib.eng_glu_split(g, x, y, GLU["swiglu"]),
            "geglu": lambda g, x, y: lib.eng_glu_split(g, x, y, GLU["geglu"])}
    for kind, build in refs.items():
        ref = eng.run(inputs if kind in ("add", "swiglu", "geglu") else inputs[:1], build)
        out.append(({"id": f"eltwise-{kind}", "op": "eltwise", "n": n, "args": {"kind": kind},
                     "inputs": [_x((d, n), a.tobytes()), _x((d, n), bm.tobytes())],
                     "weights": [_w("bv", F32, (d,), bv.tobytes())]}, {"out": ref}, 2e-6))

    # rope
    for neox in (False, True):
        for n_dims, freqs, n_past in ((64, False, 0), (64, True, 37), (32, False, 200)):
            r = rng(n_dims + n_past)
            hd, nh, n = 64, 3, 5
            x = r.standard_normal((n, nh, hd)).astype(np.float32)
            base = 10000.0 if not neox else 1_000_000.0
            rope = Rope(n_dims=n_dims, neox=neox, freq_base=base, n_ctx_orig=4096)
            ff = np.linspace(1.0, 8.0, n_dims // 2, dtype=np.float32) if freqs else None
            pos = np.arange(n_past, n_past + n, dtype=np.int32)
            gff = eng.tensor(F32, (n_dims // 2,), ff.tobytes()) if freqs else -1
            ref = eng.run([(F32, (hd, nh, n), x.tobytes()), (I32, (n,), pos.tobytes())],
                          lambda g, xh, ph: lib.eng_rope(g, xh, ph, gff, n_dims, 2 if neox else 0, rope.n_ctx_orig,
                                                         rope.freq_base, rope.freq_scale, rope.ext_factor,
                                                         rope.attn_factor, rope.beta_fast, rope.beta_slow))
            out.append(({"id": f"rope-{neox}-{n_dims}-{freqs}-{n_past}", "op": "rope", "n": n, "n_past": n_past,
                         "args": {"n_dims": n_dims, "neox": neox, "freq_base": base},
                         "inputs": [_x((hd, nh, n), x.tobytes())],
                         "weights": [_w("ff", F32, (n_dims // 2,), ff.tobytes())] if freqs else []},
                        {"out": ref}, 2e-6))

    # attention over the F16 cache: decode (split + combine), short and long prefill
    for n_past, n, n_head, n_head_kv, hd, window, softcap in (
            (0, 1, 4, 2, 64, 0, 0.0), (150, 1, 4, 1, 64, 0, 0.0), (150, 1, 2, 2, 128, 32, 0.0),
            (40, 1, 2, 1, 256, 0, 30.0), (3, 9, 4, 2, 64, 0, 0.0), (10, 70, 4, 2, 64, 0, 0.0),
            (0, 80, 2, 1, 64, 16, 0.0)):
        r = rng(n_past + n + hd)
        n_kv = n_past + n
        q = r.standard_normal((n, n_head, hd)).astype(np.float32)
        k_all = r.standard_normal((n_kv, n_head_kv, hd)).astype(np.float32)
        v_all = r.standard_normal((n_kv, n_head_kv, hd)).astype(np.float32)
        scale = 1.0 / math.sqrt(hd)
        mask = np.full((n, n_kv), -np.inf, dtype=np.float32)
        for i in range(n):
            p1 = n_past + i
            for j in range(n_kv):
                if j <= p1 and not (window > 0 and p1 - j >= window):
                    mask[i, j] = 0.0

        def build_ref(g, qh, kh, vh, mh, hd=hd, n_head=n_head, n=n, scale=scale, softcap=softcap):
            qp, kp, vp = (lib.eng_permute(g, t, 0, 2, 1, 3) for t in (qh, kh, vh))
            o = lib.eng_flash_attn(g, qp, kp, vp, mh, scale, 0.0, softcap)
            return lib.eng_reshape(g, o, hd * n_head, n, 1, 1)
        ref = eng.run([(F32, (hd, n_head, n), q.tobytes()),
                       (F16, (hd, n_head_kv, n_kv), k_all.astype(np.float16).tobytes()),
                       (F16, (hd, n_head_kv, n_kv), v_all.astype(np.float16).tobytes()),
                       (F16, (n_kv, n), mask.astype(np.float16).tobytes())], build_ref)
        out.append(({"id": f"attention-{n_past}-{n}-{n_head}-{n_head_kv}-{hd}-{window}-{softcap}", "op": "attention",
                     "n": n, "n_past": n_past,
                     "args": {"n_head_kv": n_head_kv, "hd": hd, "scale": scale, "window": window, "softcap": softcap,
                              "k_past": _b64(k_all[:n_past].astype(np.float16).tobytes()),
                              "v_past": _b64(v_all[:n_past].astype(np.float16).tobytes())},
                     "inputs": [_x((hd, n_head, n), q.tobytes()), _x((hd, n_head_kv, n), k_all[n_past:].tobytes()),
                                _x((hd, n_head_kv, n), v_all[n_past:].tobytes())]},
                    {"out": ref, "k_cache": k_all.astype(np.float16).tobytes()}, 1e-3 if n < 64 else 1e-5))

    # argmax: the first of equal maxima, as the engine's
    x = rng(9).standard_normal(5000).astype(np.float32)
    x[1234] = x[4321] = 10.0
    out.append(({"id": "argmax-ties", "op": "argmax", "n": 1, "inputs": [_x((5000, 1), x.tobytes())]},
                {"argmax": 1234}, 0.0))
    return out
