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
