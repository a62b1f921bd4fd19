"""Each WGSL kernel (shaders/) against the ggml engine on random inputs, on the host's
WebGPU adapter (wgpu-py; Mesa lavapipe on a machine without a GPU).

No adapter is a failure, not a skip: install `mesa-vulkan-drivers` (Debian) and the
pinned `wgpu` from requirements-dev.txt.
"""
from __future__ import annotations

import ctypes
import math
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.backends.ggml.library import GLU, UNARY  # noqa: E402
from app.backends.webgpu.device import WgpuDevice  # noqa: E402
from app.backends.webgpu.graph import LayerCache, StepRecorder, Weight  # noqa: E402
from app.backends.webgpu.kernels import Kernels  # noqa: E402
from app.backends.webgpu.runner import rope_cache  # noqa: E402
from app.ops import Rope  # noqa: E402

F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, I32, I64 = 0, 1, 2, 3, 6, 7, 8, 26, 27
TYPE_NAMES = {F32: "F32", F16: "F16", Q4_0: "Q4_0", Q4_1: "Q4_1", Q5_0: "Q5_0", Q5_1: "Q5_1", Q8_0: "Q8_0"}


def quantize(arr: np.ndarray, type_id: int) -> bytes:
    """GGUF bytes of a 2-d float array (rows = last numpy axis), via gguf-py."""
    from tools.testmodels import gguf  # gguf-py from the pinned llama.cpp sources
    if type_id == F32:
        return arr.astype(np.float32).tobytes()
    if type_id == F16:
        return arr.astype(np.float16).tobytes()
    q = gguf.quants.quantize(arr.astype(np.float32), gguf.GGMLQuantizationType[TYPE_NAMES[type_id]])
    return q.tobytes()


# -- the ggml side: one-op graphs on the engine ------------------------------------------------------

class Engine:
    def __init__(self, lib) -> None:
        self.lib = lib
        self.eng = lib.check(lib.eng_new(1), "engine")
        self._keep = []

    def tensor(self, type_id: int, shape: tuple[int, ...], data: bytes, flags: int = 0) -> int:
        lib = self.lib
        pool = lib.check(lib.eng_pool_new(self.eng, 1), "pool")
        sh = list(shape) + [1] * (4 - len(shape))
        t = lib.check(lib.eng_pool_tensor(pool, type_id, *map(float, sh), flags), "tensor")
        lib.check(lib.eng_pool_alloc(pool), "alloc")
        self._set(t, data)
        self._keep.append(pool)
        return t

    def _set(self, t: int, data: bytes) -> None:
        buf = ctypes.create_string_buffer(bytes(data), len(data))
        self.lib.check(self.lib.eng_tensor_set(t, 0.0, ctypes.addressof(buf), float(len(data))), "set")

    def run(self, inputs, build) -> np.ndarray:
        """inputs: [(type, shape, bytes)]; build(g, *handles) -> output handle."""
        lib = self.lib
        g = lib.check(lib.eng_graph_new(self.eng, 256), "graph")
        hs = []
        for type_id, shape, _ in inputs:
            sh = list(shape) + [1] * (4 - len(shape))
            hs.append(lib.check(lib.eng_input(g, type_id, *map(float, sh)), "input"))
        out = build(g, *hs)
        lib.check(lib.eng_graph_output(g, out), "output")
        lib.check(lib.eng_graph_alloc(g), "graph alloc")
        for h, (_, _, data) in zip(hs, inputs):
            self._set(h, data)
        lib.check(lib.eng_graph_compute(g), "compute")
        n = int(lib.eng_tensor_nbytes(out))
        res = ctypes.create_string_buffer(n)
        lib.check(lib.eng_tensor_get(out, 0.0, ctypes.addressof(res), float(n)), "get")
        lib.eng_graph_free(g)
        return np.frombuffer(res.raw, dtype=np.float32).copy()


