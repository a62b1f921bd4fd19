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


def _row(type_size: int, n: int) -> float:
    return float(type_size * n)


class StepGraph:
    """Implements app.ops.Ops for one bucket; `logits` is the output tensor."""

    def __init__(self, lib: Library, eng: int, caches: list[LayerCache], kv_size: int,
                 n_tokens: int, n_kv: int, n_outputs: int, max_nodes: int = 8192) -> None:
        self.lib, self.n_tokens, self.n_kv, self.n_outputs = lib, n_tokens, n_kv, n_outputs
        self.caches, self.kv_size = caches, kv_size
        self.g = lib.check(lib.eng_graph_new(eng, max_nodes), "graph")
        g = self.g
        self.tokens = self._input(I32, n_tokens)
        self.pos = self._input(I32, n_tokens)
        self.kv_idx = self._input(I64, n_tokens)
        self.masks: dict[int, int] = {}  # window -> mask tensor ([n_kv, n_tokens] F16)
        for window in sorted({c.window for c in caches}):
            self.masks[window] = self._input(F16, n_kv, n_tokens)
        self.out_ids = self._input(I32, n_outputs)
        self.logits: int | None = None
        del g

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
        mode = 2 if rope.neox else 0
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
