"""Qwen 3 (dense): the Llama block with RMSNorm on each head of q and k before RoPE.

    q = RoPE(RMSNorm_head(W_q n)),  k = RoPE(RMSNorm_head(W_k n))
"""
from __future__ import annotations

from ..ops import Ops, Tensor
from .base import Layer, Weights
from .llama import Llama


class Qwen3(Llama):
    arch = "qwen3"
    neox_rope = True
    layer_tensors = Llama.layer_tensors + ("attn_q_norm", "attn_k_norm")

    def position(self, g: Ops, w: Weights, L: Layer, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        hp = self.hp
        return (g.rope(g.rms_norm(q, L.attn_q_norm, hp.rms_eps), hp.rope),
                g.rope(g.rms_norm(k, L.attn_k_norm, hp.rms_eps), hp.rope))