# -- the WebGPU side ---------------------------------------------------------------------------------

class Ctx:
    """The little a StepRecorder needs from a runner."""

    def __init__(self, dev, caches=(), kv_size: int = 256) -> None:
        self.device, self.kernels, self.caches, self.kv_size = dev, Kernels(dev), list(caches), kv_size

    def rope_table(self, rope, freq_factors):
        ff = np.frombuffer(freq_factors.host, np.float32).tolist() if freq_factors is not None else None
        table = rope_cache(rope, self.kv_size, ff)
        buf = self.device.buffer(4 * len(table), "rope")
        self.device.write(buf, 0, table)
        return buf

    def weight(self, type_id: int, shape, data: bytes, name: str = "w") -> Weight:
        buf = self.device.buffer(len(data), name)
        self.device.write(buf, 0, data)
        host = data if type_id == F32 else None
        return Weight(name, type_id, tuple(shape), buf, host)

    def run(self, n_tokens: int, build, n_past: int = 0) -> np.ndarray:
        rec = StepRecorder(self, n_tokens, n_tokens)
        out = rec.keep(build(rec))
        rec.finish(out)
        self.device.write(rec.step_buf, 0, struct.pack("<4I", n_past, n_tokens, 0, 0))
        self.device.run(rec.run_list)
        return np.frombuffer(rec.read(out), dtype=np.float32).copy()


@pytest.fixture(scope="module")
def dev():
    return WgpuDevice()  # raises (the test fails) when there is no adapter


@pytest.fixture(scope="module")
def ctx(dev):
    return Ctx(dev)


@pytest.fixture(scope="module")
def eng(engine_library):
    return Engine(engine_library)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-30))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- mat-vec / few-token products ----------------------------------------------------------------------

@pytest.mark.parametrize("type_id", [F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0])
@pytest.mark.parametrize("k,n_out,n", [(256, 64, 1), (2080, 96, 3), (512, 1000, 1), (96, 40, 70), (4096, 40, 1), (8192, 24, 1), (2080, 130, 100)])
def test_linear(ctx, eng, type_id, k, n_out, n):
    r = rng(k + n_out + n)
    w = (r.standard_normal((n_out, k)) / np.sqrt(k)).astype(np.float32)
    x = r.standard_normal((n, k)).astype(np.float32)
    wb = quantize(w, type_id)
    gw = eng.tensor(type_id, (k, n_out), wb, 1)  # MATMUL_WEIGHT: the engine's repacked path, as the runner
    ref = eng.run([(F32, (k, n), x.tobytes())], lambda g, xh: eng.lib.eng_mul_mat(g, gw, xh))
    W = ctx.weight(type_id, (k, n_out), wb)
    out = ctx.run(n, lambda rec: rec.linear(W, rec.input((k, n), x.tobytes())))
    assert out.shape == ref.shape
    if type_id in (Q4_0, Q5_0, Q8_0):  # ggml's x86 sum orders (repacked q4_0_8x8; vec_dot / tinyBLAS)
        assert np.array_equal(out, ref), f"{int((out != ref).sum())} of {out.size} values differ"
    assert rel_err(out, ref) < 2e-6


def test_linear_with_bias(ctx, eng):
    r = rng(3)
    k, n_out, n = 128, 48, 2
    w = r.standard_normal((n_out, k)).astype(np.float32)
    b = r.standard_normal(n_out).astype(np.float32)
    x = r.standard_normal((n, k)).astype(np.float32)
    gw, gb = eng.tensor(F32, (k, n_out), w.tobytes()), eng.tensor(F32, (n_out,), b.tobytes())
    ref = eng.run([(F32, (k, n), x.tobytes())],
                  lambda g, xh: eng.lib.eng_add(g, eng.lib.eng_mul_mat(g, gw, xh), gb))
    W, B = ctx.weight(F32, (k, n_out), w.tobytes()), ctx.weight(F32, (n_out,), b.tobytes(), "b")
    out = ctx.run(n, lambda rec: rec.linear(W, rec.input((k, n), x.tobytes()), B))
    assert rel_err(out, ref) < 1e-6


