"""The recurrent part of the op vocabulary on WebGPU: Mamba-1/2 and Qwen 3.5's Gated DeltaNet.

`RecurrentRecorder` extends graph.StepRecorder with the ops app/ops.py lists under
"recurrent layers". Views (split, split_heads, reshape, cont of a view) and unary ops
(silu, sigmoid, softplus) cost nothing when recorded: they give a `View`, which the
recurrent kernels and rec_eltwise.wgsl read through a map (rec_view.wgsl) with the unary op
applied on read; any other op gets the view materialized first (one rec_eltwise pass).
After recording, recurrent_fuse folds neighbours into the scan kernels (conv bias and
activation, Qwen 3.5's decay, beta's sigmoid, the q/k L2 norms, the gated output norm and
its Q8_0 quantization; Mamba's D skip and silu(z) gate), so a Gated DeltaNet layer's
mixer is a conv and one delta-rule dispatch. In the fast mode (ctx.gdn_chunked) a step of
more than GDN_CHUNK tokens then takes the chunked delta rule instead (`_lower`: three
dispatches, gdn_chunk_prep.wgsl's header has the algebra).

The layers' state buffers and snapshots: recurrent_state.py.
"""
from __future__ import annotations

import struct
from typing import Any

from .graph import F32, Dispatch, PARAMS, Storage, StepRecorder, T, Weight, _cdiv, _grid, share_buffer
from .recurrent_fuse import GDN_HEAD, GDN_PW, NONE, SIGMOID, SILU, SOFTPLUS, fuse_multi4, fuse_recurrent
from .recurrent_state import LayerState

MAX_CONV = 8  # d_conv the conv kernel holds in registers
CONV_TOKENS = 32  # tokens a conv thread computes (ssm_conv.wgsl's TB)
MAX_SCAN_STATE = 128  # d_state the scan kernel holds in registers
NMAX = 512  # tokens a step the delta-rule kernel keeps per-token scales for (the runner's batch)
GDN_CHUNK = 32  # tokens a chunk of the chunked delta rule (gdn_chunk_prep.wgsl's C)
GDN_JB = 16  # state columns a gdn_chunk_scan workgroup carries


class View(T):
    """A tensor read through a map from its logical flat index i to a buffer element:
    off + i % ne0 + (i // ne0 % ne1) * nb1 + i // (ne0 * ne1) * nb2, then `un` applied."""
    __slots__ = ("off", "ne0", "ne1", "nb1", "nb2", "un")

    def __init__(self, shape: tuple[int, ...], st: Storage, off: int, ne0: int, ne1: int, nb1: int, nb2: int,
                 un: int = NONE) -> None:
        super().__init__(shape, st)
        self.off, self.ne0, self.ne1, self.nb1, self.nb2, self.un = off, ne0, ne1, nb1, nb2, un

    @property
    def flat(self) -> bool:
        """The map is off + i."""
        n = self.numel
        return self.ne0 >= n or (self.nb1 == self.ne0 and (self.ne0 * self.ne1 >= n or self.nb2 == self.ne0 * self.ne1))

    def __repr__(self) -> str:
        return f"View{self.shape}(off={self.off}, {self.ne0}, {self.ne1}, {self.nb1}, {self.nb2}, un={self.un})"


def _vmap(x: T) -> tuple[int, int, int, int, int]:
    """(off, ne0, ne1, nb1, nb2) of any tensor: a plain T is the identity."""
    if isinstance(x, View):
        return x.off, x.ne0, x.ne1, x.nb1, x.nb2
    return 0, x.numel, 1, 0, 0


def _un(x: Any) -> int:
    return x.un if isinstance(x, View) else NONE


