"""The op vocabulary: what a model's forward pass may say, independent of any backend.

Shapes use ggml's order: `[d, n_tokens]` is n_tokens rows of d contiguous values;
`[head_dim, n_heads, n_tokens]` after `heads()`. Every backend (ggml engine, WebGPU)
implements this protocol; a model file speaks only these words.

One forward pass sees one *step*: `tokens` (the new token ids), their positions, and
the model state (KV cache) the backend keeps per layer. `attention()` appends the new
keys/values to the layer's cache and attends causally over everything cached so far.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

Tensor = Any  # a backend's opaque tensor handle


@dataclass(frozen=True)
class Rope:
    """Rotary position embedding parameters (the ggml/llama.cpp parameterisation)."""
    n_dims: int
    neox: bool  # rotate halves (GPT-NeoX/Qwen/Gemma) instead of adjacent pairs (Llama)
    freq_base: float = 10000.0
    freq_scale: float = 1.0
    n_ctx_orig: int = 0
    ext_factor: float = 0.0
    attn_factor: float = 1.0
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    # multi-section RoPE (Qwen 3.5: interleaved M-RoPE, mode 40); text tokens use one position
    # in the first three sections. Empty for the plain rotations above.
    sections: tuple[int, ...] = ()
    multi_mode: int = 0


class Ops(Protocol):
    n_tokens: int

    def token_embeddings(self, table: Tensor) -> Tensor:
        """Rows of `table` [d, vocab] for this step's tokens -> [d, n_tokens]."""

    def linear(self, w: Tensor, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """x @ w^T (+ bias): w is [d_in, d_out] (GGUF layout), x is [d_in, n] -> [d_out, n]."""

    def rms_norm(self, x: Tensor, weight: Tensor | None, eps: float) -> Tensor:
        """x / sqrt(mean(x^2) + eps) * weight, over the first dimension."""

    def add(self, a: Tensor, b: Tensor) -> Tensor: ...
    def mul(self, a: Tensor, b: Tensor) -> Tensor: ...
    def scale(self, x: Tensor, s: float) -> Tensor: ...
    def tanh(self, x: Tensor) -> Tensor: ...

    def swiglu(self, gate: Tensor, up: Tensor) -> Tensor:
        """silu(gate) * up."""

    def geglu(self, gate: Tensor, up: Tensor) -> Tensor:
        """gelu_tanh(gate) * up."""

    def heads(self, x: Tensor, head_dim: int) -> Tensor:
        """[head_dim * n_heads, n] -> [head_dim, n_heads, n]."""

    def rope(self, x: Tensor, rope: Rope, freq_factors: Tensor | None = None) -> Tensor:
        """Rotate [head_dim, n_heads, n] by this step's positions."""

    def attention(self, layer: int, q: Tensor, k: Tensor, v: Tensor, scale: float,
                  window: int = 0, softcap: float = 0.0) -> Tensor:
        """Causal attention of q over the layer's cache plus k/v (appended to it).

        q [hd, n_head, n], k/v [hd, n_head_kv, n] (grouped-query when n_head_kv < n_head);
        window > 0 limits each query to the last `window` positions (sliding window).
        Returns [hd * n_head, n]."""

    def output_rows(self, x: Tensor) -> Tensor:
        """Keep only the rows (token positions) whose logits the caller asked for."""

    # -- recurrent layers (Mamba, Gated DeltaNet) -------------------------------------------
    # A recurrent layer keeps a fixed-size state per sequence instead of a KV cache: the last
    # d_conv - 1 inputs of its short causal convolution and its scan/delta-rule state. The ops
    # below read the layer's state and write back the state after this step's tokens.

    def silu(self, x: Tensor) -> Tensor: ...
    def sigmoid(self, x: Tensor) -> Tensor: ...

    def softplus(self, x: Tensor) -> Tensor:
        """log(1 + exp(x))."""

    def cont(self, x: Tensor) -> Tensor:
        """A contiguous copy of a view."""

    def reshape(self, x: Tensor, *shape: int) -> Tensor:
        """The same values in a new shape (ggml order, up to 4 dims)."""

    def split(self, x: Tensor, offset: int, size: int) -> Tensor:
        """Values [offset, offset + size) of the first dimension of x [d, n] -> [size, n] (a view)."""

    def split_heads(self, x: Tensor, offset: int, head_dim: int, n_heads: int, head_stride: int = 0) -> Tensor:
        """A view [head_dim, n_heads, n] of x [d, n]: head h starts at offset + h * head_stride
        (head_stride defaults to head_dim: heads packed one after the other)."""

    def l2_norm(self, x: Tensor, eps: float) -> Tensor:
        """x / sqrt(sum(x^2) + eps) over the first dimension (llama.cpp's build_gdn_l2_norm form)."""

    def causal_conv(self, layer: int, x: Tensor, kernel: Tensor) -> Tensor:
        """Depthwise causal conv1d over the layer's conv state followed by x [channels, n];
        kernel [d_conv, channels]. Stores the last d_conv - 1 inputs as the new conv state.
        Returns [channels, n] (no bias, no activation)."""

    def selective_scan(self, layer: int, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
        """Mamba's selective scan from the layer's state, dt through softplus:
        h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t, y_t = C_t . h_t.
        Mamba-1: x, dt [d_inner, n], A [d_state, d_inner], B, C [d_state, 1, n].
        Mamba-2: x [head_dim, n_head, n], dt [n_head, n], A [1, n_head], B, C [d_state, n_group, n].
        Stores h_n as the new state; returns y shaped like x (without the D skip)."""

    def gated_delta_rule(self, layer: int, q: Tensor, k: Tensor, v: Tensor, gate: Tensor, beta: Tensor) -> Tensor:
        """Gated DeltaNet from the layer's state S [S_v, S_v, H_v]: q, k [S_k, H_k, n] (L2-normed,
        H_v % H_k == 0), v [S_v, H_v, n], gate (log decay) and beta [1, H_v, n].
        S_t = exp(g_t) S_{t-1} + beta_t k_t (v_t - exp(g_t) S_{t-1}^T k_t)^T, o_t = S_t^T q_t / sqrt(S_k).
        Stores S_n as the new state; returns o [S_v, H_v, n]."""