# -- embedding lookup ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_id", [F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0])
def test_token_embeddings(ctx, eng, type_id):
    r = rng(11)
    d, vocab, n = 96, 50, 7
    table = r.standard_normal((vocab, d)).astype(np.float32)
    tb = quantize(table, type_id)
    ids = np.array([0, 49, 3, 3, 17, 1, 48], dtype=np.int32)
    gt = eng.tensor(type_id, (d, vocab), tb)
    ref = eng.run([(I32, (n,), ids.tobytes())], lambda g, ih: eng.lib.eng_get_rows(g, gt, ih))
    W = ctx.weight(type_id, (d, vocab), tb)

    def build(rec):
        ctx.device.write(rec.tokens, 0, ids.astype(np.uint32).tobytes())
        return rec.token_embeddings(W)
    out = ctx.run(n, build)
    assert np.array_equal(out, ref)  # dequantization is exact


# -- norms and element-wise ops ----------------------------------------------------------------------------

@pytest.mark.parametrize("d,rows,w_len", [(256, 3, 256), (64, 12, 64), (1000, 2, 0)])
def test_rms_norm(ctx, eng, d, rows, w_len):
    r = rng(d + rows)
    x = (3 * r.standard_normal((rows, d))).astype(np.float32)
    w = r.standard_normal(w_len).astype(np.float32) if w_len else None
    eps = 1e-6
    if w is None:
        ref = eng.run([(F32, (d, rows), x.tobytes())], lambda g, xh: eng.lib.eng_rms_norm(g, xh, eps))
    else:
        gw = eng.tensor(F32, (w_len,), w.tobytes())
        ref = eng.run([(F32, (d, rows), x.tobytes())],
                      lambda g, xh: eng.lib.eng_mul(g, eng.lib.eng_rms_norm(g, xh, eps), gw))
    W = ctx.weight(F32, (w_len,), w.tobytes(), "nw") if w is not None else None
    out = ctx.run(1, lambda rec: rec.rms_norm(rec.input((d, rows), x.tobytes()), W, eps))
    assert np.array_equal(out, ref)  # ggml's double sum of squares, reproduced


@pytest.mark.parametrize("op", ["add", "add_bcast", "mul_bcast", "scale", "tanh", "swiglu", "geglu"])
def test_elementwise(ctx, eng, op):
    r = rng(5)
    d, n = 384, 5
    a = (4 * r.standard_normal((n, d))).astype(np.float32)
    a[0, :4] = [-12.0, 12.0, -9.99, 0.0]  # geglu's edges
    b = r.standard_normal((n, d)).astype(np.float32)
    bv = r.standard_normal(d).astype(np.float32)
    lib = eng.lib
    inputs = [(F32, (d, n), a.tobytes()), (F32, (d, n), b.tobytes())]
    gbv = eng.tensor(F32, (d,), bv.tobytes())
    BV = ctx.weight(F32, (d,), bv.tobytes(), "bv")
    build_ref = {
        "add": lambda g, x, y: lib.eng_add(g, x, y),
        "add_bcast": lambda g, x: lib.eng_add(g, x, gbv),
        "mul_bcast": lambda g, x: lib.eng_mul(g, x, gbv),
        "scale": lambda g, x: lib.eng_scale(g, x, 0.125),
        "tanh": lambda g, x: lib.eng_unary(g, x, UNARY["tanh"]),
        "swiglu": lambda g, x, y: lib.eng_glu_split(g, x, y, GLU["swiglu"]),
        "geglu": lambda g, x, y: lib.eng_glu_split(g, x, y, GLU["geglu"]),
    }[op]
    ref = eng.run(inputs if op in ("add", "swiglu", "geglu") else inputs[:1], build_ref)

    def build(rec):
        x, y = rec.input((d, n), a.tobytes()), rec.input((d, n), b.tobytes())
        return {"add": lambda: rec.add(x, y), "add_bcast": lambda: rec.add(x, BV), "mul_bcast": lambda: rec.mul(BV, x),
                "scale": lambda: rec.scale(x, 0.125), "tanh": lambda: rec.tanh(x),
                "swiglu": lambda: rec.swiglu(x, y), "geglu": lambda: rec.geglu(x, y)}[op]()
    out = ctx.run(n, build)
    if op in ("swiglu", "geglu"):  # ggml's AVX-512 expf in silu, its f16 gelu table
        assert np.array_equal(out, ref), f"{int((out != ref).sum())} of {out.size} values differ"
    assert rel_err(out, ref) < 2e-6