class RecurrentRecorder(StepRecorder):
    """StepRecorder plus the recurrent ops; the runner uses it for models with recurrent layers."""

    def __init__(self, ctx: Any, n_tokens: int, n_outputs: int) -> None:
        super().__init__(ctx, n_tokens, n_outputs)
        self.dummy_rw = self.dev.buffer(16, "dummy_rw")  # an unused writable binding (no aliasing with `dummy`)

    def _fuse(self) -> None:
        self.disp = fuse_recurrent(self.disp)
        super()._fuse()
        self.disp = fuse_multi4(self.disp)

    def _lower(self) -> None:
        """The chunked delta rule (ctx.gdn_chunked, the fast mode's prefill) for steps of more
        than one chunk: each gated_delta dispatch (with whatever was fused into it) becomes
        gdn_chunk_prep (the intra-chunk terms of every chunk at once), gdn_chunk_scan (the
        state across the chunks) and, with GATE, gated_delta's gate/Q8_0 tail alone."""
        if not getattr(self.ctx, "gdn_chunked", False) or self.n_tokens <= GDN_CHUNK:
            return
        out = []
        for d in self.disp:
            if d.kernel == "gated_delta" and d.consts.get("SCAN", True):
                out.extend(self._chunked(d))
            else:
                out.append(d)
        self.disp = out

    def _chunked(self, d: Dispatch) -> list[Dispatch]:
        u = struct.unpack("<20I2f2I", d.params[:GDN_HEAD])
        S, H, n = u[12], u[13], u[15]
        nc = _cdiv(n, GDN_CHUNK)
        # scratch: [H][chunks][5][C][S] floats (Kd, Qt, W, Ut, Ot), then exp(gam_C) as vec4s
        x = Storage(16 * (H * nc * 5 * GDN_CHUNK * S // 4 + H * nc), "gdn_chunks")
        q, k, v, g, beta, ssm, o, params, step, z = d.res
        prep = Dispatch("gdn_chunk_prep", {c: d.consts[c] for c in ("UQK", "UV", "BETA_UN", "G_ALPHA", "L2")},
                        d.params, [q, k, v, g, beta, x, PARAMS, step], (H, nc, 1), x)
        scan = Dispatch("gdn_chunk_scan", {}, d.params, [x, ssm, o, PARAMS, step], (H, S // GDN_JB, 1), o)
        out = [prep, scan]
        if d.consts["GATE"]:
            out.append(Dispatch("gated_delta", dict(d.consts, SCAN=False), d.params, list(d.res),
                                (H, _cdiv(n, GDN_CHUNK), 1), d.out))
        return out

    # -- views ----------------------------------------------------------------------------------

    def _dense(self, x: Any) -> Any:
        """x as a plain contiguous T (one rec_eltwise pass for a real view)."""
        if not isinstance(x, View):
            return x
        if x.un == NONE and x.off == 0 and x.flat and 4 * x.numel == x.st.nbytes:
            return T(x.shape, x.st)
        return self._ew(0, x, None)

    def _flat_source(self, x: Any) -> tuple[Storage, int, int]:
        """(storage, offset, unary) of a tensor whose map is off + i (views of views are
        materialized first)."""
        if isinstance(x, View) and not x.flat:
            x = self._dense(x)
        if isinstance(x, View):
            return x.st, x.off, x.un
        return x.st, 0, NONE

    def reshape(self, x: Any, *shape: int) -> Any:
        n = 1
        for d in shape:
            n *= d
        if n != x.numel:
            raise ValueError(f"reshape of {x.shape} to {shape}: {x.numel} != {n} elements")
        if isinstance(x, View):
            return View(tuple(shape), x.st, x.off, x.ne0, x.ne1, x.nb1, x.nb2, x.un)
        return T(tuple(shape), x.st)

    def cont(self, x: Any) -> Any:
        return x  # views are materialized where an op needs contiguous memory

    def heads(self, x: Any, head_dim: int) -> Any:
        d = x.shape[0]
        return self.reshape(x, head_dim, d // head_dim, x.numel // d)

    def split(self, x: Any, offset: int, size: int) -> View:
        d = x.shape[0]
        st, off, un = self._flat_source(x)
        n = x.numel // d
        return View((size, n), st, off + offset, size, n, d, 0, un)

    def split_heads(self, x: Any, offset: int, head_dim: int, n_heads: int, head_stride: int = 0) -> View:
        d = x.shape[0]
        st, off, un = self._flat_source(x)
        n = x.numel // d
        return View((head_dim, n_heads, n), st, off + offset, head_dim, n_heads, head_stride or head_dim, d, un)

    # -- element-wise -----------------------------------------------------------------------------

    def _unary(self, x: Any, op: int) -> View:
        if isinstance(x, View) and x.un != NONE:
            x = self._dense(x)
        o, ne0, ne1, nb1, nb2 = _vmap(x)
        return View(x.shape, x.st, o, ne0, ne1, nb1, nb2, op)

    def silu(self, x: Any) -> View:
        return self._unary(x, SILU)

    def sigmoid(self, x: Any) -> View:
        return self._unary(x, SIGMOID)

    def softplus(self, x: Any) -> View:
        return self._unary(x, SOFTPLUS)

    @staticmethod
    def _vparams(x: Any) -> tuple[int, ...]:
        if isinstance(x, Weight):
            return 0, x.shape[0] * x.n_rows, 1, 0, 0
        return _vmap(x)

    def _ew(self, op: int, a: Any, b: Any, ub: int | None = None, ua: int | None = None) -> T:
        """rec_eltwise: y = UA(a) (op) UB(b), b broadcast by wrapping; op 0 copies a."""
        y = self._new(a.shape, "rec_ew")
        va = self._vparams(a)
        if b is None:
            vb, nb, bres = va, a.numel, a.st
        else:
            vb = self._vparams(b)
            nb = b.numel if isinstance(b, T) else b.shape[0] * b.n_rows
            bres = b if isinstance(b, Weight) else b.st
        if a.numel % nb:
            raise ValueError(f"cannot broadcast {nb} elements over {a.shape}")
        consts = {"BIN": op, "UA": _un(a) if ua is None else ua,
                  "UB": (_un(b) if ub is None else ub) if b is not None else 0, "QUANT": False}
        bdiv = 1
        if isinstance(b, Weight) and b.shape[0] == 1 and b.n_rows > 1 and a.shape[0] > 1:
            bdiv = a.shape[0]  # b [1, m] over a [d, m, ...] (Mamba-2's D per head)
            if a.shape[1] != b.n_rows:
                raise ValueError(f"cannot broadcast {b.name} {b.shape} over {a.shape}")
        params = struct.pack("<16I", va[0], va[1], va[2], va[3], vb[0], vb[1], vb[2], vb[3], va[4], vb[4], a.numel, nb,
                             bdiv, 0, 0, 0)
        self._add("rec_eltwise", consts, params, [a.st, bres, y.st], _grid(_cdiv(a.numel, 256)), extra=[self.dummy_rw])
        return y

    def _binary(self, op: int, a: Any, b: Any, plain) -> T:
        if isinstance(a, Weight) or self._numel(b) > self._numel(a):
            a, b = b, a
        if not isinstance(a, View) and not isinstance(b, View):
            return plain(a, b)
        return self._ew(op, a, b)

    def add(self, a: Any, b: Any) -> T:
        return self._binary(1, a, b, super().add)

    def mul(self, a: Any, b: Any) -> T:
        return self._binary(2, a, b, super().mul)

    def swiglu(self, gate: Any, up: Any) -> T:
        if not isinstance(gate, View) and not isinstance(up, View):
            return super().swiglu(gate, up)
        if isinstance(gate, View) and gate.un != NONE:
            gate = self._dense(gate)
        return self._ew(2, gate, up, ua=SILU)

    def scale(self, x: Any, s: float) -> T:
        return super().scale(self._dense(x), s)

    def tanh(self, x: Any) -> T:
        return super().tanh(self._dense(x))

    def geglu(self, gate: Any, up: Any) -> T:
        return super().geglu(self._dense(gate), self._dense(up))

    # -- ops that need contiguous inputs ------------------------------------------------------------

    def linear(self, w: Weight, x: Any, bias: Any = None) -> T:
        return super().linear(w, self._dense(x), bias)

    def rope(self, x: Any, rope, freq_factors: Weight | None = None) -> T:
        return super().rope(self._dense(x), rope, freq_factors)

    def attention(self, layer: int, q: Any, k: Any, v: Any, scale: float, window: int = 0, softcap: float = 0.0) -> T:
        return super().attention(layer, self._dense(q), self._dense(k), self._dense(v), scale, window, softcap)

    def output_rows(self, x: Any) -> T:
        return super().output_rows(self._dense(x))

    def finish(self, logits: Any) -> None:
        super().finish(self._dense(logits))

    # -- norms -------------------------------------------------------------------------------------

    def _norm(self, x: Any, weight: Weight | None, eps: float, post: float) -> T:
        d = x.shape[0]
        rows = x.numel // d
        y = self._new(x.shape, "rec_norm")
        o, ne0, ne1, nb1, nb2 = _vmap(x)
        wl = weight.shape[0] * weight.n_rows if weight is not None else 1
        self._add("rec_norm", {"HAS_W": weight is not None, "UA": _un(x), "DUAL": False},
                  struct.pack("<8I2f2I8I", o, ne0, ne1, nb1, d, rows, nb2, wl, eps, post, rows, 0, *([0] * 8)),
                  [x.st, weight if weight is not None else x.st, y.st], _grid(_cdiv(rows, 8)),
                  extra=[self.dummy, self.dummy, self.dummy_rw])
        return y

    def rms_norm(self, x: Any, weight: Weight | None, eps: float) -> T:
        per_head = len(x.shape) == 3 and x.shape[1] > 1  # (rec_norm: 8 rows a workgroup, pairs q and k)
        whole = weight is None or weight.shape[0] * weight.n_rows == x.shape[0]
        if not isinstance(x, View) and not per_head and whole:
            return super().rms_norm(x, weight, eps)
        if weight is not None and (weight.shape[0] * weight.n_rows) % x.shape[0]:
            raise ValueError(f"rms_norm weight {weight.name} of {weight.shape} does not tile rows of {x.shape[0]}")
        return self._norm(x, weight, eps, 1.0)

    def l2_norm(self, x: Any, eps: float) -> T:
        d = x.shape[0]
        return self._norm(x, None, eps / d, 1.0 / d ** 0.5)  # ggml's rms_norm(eps / d) * 1/sqrt(d) form

    # -- recurrent layers ---------------------------------------------------------------------------

    def _state(self, layer: int) -> LayerState:
        st = self.ctx.states[layer]
        if st is None:
            raise ValueError(f"layer {layer} has no recurrent state")
        return st

    def causal_conv(self, layer: int, x: Any, kernel: Weight) -> T:
        d_conv, channels = kernel.shape[0], kernel.n_rows
        if x.shape[0] != channels:
            raise ValueError(f"causal_conv layer {layer}: {x.shape[0]} input channels, kernel has {channels}")
        if not 2 <= d_conv <= MAX_CONV:
            raise ValueError(f"causal_conv layer {layer}: d_conv {d_conv} is not supported (2..{MAX_CONV})")
        if kernel.type != F32:
            raise ValueError(f"{kernel.name}: the conv kernel must be F32 (as ggml_ssm_conv reads it)")
        st = self._state(layer)
        n = x.numel // channels
        y = self._new((channels, n), "conv")
        o, ne0, ne1, nb1, nb2 = _vmap(x)
        self._add("ssm_conv", {"UA": _un(x), "BIAS": False, "ACT": NONE},
                  struct.pack("<8I", o, ne0, ne1, nb1, nb2, channels, d_conv, n),
                  [x.st, kernel, st.conv, y.st], (_cdiv(channels, 64), _cdiv(n, CONV_TOKENS), 1),
                  extra=[self.step_buf, self.dummy])
        return y

    def selective_scan(self, layer: int, x: Any, dt: Any, A: Weight, B: Any, C: Any) -> T:
        st = self._state(layer)
        d_state = B.shape[0]
        if d_state > MAX_SCAN_STATE:
            raise ValueError(f"selective_scan layer {layer}: d_state {d_state} > {MAX_SCAN_STATE} is not supported")
        if A.type != F32:
            raise ValueError(f"{A.name}: A must be F32")
        mamba2 = A.shape[0] == 1
        if mamba2:  # x [head_dim, n_head, n], dt [n_head, n], B/C [d_state, n_group, n]
            hd, nh = x.shape[0], x.shape[1]
            ng = B.shape[1]
        else:  # x [d_inner, n], dt [d_inner, n], B/C [d_state, 1, n]
            hd, nh, ng = 1, x.shape[0], 1
        if nh % ng:
            raise ValueError(f"selective_scan layer {layer}: {nh} heads do not split into {ng} groups")
        n = self.n_tokens
        dt = self._dense(dt)
        B, C = self._one_buffer(B, C)
        y = self._new((hd, nh, n) if mamba2 else (nh, n), "scan")
        vx, vb, vc = _vmap(x), _vmap(B), _vmap(C)
        params = struct.pack("<28I", *vx[:4], vb[0] + B.st.word, *vb[1:4], vc[0] + C.st.word, *vc[1:4], 0, 1, 1, 0,
                             d_state, hd, nh, ng, n, vx[4], vb[4], vc[4], 0, 0, 0, 0)
        self._add("ssm_scan", {"MAMBA2": mamba2, "UX": _un(x), "UBC": _un(B), "SKIP": False, "GATE": False}, params,
                  [x.st, dt.st, A, B.st.root, st.ssm, y.st], _grid(_cdiv(hd * nh, 64)),
                  extra=[self.step_buf, self.dummy, self.dummy])
        return y

    def _one_buffer(self, a: Any, b: Any) -> tuple[Any, Any]:
        """a and b (read with one unary op) in one buffer, for a kernel that reads both
        through one binding: views of one tensor already are (Mamba's B and C of x_db or
        xBC); else they become slices of a new buffer (Falcon-Mamba's separately normed B
        and C), copied first where their storage already has a buffer."""
        if _un(a) != _un(b):
            a, b = self._dense(a), self._dense(b)
        if a.st.root is b.st.root:
            return a, b
        a, b = (x if x.st.sliceable else self._ew(0, x, None) for x in (a, b))
        if _un(a) != _un(b):  # one was copied with its unary op applied
            a, b = self._ew(0, a, None) if _un(a) else a, self._ew(0, b, None) if _un(b) else b
        share_buffer([a.st, b.st], "bc")
        return a, b

    def gated_delta_rule(self, layer: int, q: Any, k: Any, v: Any, gate: Any, beta: Any) -> T:
        st = self._state(layer)
        S, H, n = v.shape[0], v.shape[1], self.n_tokens
        Hk = q.shape[1]
        if q.shape[0] != S or k.shape[0] != S or k.shape[1] != Hk or H % Hk:
            raise ValueError(f"gated_delta_rule layer {layer}: q {q.shape}, k {k.shape}, v {v.shape} do not match")
        if S * S % 1024 or S > 128:
            raise ValueError(f"gated_delta_rule layer {layer}: head size {S} is not supported (32, 64 or 128)")
        if n > NMAX:
            raise ValueError(f"gated_delta_rule: {n} tokens a step (at most {NMAX})")
        # the kernel reads a head's S values contiguously from where its view puts the head's start
        q, k, v = (x if _vmap(x)[1] % S == 0 else self._dense(x) for x in (q, k, v))
        if _un(q) != _un(k):
            q, k = self._dense(q), self._dense(k)
        gate = self._dense(gate)
        beta_un = _un(beta)
        if isinstance(beta, View) and not beta.flat or isinstance(beta, View) and beta.off:
            beta, beta_un = self._dense(beta), NONE
        y = self._new((S, H, n), "gdn")
        vq, vk, vv = _vmap(q), _vmap(k), _vmap(v)
        params = struct.pack("<12I8I2f2I", *vq[:4], *vk[:4], *vv[:4], S, H, Hk, n, vq[4], vk[4], vv[4], 0,
                             0.0, 0.0, 0, 0) + bytes(4 * GDN_PW)  # (+ the small weights the fusions fold in)
        self._add("gated_delta", {"VPL4": S * S // 1024, "UQK": _un(q), "UV": _un(v), "BETA_UN": beta_un,
                                  "G_ALPHA": False, "L2": False, "GATE": False, "QUANT": False}, params,
                  [q.st, k.st, v.st, gate.st, beta.st, st.ssm, y.st], (H, 1, 1), extra=[self.step_buf, self.dummy])
        return y
