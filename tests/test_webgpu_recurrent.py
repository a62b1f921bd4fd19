"""The recurrent architectures on WebGPU (wgpu-py on the host adapter, lavapipe here):
each recurrent kernel against a one-op ggml graph on random inputs, then qwen35 (Gated
DeltaNet hybrid), mamba (+ Falcon-Mamba) and mamba2 whole against the ggml backend with
forced decoding over 128 positions (a 70-token prefill, then 58 single-token steps),
and the runner's recurrent state: reset, truncate, snapshots, padded prompts.

No adapter is a failure, not a skip (see tests/test_webgpu_kernels.py).
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from app.backends.ggml.library import UNARY  # noqa: E402
from app.backends.ggml.runner import GGMLRunner  # noqa: E402
from app.backends.webgpu import WebGPURunner, WgpuDevice  # noqa: E402
from app.backends.webgpu.recurrent import RecurrentRecorder  # noqa: E402
from app.backends.webgpu.recurrent_state import LayerState  # noqa: E402
from app.gguf import read_gguf  # noqa: E402
from app.models import model_for  # noqa: E402
from app.ops import Rope  # noqa: E402
from test_webgpu_kernels import Ctx, Engine, rel_err  # noqa: E402

F32, I32 = 0, 26


class RCtx(Ctx):
    """A recorder context with recurrent states (one layer) and a switch for the fusions."""

    def __init__(self, dev, conv: np.ndarray | None = None, ssm: np.ndarray | None = None, fuse: bool = True) -> None:
        super().__init__(dev)
        self.fuse = fuse
        bufs = []
        for a in (conv, ssm):
            a = np.zeros(4, np.float32) if a is None else a.astype(np.float32)
            b = dev.buffer(a.nbytes, "state")
            dev.write(b, 0, a.tobytes())
            bufs.append((b, a.nbytes))
        self.states = [LayerState(bufs[0][0], bufs[1][0], bufs[0][1], bufs[1][1])]
        self.n_dispatches = 0

    def run(self, n_tokens: int, build, n_past: int = 0, n_real: int | None = None) -> np.ndarray:
        rec = RecurrentRecorder(self, n_tokens, n_tokens)
        out = rec.keep(rec._dense(build(rec)))
        rec.finish(out)
        self.n_dispatches = rec.n_dispatches
        self.kinds = [(d.kernel, {k: int(v) for k, v in d.consts.items() if v not in (0, False)}) for d in rec.disp]
        self.device.write(rec.step_buf, 0, struct.pack("<4I", n_past, n_tokens if n_real is None else n_real, 0, 0))
        self.device.run(rec.run_list)
        return np.frombuffer(rec.read(out), dtype=np.float32).copy()

    def state(self, which: int) -> np.ndarray:
        st = self.states[0]
        buf, n = (st.conv, st.conv_bytes) if which == 0 else (st.ssm, st.ssm_bytes)
        return np.frombuffer(bytes(self.device.read(buf, 0, n)), np.float32).copy()


@pytest.fixture(scope="module")
def dev():
    return WgpuDevice()


@pytest.fixture(scope="module")
def eng(engine_library):
    return Engine(engine_library)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def f32(a) -> bytes:
    return np.ascontiguousarray(a, dtype=np.float32).tobytes()


# -- causal conv1d with its state ------------------------------------------------------------------

@pytest.mark.parametrize("n,n_real,view", [(1, 1, False), (9, 9, False), (9, 6, True), (70, 70, True)])
def test_causal_conv(dev, eng, n, n_real, view):
    """Decode step and prefill; `view`: x is the first half of a wider projection (Mamba's
    x of xz), with the bias add and silu the models apply after the conv (folded in); n_real <
    n: a padded prompt, where only the real tokens may advance the state."""
    r = rng(n + n_real)
    channels, d_conv = 96, 4
    xz = r.standard_normal((n, 2 * channels)).astype(np.float32)
    x = xz[:, :channels]
    w = r.standard_normal((channels, d_conv)).astype(np.float32)
    b = r.standard_normal(channels).astype(np.float32)
    state = r.standard_normal((channels, d_conv - 1)).astype(np.float32)
    lib = eng.lib
    gw, gb = eng.tensor(F32, (d_conv, channels), f32(w)), eng.tensor(F32, (channels,), f32(b))

    def build_ref(g, sh, xh):
        xt = lib.eng_transpose(g, xh)
        cx = lib.eng_concat(g, sh, xt, 0)
        y = lib.eng_ssm_conv(g, cx, gw)
        return lib.eng_unary(g, lib.eng_add(g, y, gb), UNARY["silu"]) if view else y
    xr = x[:n_real]
    ref = eng.run([(F32, (d_conv - 1, channels), f32(state)), (F32, (channels, n_real), f32(xr))], build_ref)
    c = RCtx(dev, conv=state)
    W, B = c.weight(F32, (d_conv, channels), f32(w), "conv"), c.weight(F32, (channels,), f32(b), "bias")

    def build(rec):
        if view:
            xs = rec.split(rec.input((2 * channels, n), f32(xz)), 0, channels)
            return rec.silu(rec.add(rec.causal_conv(0, xs, W), B))
        return rec.causal_conv(0, rec.input((channels, n), f32(x)), W)
    out = c.run(n, build, n_real=n_real).reshape(n, channels)
    assert rel_err(out[:n_real].ravel(), ref) < 1e-6
    assert not out[n_real:].any()  # padded rows
    new_state = np.concatenate([state, xr.T], axis=1)[:, -(d_conv - 1):]
    assert np.array_equal(c.state(0).reshape(channels, d_conv - 1), new_state)
    if view:
        # the bias folded into the conv, the silu materialized for the output (+ the recorder's two-pass argmax)
        assert [k for k, _ in c.kinds] == ["ssm_conv", "rec_eltwise", "argmax", "argmax"] and c.kinds[0][1] == {"BIAS": 1}


# -- selective scans ------------------------------------------------------------------------------

def _scan_ref(eng, s, x, dt, A, B, C, x_shape, dt_shape, s_shape, bc_shape, n):
    lib = eng.lib
    gA = eng.tensor(F32, A.shape[::-1], f32(A))
    y_elems = int(np.prod(x_shape))
    ref = eng.run([(F32, s_shape, f32(s)), (F32, x_shape, f32(x)), (F32, dt_shape, f32(dt)),
                   (F32, bc_shape, f32(B)), (F32, bc_shape, f32(C)), (I32, (1,), np.zeros(1, np.int32).tobytes())],
                  lambda g, sh, xh, dh, bh, ch, ih: lib.eng_ssm_scan(g, sh, xh, dh, gA, bh, ch, ih))
    return ref[:y_elems], ref[y_elems:]


@pytest.mark.parametrize("n", [1, 12])
def test_selective_scan_mamba1(dev, eng, n):
    r = rng(20 + n)
    d_inner, d_state = 128, 16
    x = r.standard_normal((n, d_inner)).astype(np.float32)
    dt = r.standard_normal((n, d_inner)).astype(np.float32)
    A = -np.tile(np.arange(1, d_state + 1, dtype=np.float32), (d_inner, 1))
    B, C = r.standard_normal((n, d_state)).astype(np.float32), r.standard_normal((n, d_state)).astype(np.float32)
    s = (0.5 * r.standard_normal((d_inner, d_state))).astype(np.float32)
    y_ref, s_ref = _scan_ref(eng, s, x, dt, A, B, C, (1, d_inner, n, 1), (d_inner, n), (d_state, 1, d_inner, 1),
                             (d_state, 1, n, 1), n)
    c = RCtx(dev, ssm=s)
    Aw = c.weight(F32, (d_state, d_inner), f32(A), "A")

    def build(rec):
        xbc = rec.input((d_state, n), f32(B))
        return rec.selective_scan(0, rec.input((d_inner, n), f32(x)), rec.input((d_inner, n), f32(dt)), Aw,
                                  rec.split_heads(xbc, 0, d_state, 1), rec.split_heads(rec.input((d_state, n), f32(C)),
                                                                                       0, d_state, 1))
    out = c.run(n, build)
    assert rel_err(out, y_ref) < 2e-6
    assert rel_err(c.state(1), s_ref) < 2e-6


@pytest.mark.parametrize("n", [1, 12])
def test_selective_scan_mamba2_groups(dev, eng, n):
    """Mamba-2: scalar A per head, 4 heads in 2 groups; x, B and C are views into one
    tensor with a pending silu (as the model takes them from the conv output)."""
    r = rng(40 + n)
    hd, nh, ng, d_state = 32, 4, 2, 32
    d_inner = hd * nh
    ch = d_inner + 2 * ng * d_state
    xbc = r.standard_normal((n, ch)).astype(np.float32)
    act = xbc / (1 + np.exp(-xbc))
    x, B, C = act[:, :d_inner], act[:, d_inner:d_inner + ng * d_state], act[:, d_inner + ng * d_state:]
    dt = r.standard_normal((n, nh)).astype(np.float32)
    A = -np.exp(r.uniform(0, 2, (nh, 1))).astype(np.float32)
    s = (0.5 * r.standard_normal((nh, hd, d_state))).astype(np.float32)
    y_ref, s_ref = _scan_ref(eng, s, x, dt, A, B, C, (hd, nh, n, 1), (nh, n), (d_state, hd, nh, 1),
                             (d_state, ng, n, 1), n)
    c = RCtx(dev, ssm=s)
    Aw = c.weight(F32, (1, nh), f32(A), "A")

    def build(rec):
        t = rec.silu(rec.input((ch, n), f32(xbc)))
        return rec.selective_scan(0, rec.split_heads(t, 0, hd, nh), rec.input((nh, n), f32(dt)), Aw,
                                  rec.split_heads(t, d_inner, d_state, ng),
                                  rec.split_heads(t, d_inner + ng * d_state, d_state, ng))
    out = c.run(n, build)
    assert rel_err(out, y_ref) < 2e-6
    assert rel_err(c.state(1), s_ref) < 2e-6


# -- Gated DeltaNet --------------------------------------------------------------------------------

GDN_CASES = [(32, 4, 2, 1, 1, False), (32, 4, 2, 9, 9, False), (128, 2, 1, 1, 1, False), (64, 2, 2, 5, 5, False),
             # chunked (32-token chunks): several chunks, a length that is not a multiple of the
             # chunk, a padded step (real tokens end inside a chunk, and chunks of padding only)
             (32, 4, 2, 70, 70, True), (128, 2, 1, 64, 64, True), (64, 2, 2, 33, 33, True), (32, 4, 2, 112, 45, True)]
GDN_CASES = [c + (1.0,) for c in GDN_CASES] + [(32, 4, 2, 70, 70, True, 20.0), (64, 2, 1, 100, 100, True, 0.01)]


@pytest.mark.parametrize("S,H,Hk,n,n_real,chunked,decay", GDN_CASES)
def test_gated_delta_rule(dev, eng, S, H, Hk, n, n_real, chunked, decay):
    """The delta rule against ggml_gated_delta_net; `chunked`: the chunkwise-parallel prefill
    (gdn_chunk_prep/scan.wgsl), only the first n_real of the step's n tokens real; `decay`
    scales the log decays (20: most of a chunk's decay underflows; 0.01: almost none, the
    state a sum over all tokens)."""
    r = rng(S + H + n)
    q = r.standard_normal((n, Hk, S)).astype(np.float32)
    k = r.standard_normal((n, Hk, S)).astype(np.float32)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = r.standard_normal((n, H, S)).astype(np.float32)
    g = (-decay * np.abs(r.standard_normal((n, H)))).astype(np.float32)
    beta = r.uniform(0, 1, (n, H)).astype(np.float32)
    s = (0.3 * r.standard_normal((H, S, S))).astype(np.float32)
    lib = eng.lib
    m = n_real
    ref = eng.run([(F32, (S, Hk, m), f32(q[:m])), (F32, (S, Hk, m), f32(k[:m])), (F32, (S, H, m), f32(v[:m])),
                   (F32, (1, H, m), f32(g[:m])), (F32, (1, H, m), f32(beta[:m])), (F32, (S, S, H, 1), f32(s))],
                  lambda gr, qh, kh, vh, gh, bh, sh: lib.eng_gated_delta_net(gr, qh, kh, vh, gh, bh, sh))
    c = RCtx(dev, ssm=s)
    c.gdn_chunked = chunked

    def build(rec):
        return rec.gated_delta_rule(0, rec.input((S, Hk, n), f32(q)), rec.input((S, Hk, n), f32(k)),
                                    rec.input((S, H, n), f32(v)), rec.input((1, H, n), f32(g)),
                                    rec.input((1, H, n), f32(beta)))
    out = c.run(n, build, n_real=n_real)
    kinds = [kd for kd, _ in c.kinds]
    assert ("gdn_chunk_scan" in kinds) == chunked and ("gated_delta" in kinds) == (not chunked)
    tol = 2e-6
    print(f"S {S} n {n}/{n_real} chunked {chunked} decay {decay}: rel err y {rel_err(out[:S * H * m], ref[:S * H * m]):.2e}, "
          f"state {rel_err(c.state(1), ref[S * H * m:]):.2e}")
    assert rel_err(out[:S * H * m], ref[:S * H * m]) < tol
    assert not out[S * H * m:].any()  # padded rows
    assert rel_err(c.state(1), ref[S * H * m:]) < tol


@pytest.mark.parametrize("S,H,Hk,n,chunked", [(32, 4, 2, 1, False), (32, 4, 2, 7, False), (128, 2, 1, 1, False),
                                               (128, 2, 1, 5, False), (32, 4, 2, 70, True), (128, 2, 1, 40, True)])
def test_gated_delta_net_layer_fused(dev, eng, S, H, Hk, n, chunked):
    """Qwen 3.5's mixer tail as the model writes it (silu'd conv output split into q/k/v,
    L2 norms, decay softplus(alpha + dt_bias) * A, sigmoid beta, the delta rule, RMSNorm(o) *
    silu(z), the Q8_0 output product) against the same ggml ops; the recorder folds all but
    the product into the delta-rule dispatch (`chunked`: into the chunked prefill's three)."""
    from test_webgpu_kernels import Q8_0, quantize
    r = rng(70 + n + S)
    ch = 2 * S * Hk + S * H
    qkv = r.standard_normal((n, ch)).astype(np.float32)
    z = r.standard_normal((n, H * S)).astype(np.float32)
    alpha = r.standard_normal((n, H)).astype(np.float32)
    beta = r.standard_normal((n, H)).astype(np.float32)
    dtb, A = (1 + 0.1 * r.standard_normal(H)).astype(np.float32), -np.exp(r.uniform(0, 2, H)).astype(np.float32)
    nw = (1 + 0.1 * r.standard_normal(S)).astype(np.float32)
    s = (0.3 * r.standard_normal((H, S, S))).astype(np.float32)
    eps = 1e-6
    lib = eng.lib
    g_dtb, g_A, g_nw = (eng.tensor(F32, (a.size,), f32(a)) for a in (dtb, A, nw))
    n_out = 48
    wo = quantize((r.standard_normal((n_out, S * H)) / np.sqrt(S * H)).astype(np.float32), Q8_0)
    g_wo = eng.tensor(Q8_0, (S * H, n_out), wo, 1)

    def view(g, t, off, hd, nh):
        return lib.eng_view(g, t, 4, hd, nh, n, 1, 4.0 * hd, 4.0 * ch, 4.0 * ch * n, 4.0 * off)

    def l2(g, t):
        return lib.eng_scale(g, lib.eng_rms_norm(g, t, eps / S), 1 / S ** 0.5)

    def build_ref(g, xh, zh, ah, bh, sh, state: bool = False):
        act = lib.eng_unary(g, xh, UNARY["silu"])
        q, k = l2(g, view(g, act, 0, S, Hk)), l2(g, view(g, act, S * Hk, S, Hk))
        v = view(g, act, 2 * S * Hk, S, H)
        decay = lib.eng_reshape(g, lib.eng_mul(g, lib.eng_softplus(g, lib.eng_add(g, ah, g_dtb)), g_A), 1, H, n, 1)
        b = lib.eng_unary(g, lib.eng_reshape(g, bh, 1, H, n, 1), UNARY["sigmoid"])
        res = lib.eng_gated_delta_net(g, q, k, v, decay, b, sh)
        if state:  # (z joins so that every input is part of the graph)
            new = lib.eng_cont(g, lib.eng_view(g, res, 1, S * S * H, 1, 1, 1, 0, 0, 0, 4.0 * S * H * n))
            return lib.eng_concat(g, new, lib.eng_reshape(g, zh, S * H * n, 1, 1, 1), 0)
        o = lib.eng_view(g, res, 3, S, H, n, 1, 4.0 * S, 4.0 * S * H, 0, 0)
        zz = lib.eng_unary(g, lib.eng_reshape(g, zh, S, H, n, 1), UNARY["silu"])
        y = lib.eng_mul(g, lib.eng_mul(g, lib.eng_rms_norm(g, o, eps), g_nw), zz)
        return lib.eng_mul_mat(g, g_wo, lib.eng_reshape(g, y, S * H, n, 1, 1))
    inputs = [(F32, (ch, n), f32(qkv)), (F32, (H * S, n), f32(z)), (F32, (H, n), f32(alpha)),
              (F32, (H, n), f32(beta)), (F32, (S, S, H, 1), f32(s))]
    ref = eng.run(inputs, build_ref)
    ref_state = eng.run(inputs, lambda g, *hs: build_ref(g, *hs, state=True))[:S * S * H]
    outs, counts = [], []
    for fuse in (False, True):
        c = RCtx(dev, ssm=s, fuse=fuse)
        c.gdn_chunked = chunked
        W_dtb, W_A, W_nw = c.weight(F32, (H,), f32(dtb), "dtb"), c.weight(F32, (H,), f32(A), "A"), \
            c.weight(F32, (S,), f32(nw), "nw")
        W_o = c.weight(Q8_0, (S * H, n_out), wo, "wo")

        def build(rec):
            x = rec.silu(rec.input((ch, n), f32(qkv)))
            q, k = rec.l2_norm(rec.split_heads(x, 0, S, Hk), eps), rec.l2_norm(rec.split_heads(x, S * Hk, S, Hk), eps)
            v = rec.split_heads(x, 2 * S * Hk, S, H)
            decay = rec.reshape(rec.mul(rec.softplus(rec.add(rec.input((H, n), f32(alpha)), W_dtb)), W_A), 1, H, n)
            b = rec.sigmoid(rec.reshape(rec.input((H, n), f32(beta)), 1, H, n))
            o = rec.gated_delta_rule(0, q, k, v, decay, b)
            y = rec.mul(rec.rms_norm(o, W_nw, eps), rec.silu(rec.reshape(rec.input((H * S, n), f32(z)), S, H, n)))
            return rec.linear(W_o, rec.reshape(y, S * H, n))
        outs.append(c.run(n, build))
        counts.append(c.n_dispatches)
        assert rel_err(outs[-1], ref) < 1e-5
        assert rel_err(c.state(1), ref_state) < 1e-5
        consts = {"VPL4": S * S // 1024, "UQK": 1, "UV": 1, "BETA_UN": 2, "G_ALPHA": 1, "L2": 1, "GATE": 1, "QUANT": 1}
        if fuse and chunked:  # the gate and Q8_0 tail alone (SCAN off) after the two chunked kernels
            assert [k for k, _ in c.kinds] == ["gdn_chunk_prep", "gdn_chunk_scan", "gated_delta", "matvec", "argmax", "argmax"]
            assert c.kinds[0][1] == {"UQK": 1, "UV": 1, "BETA_UN": 2, "G_ALPHA": 1, "L2": 1}
            assert c.kinds[2][1] == consts
        elif fuse:
            assert [k for k, _ in c.kinds] == ["gated_delta", "matvec", "argmax", "argmax"]
            assert c.kinds[0][1] == consts
        elif chunked:
            assert "gdn_chunk_scan" in [k for k, _ in c.kinds]
    assert counts[1] < counts[0] - 5


# -- norms, element-wise ops on views, multi-section rope ----------------------------------------------

def test_norms_on_views(dev, eng):
    """RMSNorm of the strided q half of q|gate heads (Qwen 3.5), a weight over groups
    (Mamba-2's [d, n_group] norm weight), and the L2-norm form."""
    r = rng(5)
    hd, nh, n, eps = 64, 3, 4, 1e-6
    qg = r.standard_normal((n, 2 * hd * nh)).astype(np.float32)
    w = r.standard_normal(hd).astype(np.float32)
    wg = r.standard_normal((nh, hd)).astype(np.float32)
    lib = eng.lib
    gw, gwg = eng.tensor(F32, (hd,), f32(w)), eng.tensor(F32, (hd, nh), f32(wg))

    def qview(g, t):
        return lib.eng_view(g, t, 4, hd, nh, n, 1, 8.0 * hd, 8.0 * hd * nh, 8.0 * hd * nh * n, 0)
    cases = {
        "q_norm": (lambda g, t: lib.eng_mul(g, lib.eng_rms_norm(g, qview(g, t), eps), gw),
                   lambda rec, t, W, WG: rec.rms_norm(rec.split_heads(t, 0, hd, nh, 2 * hd), W, eps)),
        "group_norm": (lambda g, t: lib.eng_mul(g, lib.eng_rms_norm(g, lib.eng_reshape(g, t, hd, 2 * nh, n, 1), eps),
                                                lib.eng_reshape(g, gwg, hd, nh, 1, 1)),
                       None),
        "l2": (lambda g, t: lib.eng_scale(g, lib.eng_rms_norm(g, qview(g, t), eps / hd), 1 / hd ** 0.5),
               lambda rec, t, W, WG: rec.l2_norm(rec.split_heads(t, 0, hd, nh, 2 * hd), eps)),
    }
    c = RCtx(dev)
    W, WG = c.weight(F32, (hd,), f32(w), "w"), c.weight(F32, (hd, nh), f32(wg), "wg")
    for name, (build_ref, build) in cases.items():
        if name == "group_norm":  # [hd, 2 nh, n] rows, the weight repeating every nh rows
            ref = eng.run([(F32, (2 * hd * nh, n), f32(qg))],
                          lambda g, t: lib.eng_mul(g, lib.eng_rms_norm(g, lib.eng_reshape(g, t, hd, nh, 2 * n, 1), eps),
                                                   gwg))
            out = c.run(n, lambda rec: rec.rms_norm(rec.reshape(rec.input((2 * hd * nh, n), f32(qg)), hd, nh, 2 * n),
                                                    WG, eps))
        else:
            ref = eng.run([(F32, (2 * hd * nh, n), f32(qg))], build_ref)
            out = c.run(n, lambda rec: build(rec, rec.input((2 * hd * nh, n), f32(qg)), W, WG))
        assert rel_err(out, ref) < 2e-6, name


@pytest.mark.parametrize("op", ["silu", "sigmoid", "softplus", "gate_mul", "add_view", "mul_head_bcast", "swiglu_view"])
def test_elementwise_on_views(dev, eng, op):
    r = rng(9)
    hd, nh, n = 32, 4, 3
    a = (4 * r.standard_normal((n, 2 * hd * nh))).astype(np.float32)
    a[0, :3] = [25.0, -25.0, 0.0]  # softplus's pass-through edge
    o = r.standard_normal((n, hd * nh)).astype(np.float32)
    dvec = r.standard_normal(nh).astype(np.float32)
    lib = eng.lib
    gd = eng.tensor(F32, (1, nh), f32(dvec))
    c = RCtx(dev)
    D = c.weight(F32, (1, nh), f32(dvec), "D")

    def gview(g, t):  # the second half of each 2*hd head
        return lib.eng_view(g, t, 4, hd, nh, n, 1, 8.0 * hd, 8.0 * hd * nh, 8.0 * hd * nh * n, 4.0 * hd)
    refs = {
        "silu": lambda g, t: lib.eng_unary(g, t, UNARY["silu"]),
        "sigmoid": lambda g, t: lib.eng_unary(g, t, UNARY["sigmoid"]),
        "softplus": lambda g, t: lib.eng_softplus(g, t),
        "gate_mul": lambda g, t, u: lib.eng_mul(g, u, lib.eng_unary(g, lib.eng_reshape(
            g, lib.eng_cont(g, gview(g, t)), hd * nh, n, 1, 1), UNARY["sigmoid"])),
        "add_view": lambda g, t, u: lib.eng_add(g, lib.eng_reshape(g, lib.eng_cont(g, gview(g, t)), hd * nh, n, 1, 1),
                                                u),
        "mul_head_bcast": lambda g, t: lib.eng_mul(g, lib.eng_cont(g, gview(g, t)), gd),
        "swiglu_view": lambda g, t, u: lib.eng_mul(g, lib.eng_unary(g, lib.eng_reshape(
            g, lib.eng_cont(g, gview(g, t)), hd * nh, n, 1, 1), UNARY["silu"]), u),
    }
    inputs = [(F32, (2 * hd * nh, n), f32(a)), (F32, (hd * nh, n), f32(o))]
    ref = eng.run(inputs if op in ("gate_mul", "add_view", "swiglu_view") else inputs[:1], refs[op])

    def build(rec):
        t, u = rec.input((2 * hd * nh, n), f32(a)), rec.input((hd * nh, n), f32(o))
        gv = rec.split_heads(t, hd, hd, nh, 2 * hd)
        flat = rec.reshape(rec.cont(gv), hd * nh, n)
        return {"silu": lambda: rec.silu(t), "sigmoid": lambda: rec.sigmoid(t), "softplus": lambda: rec.softplus(t),
                "gate_mul": lambda: rec.mul(u, rec.sigmoid(flat)), "add_view": lambda: rec.add(flat, u),
                "mul_head_bcast": lambda: rec.mul(rec.cont(gv), D), "swiglu_view": lambda: rec.swiglu(flat, u)}[op]()
    out = c.run(n, build)
    assert rel_err(out, ref) < 2e-6


@pytest.mark.parametrize("sections,n_dims,n_past", [((3, 3, 2, 0), 16, 0), ((11, 11, 10, 0), 64, 150),
                                                    ((2, 1, 1, 0), 16, 3)])
def test_multi_section_rope(dev, eng, sections, n_dims, n_past):
    """Qwen 3.5's interleaved M-RoPE (ggml mode 40) on text positions, partial (n_dims <
    head_dim); (2, 1, 1) leaves sectors to the 4th section (no rotation)."""
    r = rng(n_dims + n_past)
    hd, nh, n = 64, 2, 5
    x = r.standard_normal((n, nh, hd)).astype(np.float32)
    rope = Rope(n_dims=n_dims, neox=True, freq_base=10_000_000.0, n_ctx_orig=4096, sections=sections, multi_mode=40)
    pos = np.concatenate([np.arange(n_past, n_past + n)] * 3 + [np.zeros(n, int)]).astype(np.int32)
    lib = eng.lib
    ref = eng.run([(F32, (hd, nh, n), f32(x)), (I32, (4 * n,), pos.tobytes())],
                  lambda g, xh, ph: lib.eng_rope_multi(g, xh, ph, n_dims, *sections, 40, 4096, rope.freq_base, 1.0, 0.0,
                                                       1.0, 32.0, 1.0))
    c = RCtx(dev)
    out = c.run(n, lambda rec: rec.rope(rec.input((hd, nh, n), f32(x)), rope), n_past=n_past)
    assert rel_err(out, ref) < 2e-6


# -- whole models --------------------------------------------------------------------------------------

N_POS, N_PREFILL = 128, 70
CASES = [(a, t) for a in ("qwen35", "mamba", "mamba2") for t in ("F32", "F16", "Q8_0", "Q4_0", "Q4_K")] + \
        [("falcon-mamba", "F32"), ("falcon-mamba", "Q4_0")]


@pytest.fixture(scope="module")
def device():
    return WgpuDevice()


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _load(arch: str, type_name: str, device, n_ctx: int = 256, exact: bool = True):
    from tools.testmodels import tiny
    path = tiny(arch, type_name)
    model = model_for(read_gguf(str(path)))
    return path, model, WebGPURunner(model, path, n_ctx=n_ctx, device=device, exact=exact)


@pytest.mark.parametrize("arch,type_name", CASES)
def test_forced_decoding_agrees_with_ggml(device, arch, type_name):
    _forced_decoding(device, arch, type_name, exact=True)


@pytest.mark.parametrize("type_name,exact", [("F32", False), ("Q8_0", False), ("F32", True), ("F16", True),
                                             ("Q8_0", True), ("Q4_0", True), ("Q4_K", True)])
def test_qwen35_chunked_prefill_agrees_with_ggml(device, type_name, exact):
    """The chunked Gated DeltaNet prefill (70 tokens: two whole 32-token chunks and a part of
    a third), then 58 decode steps from the state it left, against ggml. The chunked form is
    the fast mode's (exact=False); with exact=True the runner is told to take it while every
    other op keeps ggml's arithmetic, so the chunked kernels are what is measured (in fast
    mode on the quantized models, last-bit differences flip near-tie tokens either way: fast
    mode alone, sequential delta rule, reaches 0.984 top-1 on Q4_0)."""
    gpu = _forced_decoding(device, "qwen35", type_name, exact=exact, chunked=True)
    kinds = [d.kernel for d in gpu.recorder(N_PREFILL, N_PREFILL).disp]
    assert kinds.count("gdn_chunk_scan") == kinds.count("gdn_chunk_prep") == sum(gpu.model.recurrent)
    assert "gdn_chunk_scan" not in [d.kernel for d in gpu.recorder(1, 1).disp]


def _forced_decoding(device, arch: str, type_name: str, exact: bool, chunked: bool | None = None) -> WebGPURunner:
    path, model, gpu = _load(arch, type_name, device, exact=exact)
    if chunked is not None:
        gpu.gdn_chunked = chunked
    ref = GGMLRunner(model, path, n_ctx=256)
    vocab = model.hp.n_vocab
    tokens = np.random.default_rng(7).integers(3, vocab, N_POS).tolist()
    ref.eval(tokens[:N_PREFILL], all_logits=True)
    gpu.eval(tokens[:N_PREFILL], all_logits=True)
    a = np.stack([np.asarray(ref.logits(i)) for i in range(N_PREFILL)])
    b = np.stack([np.asarray(gpu.logits(i)) for i in range(N_PREFILL)])
    assert b.shape == (N_PREFILL, vocab)
    tops_ref, tops_gpu = list(a.argmax(1)), list(b.argmax(1))
    coss = [_cos(a[i], b[i]) for i in range(N_PREFILL)]
    for t in tokens[N_PREFILL:]:
        ref.eval([t])
        gpu.eval([t])
        la, lb = np.asarray(ref.logits()), np.asarray(gpu.logits())
        coss.append(_cos(la, lb))
        tops_ref.append(ref.argmax())
        tops_gpu.append(gpu.argmax())
        assert tops_gpu[-1] == int(lb.argmax())
    agree = sum(x == y for x, y in zip(tops_ref, tops_gpu)) / N_POS
    assert len(coss) == N_POS
    assert min(coss) >= 0.999, f"min cosine {min(coss):.6f} at position {int(np.argmin(coss))}"
    assert agree >= 0.99, f"top-1 agreement {agree:.3f}"
    assert gpu.stats["recorded"] == 2 and gpu.stats["steps"] == 1 + N_POS - N_PREFILL
    print(f"{arch} {type_name}{'' if exact else ' (fast)'}{' chunked' if gpu.gdn_chunked else ''}: top-1 {agree:.3f}, min cos {min(coss):.6f} "
          f"(prefill {min(coss[:N_PREFILL]):.6f}), {gpu.last.n_dispatches} dispatches/token")
    return gpu


@pytest.mark.parametrize("arch", ["qwen35", "mamba2"])
def test_reset_truncate_and_snapshots(device, arch):
    """reset() clears the recurrent state; truncate() refuses a partial rollback (as
    GGMLRunner); a snapshot restores the state exactly (what app.generate's Sequence uses
    to regenerate a turn); generate_greedy matches eval + argmax."""
    _, _, gpu = _load(arch, "Q4_0", device, n_ctx=128)
    prompt = [5, 6, 7, 8, 9, 10]
    gpu.eval(prompt)
    first = np.asarray(gpu.logits())
    snap = gpu.save_state()
    gpu.eval([11])
    after = np.asarray(gpu.logits())
    gpu.eval([12, 13])
    with pytest.raises(ValueError, match="recurrent"):
        gpu.truncate(3)
    gpu.truncate(gpu.n_past)  # a no-op is fine
    gpu.reset()
    gpu.eval(prompt)
    assert np.array_equal(np.asarray(gpu.logits()), first)
    gpu.eval([40, 41, 42])
    gpu.load_state(snap)
    assert gpu.n_past == len(prompt)
    gpu.eval([11])
    assert np.array_equal(np.asarray(gpu.logits()), after)
    seq = []
    for _ in range(8):
        gpu.eval([gpu.argmax()])
        seq.append(gpu.argmax())
    gpu.load_state(snap)
    gpu.eval([11])
    assert gpu.generate_greedy(8) == seq
    from app.backends.webgpu.recurrent_state import SnapshotError
    with pytest.raises(SnapshotError, match="checksum"):
        gpu.load_state(snap[:-1] + bytes([snap[-1] ^ 1]))


@pytest.mark.parametrize("arch", ["qwen35", "mamba"])
def test_padded_prompt_advances_state_by_real_tokens(device, arch):
    """A 37-token prompt runs on the 48-token recording: the padding must not reach the
    conv or scan state (the next step's logits match an exact-length prefill)."""
    _, _, gpu = _load(arch, "Q8_0", device, n_ctx=128)
    prompt = list(range(5, 42))
    gpu.eval(prompt)  # padded
    padded = np.asarray(gpu.logits())
    gpu.eval([7])
    after = np.asarray(gpu.logits())
    assert (48, 1) in gpu.buckets
    gpu.reset()
    gpu.eval(prompt, all_logits=True)  # exact length
    assert _cos(padded, np.asarray(gpu.logits(len(prompt) - 1))) > 0.99999
    gpu.eval([7])
    assert _cos(after, np.asarray(gpu.logits())) > 0.99999


def _ssm_states(gpu) -> np.ndarray:
    return np.concatenate([np.frombuffer(bytes(gpu.device.read(st.ssm, 0, st.ssm_bytes)), np.float32)
                           for st in gpu.states if st is not None])


def test_chunked_prefill_state_continues_in_decode_and_snapshots(device):
    """Fast mode (chunked delta rule): a 45-token prompt on the 48-token recording (chunks of
    32: the real tokens end inside the second) leaves the state the sequential kernel leaves,
    decode continues from it alike, the exact-length prefill agrees with the padded one, and
    a snapshot taken after the chunked prefill restores the state exactly."""
    _, _, gpu = _load("qwen35", "F32", device, n_ctx=128, exact=False)
    _, _, seq = _load("qwen35", "F32", device, n_ctx=128, exact=False)
    seq.gdn_chunked = False
    prompt = list(range(5, 50))
    for r in (gpu, seq):
        r.eval(prompt)
    assert "gdn_chunk_scan" in [d.kernel for d in gpu.recorder(48, 1).disp]
    assert "gdn_chunk_scan" not in [d.kernel for d in seq.recorder(48, 1).disp]
    assert rel_err(_ssm_states(gpu), _ssm_states(seq)) < 1e-5
    first = np.asarray(gpu.logits())
    assert _cos(first, np.asarray(seq.logits())) > 0.999999
    snap = gpu.save_state()
    for t in (7, 8, 9, 10):
        gpu.eval([t])
        seq.eval([t])
        assert _cos(np.asarray(gpu.logits()), np.asarray(seq.logits())) > 0.999999
    after = np.asarray(gpu.logits())
    gpu.load_state(snap)
    assert gpu.n_past == len(prompt)
    for t in (7, 8, 9, 10):
        gpu.eval([t])
    assert np.array_equal(np.asarray(gpu.logits()), after)
    gpu.reset()
    gpu.eval(prompt, all_logits=True)  # exact length: 45 tokens recorded as they are
    assert "gdn_chunk_scan" in [d.kernel for d in gpu.recorder(45, 45).disp]
    assert _cos(first, np.asarray(gpu.logits(len(prompt) - 1))) > 0.999999


def test_qwen35_decode_dispatches(device):
    """A Gated DeltaNet layer's decode step is 9 dispatches: norm (+Q8_0), the qkv/z/beta/alpha
    products in one, conv, delta rule (+ decay, beta, L2 norms, gated norm, Q8_0 folded in),
    output product (+residual), the FFN's four; a gated attention layer 12."""
    _, model, gpu = _load("qwen35", "Q4_0", device)
    kinds = [d.kernel for d in gpu.recorder(1, 1).disp]
    assert kinds.count("gated_delta") == kinds.count("ssm_conv") == sum(model.recurrent)
    layers, cur = [], []
    for k in kinds[1:-4]:  # between the embedding and the output norm, product and argmax (two passes)
        if k == "rms_norm" and cur and cur.count("rms_norm") == 2:
            layers.append(cur)
            cur = []
        cur.append(k)
    layers.append(cur)
    ffn = ["rms_norm", "matvec", "quantize", "matvec"]
    deltanet = ["rms_norm", "matvec_multi4", "ssm_conv", "gated_delta", "matvec"] + ffn
    attention = ["rms_norm", "matvec_multi", "rec_norm", "rope_store", "attention_split", "attention_combine",
                 "rec_eltwise", "matvec"] + ffn
    assert layers == [deltanet if r else attention for r in model.recurrent]



@pytest.mark.parametrize("n", [1, 3, 40])
def test_product_of_a_view_quantizes_in_the_elementwise_pass(dev, eng, n):
    """linear(W, silu(split(x))) with a Q8_0 weight: the view's materialization writes the
    Q8_0 activations itself (one dispatch fewer) and matches ggml's product."""
    from test_webgpu_kernels import Q8_0, quantize
    r = rng(n)
    k, n_out = 64, 48
    x = r.standard_normal((n, 2 * k)).astype(np.float32)
    wb = quantize(r.standard_normal((n_out, k)).astype(np.float32) / 8, Q8_0)
    lib = eng.lib
    gw = eng.tensor(Q8_0, (k, n_out), wb, 1)
    ref = eng.run([(F32, (2 * k, n), f32(x))], lambda g, xh: lib.eng_mul_mat(g, gw, lib.eng_unary(
        g, lib.eng_cont(g, lib.eng_view(g, xh, 2, k, n, 1, 1, 8.0 * k, 8.0 * k * n, 0, 0)), UNARY["silu"])))
    for fuse in (False, True):
        c = RCtx(dev, fuse=fuse)
        W = c.weight(Q8_0, (k, n_out), wb)
        out = c.run(n, lambda rec: rec.linear(W, rec.silu(rec.split(rec.input((2 * k, n), f32(x)), 0, k))))
        assert rel_err(out, ref) < 2e-6
        assert [kind for kind, _ in c.kinds].count("quantize") == (0 if fuse else 1)


def test_q_and_k_head_norms_share_a_dispatch(dev, eng):
    """Qwen 3.5's per-head RMSNorms of q (a strided view) and k (plain heads), each with its
    own weight, recorded one after the other: one DUAL rec_norm computes both."""
    r = rng(13)
    hd, nh, nkv, n, eps = 64, 4, 2, 3, 1e-6
    qg = r.standard_normal((n, 2 * hd * nh)).astype(np.float32)
    k = r.standard_normal((n, hd * nkv)).astype(np.float32)
    wq, wk = r.standard_normal(hd).astype(np.float32), r.standard_normal(hd).astype(np.float32)
    lib = eng.lib
    gwq, gwk = eng.tensor(F32, (hd,), f32(wq)), eng.tensor(F32, (hd,), f32(wk))

    def build_ref(g, qh, kh):
        qv = lib.eng_view(g, qh, 4, hd, nh, n, 1, 8.0 * hd, 8.0 * hd * nh, 8.0 * hd * nh * n, 0)
        qn = lib.eng_mul(g, lib.eng_rms_norm(g, qv, eps), gwq)
        kn = lib.eng_mul(g, lib.eng_rms_norm(g, lib.eng_reshape(g, kh, hd, nkv, n, 1), eps), gwk)
        return lib.eng_concat(g, lib.eng_reshape(g, qn, hd * nh * n, 1, 1, 1),
                              lib.eng_reshape(g, kn, hd * nkv * n, 1, 1, 1), 0)
    ref = eng.run([(F32, (2 * hd * nh, n), f32(qg)), (F32, (hd * nkv, n), f32(k))], build_ref)
    c = RCtx(dev)
    WQ, WK = c.weight(F32, (hd,), f32(wq), "wq"), c.weight(F32, (hd,), f32(wk), "wk")
    outs = {}

    def build(rec):
        qn = rec.rms_norm(rec.split_heads(rec.input((2 * hd * nh, n), f32(qg)), 0, hd, nh, 2 * hd), WQ, eps)
        kn = rec.rms_norm(rec.heads(rec.input((hd * nkv, n), f32(k)), hd), WK, eps)
        outs["q"] = rec.keep(qn)
        return kn
    out_k = c.run(n, build)
    assert [kind for kind, _ in c.kinds] == ["rec_norm", "argmax", "argmax"] and c.kinds[0][1]["DUAL"] == 1
    out_q = np.frombuffer(bytes(dev.read(outs["q"].st.buf, 0, outs["q"].st.nbytes)), np.float32)
    assert rel_err(np.concatenate([out_q, out_k]), ref) < 2e-6


@pytest.mark.parametrize("type_name", ["Q4_0", "Q8_0", "F16"])
def test_four_products_of_one_input_in_one_dispatch(dev, eng, type_name):
    """Qwen 3.5's qkv, z, beta and alpha projections of one normed input: the recorder puts
    the four single-token products in one matvec_multi4 dispatch; each matches ggml's."""
    from test_webgpu_kernels import F16, Q4_0, Q8_0, quantize
    type_id = {"Q4_0": Q4_0, "Q8_0": Q8_0, "F16": F16}[type_name]
    r = rng(31)
    k, outs_n = 256, (96, 64, 4, 4)
    x = r.standard_normal((1, k)).astype(np.float32)
    ws = [quantize((r.standard_normal((m, k)) / 16).astype(np.float32), type_id) for m in outs_n]
    lib = eng.lib
    refs = []
    for wb, m in zip(ws, outs_n):
        h = eng.tensor(type_id, (k, m), wb, 1)
        refs.append(eng.run([(F32, (k, 1), f32(x))], lambda g, xh, h=h: lib.eng_mul_mat(g, h, xh)))
    c = RCtx(dev)
    W = [c.weight(type_id, (k, m), wb, f"w{i}") for i, (wb, m) in enumerate(zip(ws, outs_n))]
    kept = []

    def build(rec):
        xt = rec.input((k, 1), f32(x))
        ys = [rec.linear(w, xt) for w in W]
        kept.extend(rec.keep(y) for y in ys[:3])
        return ys[3]
    last = c.run(1, build)
    assert [kind for kind, _ in c.kinds].count("matvec_multi4") == 1
    assert "matvec" not in [kind for kind, _ in c.kinds]
    got = [np.frombuffer(bytes(dev.read(*t.st.span())), np.float32) for t in kept] + [last]  # (slices of one buffer)
    for a, b in zip(got, refs):
        assert rel_err(a, b) < 2e-6