# -- rope ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("neox", [False, True])
@pytest.mark.parametrize("n_dims,freqs,n_past", [(64, False, 0), (64, True, 37), (32, False, 200)])
def test_rope(ctx, eng, neox, n_dims, freqs, n_past):
    r = rng(n_dims + n_past)
    hd, nh, n = 64, 3, 5
    x = r.standard_normal((n, nh, hd)).astype(np.float32)
    rope = Rope(n_dims=n_dims, neox=neox, freq_base=10000.0 if not neox else 1_000_000.0, n_ctx_orig=4096)
    ff = np.linspace(1.0, 8.0, n_dims // 2, dtype=np.float32) if freqs else None
    pos = np.arange(n_past, n_past + n, dtype=np.int32)
    gff = eng.tensor(F32, (n_dims // 2,), ff.tobytes()) if freqs else -1
    lib = eng.lib
    ref = eng.run([(F32, (hd, nh, n), x.tobytes()), (I32, (n,), pos.tobytes())],
                  lambda g, xh, ph: lib.eng_rope(g, xh, ph, gff, n_dims, 2 if neox else 0, rope.n_ctx_orig,
                                                 rope.freq_base, rope.freq_scale, rope.ext_factor, rope.attn_factor,
                                                 rope.beta_fast, rope.beta_slow))
    FF = ctx.weight(F32, (n_dims // 2,), ff.tobytes(), "ff") if freqs else None
    out = ctx.run(n, lambda rec: rec.rope(rec.input((hd, nh, n), x.tobytes()), rope, FF), n_past=n_past)

    assert np.array_equal(out, ref)  # libm cosf/sinf table, ggml's fused multiply-adds


# -- attention over the F16 cache ------------------------------------------------------------------------------

@pytest.mark.parametrize("n_past,n,n_head,n_head_kv,hd,window,softcap", [
    (0, 1, 4, 2, 64, 0, 0.0),       # first decode step
    (150, 1, 4, 1, 64, 0, 0.0),     # decode over 151 cells (3 chunks), GQA 4:1
    (150, 1, 2, 2, 128, 32, 0.0),   # sliding window
    (40, 1, 2, 1, 256, 0, 30.0),    # head_dim 256, soft-cap
    (3, 9, 4, 2, 64, 0, 0.0),       # a short prefill (ggml's one-chunk path)
    (10, 70, 4, 2, 64, 0, 0.0),     # a long prefill (ggml's tiled path)
    (0, 80, 2, 1, 64, 16, 0.0),     # long prefill with a window
])
def test_attention(dev, eng, n_past, n, n_head, n_head_kv, hd, window, softcap):
    out, ref = _attention(dev, eng, n_past, n, n_head, n_head_kv, hd, window, softcap)
    if softcap == 0.0:
        # ggml's one-chunk path (< 64 rows: its dot order, glibc's expf, fused multiply-adds,
        # f16 accumulation; while the KV length fits one chunk) and its tiled path (64+ rows:
        # f32 fma chains, its SIMD expf and sum trees), reproduced bit for bit
        assert np.array_equal(out, ref), f"{int((out != ref).sum())} of {out.size} values differ"
    else:  # tanhf soft-capping is not reproduced bit for bit
        assert rel_err(out, ref) < 1e-3


@pytest.mark.parametrize("n_past", [150, 255, 300, 460])
def test_decode_attention_in_64_cell_chunks(dev, eng, n_past):
    """The runner's split (64 cells a workgroup): a context of up to 256 cells is still walked
    in one chunk as ggml's is (bit for bit); past that the chunks are merged. ggml keeps one f16
    accumulator over the whole context, so merged chunks differ by its roundings: ~4e-3 of the
    largest value at these lengths, as 256-cell chunks did (2e-3 to 4e-3)."""
    out, ref = _attention(dev, eng, n_past, 1, 4, 2, 64, 0, 0.0, kv_size=512, chunk=64)
    if n_past + 1 <= 256:
        assert np.array_equal(out, ref), f"{int((out != ref).sum())} of {out.size} values differ"
    else:
        assert rel_err(out, ref) < 1e-2


def _attention(dev, eng, n_past, n, n_head, n_head_kv, hd, window, softcap, kv_size=256, chunk=None):
    r = rng(n_past + n + hd)
    n_kv = n_past + n
    e = n_head_kv * hd
    q = r.standard_normal((n, n_head, hd)).astype(np.float32)
    k_all = r.standard_normal((n_kv, n_head_kv, hd)).astype(np.float32)
    v_all = r.standard_normal((n_kv, n_head_kv, hd)).astype(np.float32)
    scale = 1.0 / math.sqrt(hd)
    # ggml: q [hd, nh, n] -> [hd, n, nh]; k/v F16 [hd, nkv, n_kv] -> [hd, n_kv, nkv]; F16 mask [n_kv, n]
    mask = np.full((n, n_kv), -np.inf, dtype=np.float32)
    for i in range(n):
        p1 = n_past + i
        for j in range(n_kv):
            if j <= p1 and not (window > 0 and p1 - j >= window):
                mask[i, j] = 0.0
    lib = eng.lib

    def build_ref(g, qh, kh, vh, mh):
        qp, kp, vp = (lib.eng_permute(g, t, 0, 2, 1, 3) for t in (qh, kh, vh))
        out = lib.eng_flash_attn(g, qp, kp, vp, mh, scale, 0.0, softcap)
        return lib.eng_reshape(g, out, hd * n_head, n, 1, 1)
    ref = eng.run([(F32, (hd, n_head, n), q.tobytes()), (F16, (hd, n_head_kv, n_kv), k_all.astype(np.float16).tobytes()),
                   (F16, (hd, n_head_kv, n_kv), v_all.astype(np.float16).tobytes()),
                   (F16, (n_kv, n), mask.astype(np.float16).tobytes())], build_ref)

    kc, vc = dev.buffer(2 * e * kv_size, "k"), dev.buffer(2 * e * kv_size, "v")
    if n_past:
        dev.write(kc, 0, k_all[:n_past].astype(np.float16).tobytes())
        dev.write(vc, 0, v_all[:n_past].astype(np.float16).tobytes())
    c = Ctx(dev, [LayerCache(kc, vc, n_head_kv, hd)], kv_size)
    if chunk is not None:
        c.attn_chunk = chunk

    def build(rec):
        qt = rec.input((hd, n_head, n), q.tobytes())
        kt = rec.input((hd, n_head_kv, n), k_all[n_past:].tobytes())
        vt = rec.input((hd, n_head_kv, n), v_all[n_past:].tobytes())
        return rec.attention(0, qt, kt, vt, scale, window=window, softcap=softcap)
    out = c.run(n, build, n_past=n_past)
    # the new keys and values landed in the cache as F16 at cells n_past..
    kb = np.frombuffer(bytes(dev.read(kc, 0, 2 * e * n_kv)), np.float16).reshape(n_kv, n_head_kv, hd)
    assert np.array_equal(kb, k_all.astype(np.float16))
    return out, ref


# -- argmax --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,ties", [(5000, (1234, 4321)), (5, (3, 4)), (262144, (200001, 200002, 262143)),
                                    (262144, (2047, 2048, 100000))])
def test_argmax_first_of_ties(ctx, n, ties):
    """Two passes (slices of 2048+ values, then their winners): the first index of a tie wins,
    as the engine's argmax, within a slice and across slices."""
    x = rng(9).standard_normal(n).astype(np.float32)
    x[list(ties)] = 10.0
    rec = StepRecorder(ctx, 1, 1)
    rec.finish(rec.input((n, 1), x.tobytes()))
    ctx.device.run(rec.run_list)
    assert struct.unpack("<I", ctx.device.read(rec.argmax_buf, 0, 4))[0] == ties[0]


# -- K-quants (gguf-py cannot write them: real tensors from llama.cpp's quantizer) ----------------------

def _k_tensor(type_name: str):
    """(type id, shape, bytes) of a 2-d K-quant tensor of the tiny Q4_K test models."""
    from tools.testmodels import tiny
    from app.gguf import read_gguf
    for arch, file_type in (("llama", "Q4_K"), ("gemma3", "Q4_K"), ("llama", "Q5_K")):
        path = tiny(arch, file_type)
        g = read_gguf(str(path))
        for t in g.tensors:
            if t.type_name == type_name and len(t.shape) == 2:
                with open(path, "rb") as f:
                    f.seek(g.data_offset + t.offset)
                    return t.ggml_type.id, tuple(t.shape), f.read(t.nbytes)
    raise AssertionError(f"no {type_name} tensor in the tiny K-quant models")


@pytest.mark.parametrize("type_name,repack", [("Q4_K", True), ("Q4_K", False), ("Q5_K", True), ("Q6_K", True)])
@pytest.mark.parametrize("n", [1, 5, 40, 100])
def test_linear_k_quants(ctx, eng, type_name, repack, n):
    """repack False: a tensor ggml keeps as it is (token_embd as the output), which takes
    its AVX2 vec_dot / tiled kernels instead of the repacked q4_K_8x8 ones."""
    type_id, (k, n_out), wb = _k_tensor(type_name)
    x = rng(n).standard_normal((n, k)).astype(np.float32)
    gw = eng.tensor(type_id, (k, n_out), wb, 1 if repack else 0)
    ref = eng.run([(F32, (k, n), x.tobytes())], lambda g, xh: eng.lib.eng_mul_mat(g, gw, xh))
    W = ctx.weight(type_id, (k, n_out), wb)
    W.repack = repack
    out = ctx.run(n, lambda rec: rec.linear(W, rec.input((k, n), x.tobytes())))
    # ggml's x86 sum orders (AVX2 vec_dot for Q5_K/Q6_K, repacked q4_K_8x8 for Q4_K)
    assert np.array_equal(out, ref), f"{int((out != ref).sum())} of {out.size} values differ"
    assert rel_err(out, ref) < 2e-6


@pytest.mark.parametrize("type_name", ["Q4_K", "Q5_K", "Q6_K"])
def test_token_embeddings_k_quants(ctx, eng, type_name):
    type_id, (d, vocab), tb = _k_tensor(type_name)
    ids = np.array([0, vocab - 1, 3, 17, 1], dtype=np.int32)
    gt = eng.tensor(type_id, (d, vocab), tb)
    ref = eng.run([(I32, (len(ids),), ids.tobytes())], lambda g, ih: eng.lib.eng_get_rows(g, gt, ih))
    W = ctx.weight(type_id, (d, vocab), tb)

    def build(rec):
        ctx.device.write(rec.tokens, 0, ids.astype(np.uint32).tobytes())
        return rec.token_embeddings(W)
    out = ctx.run(len(ids), build)
    assert rel_err(out, ref) < 1e-6
