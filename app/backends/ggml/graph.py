"""The op vocabulary (app/ops.py) on the engine: each call adds ggml nodes to a graph.

A `StepGraph` is one forward pass for a fixed shape bucket (n_tokens new tokens, n_kv
cache cells visible). Its inputs (token ids, positions, cache slots, masks, output rows)
are engine tensors refilled before each compute, so the graph is built once per bucket
and re-run. Node order follows llama.cpp's graph builders, so ggml fuses and schedules
the same way and results are bit-identical.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...ops import Rope
from .library import GLU, UNARY, Library

F32, F16, I32, I64 = 0, 1, 26, 27


@dataclass
class LayerCache:
    k: int  # engine tensor [n_embd_k_gqa, kv_size] (F16)
    v: int  # engine tensor [n_embd_v_gqa, kv_size] (F16)
    head_dim_k: int
    head_dim_v: int
    n_head_kv: int
    window: int


@dataclass
class RecurrentState:
    """Per-layer state of a recurrent layer (persistent F32 pool tensors, one sequence)."""
    conv: int  # [(d_conv - 1) * channels, 1]: the last d_conv - 1 inputs of the causal conv
    ssm: int  # [state elements, 1]: Mamba's h or Gated DeltaNet's S


def _row(type_size: int, n: int) -> float:
    return float(type_size * n)


class StepGraph:
    """Implements app.ops.Ops for one bucket; `logits` is the output tensor."""

    def __init__(self, lib: Library, eng: int, caches: list[LayerCache | None], kv_size: int,
                 n_tokens: int, n_kv: int, n_outputs: int, max_nodes: int = 8192,
                 states: list[RecurrentState | None] | None = None) -> None:
        self.lib, self.n_tokens, self.n_kv, self.n_outputs = lib, n_tokens, n_kv, n_outputs
        self.caches, self.kv_size = caches, kv_size
        self.states = states or []
        self.g = lib.check(lib.eng_graph_new(eng, max_nodes), "graph")
        has_kv = any(c is not None for c in caches)
        self.tokens = self._input(I32, n_tokens)
        # inputs a graph does not use stay None (recurrent models have no positions or KV slots)
        self.pos: int | None = None  # created by the first rope()
        self.pos_multi: int | None = None  # [4 * n_tokens] positions of multi-section RoPE
        self.kv_idx: int | None = self._input(I64, n_tokens) if has_kv else None
        self.masks: dict[int, int] = {}  # window -> mask tensor ([n_kv, n_tokens] F16)
        for window in sorted({c.window for c in caches if c is not None}):
            self.masks[window] = self._input(F16, n_kv, n_tokens)
        self.out_ids = self._input(I32, n_outputs)
        self.state_ids: int | None = None  # [1] I32: which state row a scan reads (always 0)
        self.logits: int | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def _check(self, h: int, what: str) -> int:
        return self.lib.check(h, what)

    def _input(self, type_: int, ne0: int, ne1: int = 1) -> int:
        return self._check(self.lib.eng_input(self.g, type_, ne0, ne1, 1, 1), "input")

    def _expand(self, t: int) -> None:
        self._check(self.lib.eng_graph_expand(self.g, t), "expand")

    def finish(self, logits: int) -> None:
        self.logits = logits
        self._check(self.lib.eng_graph_output(self.g, logits), "output")
        self._check(self.lib.eng_graph_alloc(self.g), "graph allocation")

    def free(self) -> None:
        self.lib.eng_graph_free(self.g)

    def ne(self, t: int, d: int) -> int:
        return int(self.lib.eng_tensor_ne(t, d))

    def nb(self, t: int, d: int) -> float:
        return self.lib.eng_tensor_nb(t, d)

    # -- the op vocabulary ----------------------------------------------------------------------

    def token_embeddings(self, table: int) -> int:
        x = self._check(self.lib.eng_get_rows(self.g, table, self.tokens), "get_rows")
        self._expand(x)  # materialise the embeddings first, as llama.cpp does
        return x

    def linear(self, w: int, x: int, bias: int | None = None) -> int:
        y = self._check(self.lib.eng_mul_mat(self.g, w, x), "mul_mat")
        if bias is not None:
            y = self.add(y, bias)
        return y

    def rms_norm(self, x: int, weight: int | None, eps: float) -> int:
        y = self._check(self.lib.eng_rms_norm(self.g, x, eps), "rms_norm")
        return self.mul(y, weight) if weight is not None else y

    def add(self, a: int, b: int) -> int:
        return self._check(self.lib.eng_add(self.g, a, b), "add")

    def mul(self, a: int, b: int) -> int:
        return self._check(self.lib.eng_mul(self.g, a, b), "mul")

    def scale(self, x: int, s: float) -> int:
        return self._check(self.lib.eng_scale(self.g, x, s), "scale")

    def tanh(self, x: int) -> int:
        return self._check(self.lib.eng_unary(self.g, x, UNARY["tanh"]), "tanh")

    def swiglu(self, gate: int, up: int) -> int:
        return self._check(self.lib.eng_glu_split(self.g, gate, up, GLU["swiglu"]), "swiglu")

    def geglu(self, gate: int, up: int) -> int:
        return self._check(self.lib.eng_glu_split(self.g, gate, up, GLU["geglu"]), "geglu")

    def heads(self, x: int, head_dim: int) -> int:
        d, n = self.ne(x, 0), self.ne(x, 1)
        return self._check(self.lib.eng_reshape(self.g, x, head_dim, d // head_dim, n, 1), "reshape")

    def rope(self, x: int, rope: Rope, freq_factors: int | None = None) -> int:
        if rope.sections:
            if self.pos_multi is None:
                self.pos_multi = self._input(I32, 4 * self.n_tokens)
            s = list(rope.sections) + [0] * (4 - len(rope.sections))
            return self._check(self.lib.eng_rope_multi(
                self.g, x, self.pos_multi, rope.n_dims, *s, rope.multi_mode, rope.n_ctx_orig, rope.freq_base,
                rope.freq_scale, rope.ext_factor, rope.attn_factor, rope.beta_fast, rope.beta_slow), "rope_multi")
        mode = 2 if rope.neox else 0
        if self.pos is None:
            self.pos = self._input(I32, self.n_tokens)
        return self._check(self.lib.eng_rope(
            self.g, x, self.pos, -1 if freq_factors is None else freq_factors, rope.n_dims, mode,
            rope.n_ctx_orig, rope.freq_base, rope.freq_scale, rope.ext_factor, rope.attn_factor,
            rope.beta_fast, rope.beta_slow), "rope")

    def attention(self, layer: int, q: int, k: int, v: int, scale: float, window: int = 0,
                  softcap: float = 0.0) -> int:
        lib, g, c, n = self.lib, self.g, self.caches[layer], self.n_tokens
        # q, v, then k enter the graph before the cache stores (llama.cpp's build_attn order)
        for t in (q, v, k):
            self._expand(t)
        for cur, cache in ((k, c.k), (v, c.v)):
            rows = self._check(lib.eng_view(g, cur, 2, self.ne(cur, 0) * self.ne(cur, 1), n, 1, 1,
                                            self.nb(cur, 2), 0, 0, 0), "view")
            self._expand(self._check(lib.eng_set_rows(g, cache, rows, self.kv_idx), "set_rows"))
        f16 = 2
        kview = self._check(lib.eng_view(
            g, c.k, 4, c.head_dim_k, c.n_head_kv, self.n_kv, 1, _row(f16, c.head_dim_k),
            _row(f16, c.head_dim_k * c.n_head_kv), _row(f16, c.head_dim_k * c.n_head_kv * self.kv_size), 0), "view")
        vview = self._check(lib.eng_view(
            g, c.v, 4, c.head_dim_v, c.n_head_kv, self.n_kv, 1, _row(f16, c.head_dim_v),
            _row(f16, c.head_dim_v * c.n_head_kv), _row(f16, c.head_dim_v * c.n_head_kv * self.kv_size), 0), "view")
        # one stream: the 4-d view of q that llama.cpp takes is the identity
        q4 = self._check(lib.eng_view(g, q, 4, self.ne(q, 0), self.ne(q, 1), self.ne(q, 2), 1,
                                      self.nb(q, 1), self.nb(q, 2), self.nb(q, 2) * self.ne(q, 2), 0), "view")
        qp = self._check(lib.eng_permute(g, q4, 0, 2, 1, 3), "permute")
        kp = self._check(lib.eng_permute(g, kview, 0, 2, 1, 3), "permute")
        vp = self._check(lib.eng_permute(g, vview, 0, 2, 1, 3), "permute")
        out = self._check(lib.eng_flash_attn(g, qp, kp, vp, self.masks[window], scale, 0.0, softcap), "flash_attn")
        return self._check(lib.eng_reshape(g, out, self.ne(out, 0) * self.ne(out, 1),
                                           self.ne(out, 2) * self.ne(out, 3), 1, 1), "reshape")

    def output_rows(self, x: int) -> int:
        return self._check(self.lib.eng_get_rows(self.g, x, self.out_ids), "get_rows")

    # -- recurrent layers ---------------------------------------------------------------------

    def silu(self, x: int) -> int:
        return self._check(self.lib.eng_unary(self.g, x, UNARY["silu"]), "silu")

    def sigmoid(self, x: int) -> int:
        return self._check(self.lib.eng_unary(self.g, x, UNARY["sigmoid"]), "sigmoid")

    def softplus(self, x: int) -> int:
        return self._check(self.lib.eng_softplus(self.g, x), "softplus")

    def cont(self, x: int) -> int:
        return self._check(self.lib.eng_cont(self.g, x), "cont")

    def reshape(self, x: int, *shape: int) -> int:
        ne = list(shape) + [1] * (4 - len(shape))
        return self._check(self.lib.eng_reshape(self.g, x, *ne), "reshape")

    def split(self, x: int, offset: int, size: int) -> int:
        es = self.nb(x, 0)
        return self._check(self.lib.eng_view(self.g, x, 3, size, self.ne(x, 1), self.ne(x, 2), 1, self.nb(x, 1),
                                             self.nb(x, 2), 0, offset * es), "view")

    def split_heads(self, x: int, offset: int, head_dim: int, n_heads: int, head_stride: int = 0) -> int:
        es, n = self.nb(x, 0), self.ne(x, 1) * self.ne(x, 2)
        return self._check(self.lib.eng_view(self.g, x, 4, head_dim, n_heads, n, 1, (head_stride or head_dim) * es,
                                             self.nb(x, 1), self.nb(x, 1) * n, offset * es), "view")

    def l2_norm(self, x: int, eps: float) -> int:
        d = float(self.ne(x, 0))
        y = self._check(self.lib.eng_rms_norm(self.g, x, eps / d), "rms_norm")
        return self.scale(y, 1.0 / d ** 0.5)

    def _store(self, src: int, state: int) -> None:
        self._expand(self._check(self.lib.eng_cpy(self.g, src, state), "state store"))

    def causal_conv(self, layer: int, x: int, kernel: int) -> int:
        lib, g, st = self.lib, self.g, self.states[layer]
        d_conv, channels, n = self.ne(kernel, 0), self.ne(kernel, 1), self.ne(x, 1) * self.ne(x, 2)
        prev = self.reshape(st.conv, d_conv - 1, channels, 1)
        xt = self._check(lib.eng_transpose(g, x), "transpose")  # [n, channels]
        cx = self._check(lib.eng_concat(g, prev, xt, 0), "concat")  # [d_conv - 1 + n, channels, 1]
        last = self._check(lib.eng_view(g, cx, 3, d_conv - 1, channels, 1, 1, self.nb(cx, 1), self.nb(cx, 2), 0,
                                        n * self.nb(cx, 0)), "view")
        self._store(last, st.conv)
        return self._check(lib.eng_ssm_conv(g, cx, kernel), "ssm_conv")

    def _ids(self) -> int:
        if self.state_ids is None:
            self.state_ids = self._input(I32, 1)
        return self.state_ids

    def selective_scan(self, layer: int, x: int, dt: int, A: int, B: int, C: int) -> int:
        lib, g, st = self.lib, self.g, self.states[layer]
        d_state, n = self.ne(B, 0), self.n_tokens
        if self.ne(A, 0) == 1:  # Mamba-2: one scalar A per head, x [head_dim, n_head, n]
            head_dim, n_head = self.ne(x, 0), self.ne(x, 1)
            x4 = x
        else:  # Mamba-1: x [d_inner, n], one channel per head
            head_dim, n_head = 1, self.ne(x, 0)
            x4 = self.reshape(x, 1, n_head, n, 1)
        d_inner = head_dim * n_head
        s = self.reshape(st.ssm, d_state, head_dim, n_head, 1)
        y = self._check(lib.eng_ssm_scan(g, s, x4, dt, A, B, C, self._ids()), "ssm_scan")
        x_bytes = 4.0 * d_inner * n
        self._store(self._check(lib.eng_view(g, y, 1, d_state * d_inner, 1, 1, 1, 0, 0, 0, x_bytes), "view"), st.ssm)
        if head_dim == 1:
            return self._check(lib.eng_view(g, y, 3, d_inner, n, 1, 1, 4.0 * d_inner, x_bytes, 0, 0), "view")
        return self._check(lib.eng_view(g, y, 4, head_dim, n_head, n, 1, 4.0 * head_dim, 4.0 * d_inner, x_bytes, 0),
                           "view")

    def gated_delta_rule(self, layer: int, q: int, k: int, v: int, gate: int, beta: int) -> int:
        lib, g, st = self.lib, self.g, self.states[layer]
        S, H, n = self.ne(v, 0), self.ne(v, 1), self.n_tokens
        s = self.reshape(st.ssm, S, S, H, 1)
        r = self._check(lib.eng_gated_delta_net(g, q, k, v, gate, beta, s), "gated_delta_net")
        out_bytes = 4.0 * S * H * n
        new = self._check(lib.eng_view(g, r, 4, S, S, H, 1, 4.0 * S, 4.0 * S * S, 4.0 * S * S * H, out_bytes), "view")
        self._store(new, st.ssm)
        return self._check(lib.eng_view(g, r, 4, S, H, n, 1, 4.0 * S, 4.0 * S * H, out_bytes, 0), "view")
