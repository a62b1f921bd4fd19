"""Runs kernel cases (tests/browser/webgpu_kernel_cases.py) on a BrowserDevice, inside the
harness page's Pyodide worker: pure Python, no numpy. Each case names one op of the op
vocabulary, its weights and inputs (base64); the result is the op's output bytes
(base64), compared with ggml's on the host. Sent to the worker as source text."""
import array
import base64
import json
import struct

from app.backends.webgpu.graph import LayerCache, StepRecorder, Weight
from app.backends.webgpu.kernels import Kernels
from app.backends.webgpu.runner import rope_cache
from app.ops import Rope

F32 = 0


def _b(s):
    return base64.b64decode(s)


class Ctx:
    """The little a StepRecorder needs from a runner (as tests/test_webgpu_kernels.py's)."""

    def __init__(self, dev, caches=(), kv_size=256):
        self.device, self.kernels, self.caches, self.kv_size = dev, Kernels(dev), list(caches), kv_size

    def rope_table(self, rope, freq_factors):
        ff = array.array("f", freq_factors.host).tolist() if freq_factors is not None else None
        table = rope_cache(rope, self.kv_size, ff)
        buf = self.device.buffer(4 * len(table), "rope")
        self.device.write(buf, 0, table)
        return buf

    def weight(self, w):
        data = _b(w["data"])
        buf = self.device.buffer(len(data), w["name"])
        self.device.write(buf, 0, data)
        return Weight(w["name"], w["type"], tuple(w["shape"]), buf, data if w["type"] == F32 else None)


async def run_case(dev, case):
    c = case
    n, n_past = c["n"], c.get("n_past", 0)
    caches = []
    if c["op"] == "attention":
        a = c["args"]
        e = a["n_head_kv"] * a["hd"]
        kc, vc = dev.buffer(2 * e * 256, "k"), dev.buffer(2 * e * 256, "v")
        if n_past:
            dev.write(kc, 0, _b(a["k_past"]))
            dev.write(vc, 0, _b(a["v_past"]))
        caches = [LayerCache(kc, vc, a["n_head_kv"], a["hd"])]
    ctx = Ctx(dev, caches)
    W = [ctx.weight(w) for w in c.get("weights", [])]
    rec = StepRecorder(ctx, n, n)
    X = [rec.input(tuple(x["shape"]), _b(x["data"])) for x in c.get("inputs", [])]
    a = c.get("args", {})
    op = c["op"]
    if op == "linear":
        out = rec.linear(W[0], X[0], W[1] if len(W) > 1 else None)
    elif op == "embed":
        dev.write(rec.tokens, 0, array.array("I", a["ids"]))
        out = rec.token_embeddings(W[0])
    elif op == "rms_norm":
        out = rec.rms_norm(X[0], W[0] if W else None, a["eps"])
    elif op == "eltwise":
        x, y = X[0], X[1]
        bv = W[0] if W else None
        out = {"add": lambda: rec.add(x, y), "add_bcast": lambda: rec.add(x, bv), "mul_bcast": lambda: rec.mul(bv, x),
               "scale": lambda: rec.scale(x, 0.125), "tanh": lambda: rec.tanh(x),
               "swiglu": lambda: rec.swiglu(x, y), "geglu": lambda: rec.geglu(x, y)}[a["kind"]]()
    elif op == "rope":
        rope = Rope(n_dims=a["n_dims"], neox=a["neox"], freq_base=a["freq_base"], n_ctx_orig=4096)
        out = rec.rope(X[0], rope, W[0] if W else None)
    elif op == "attention":
        out = rec.attention(0, X[0], X[1], X[2], a["scale"], window=a["window"], softcap=a["softcap"])
    elif op == "argmax":
        out = X[0]
    else:
        raise ValueError(f"unknown op {op}")
    out = rec.keep(out)
    rec.finish(out)
    dev.write(rec.step_buf, 0, struct.pack("<4I", n_past, n, 0, 0))
    dev.run(rec.program)
    res = {"out": base64.b64encode(bytes(await dev.read_async(out.st.buf, 0, out.st.nbytes))).decode()}
    if op == "argmax":
        res["argmax"] = struct.unpack("<I", await dev.read_async(rec.argmax_buf, 0, 4))[0]
    if op == "attention":
        nb = 2 * a["n_head_kv"] * a["hd"] * (n_past + n)
        res["k_cache"] = base64.b64encode(bytes(await dev.read_async(caches[0].k, 0, nb))).decode()
    err = dev.error()
    if err:
        raise RuntimeError(f"{c['id']}: WebGPU error: {err}")
    return res


async def run_cases(dev, cases):
    out = {}
    for c in cases:
        out[c["id"]] = await run_case(dev, c)
    return out
