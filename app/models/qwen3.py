"""Qwen 3 (dense): the Llama block with RMSNorm on each head of q and k before RoPE.

    q = RoPE(RMSNorm_head(W_q n)),  k = RoPE(RMSNorm_head(W_k n))
"""
from __future__ import annotations

from ..ops import Ops, Tensor
from .base import Weights
from .llama import Llama


class Qwen3(Llama):
    arch = "qwen3"
    neox_rope = True
    layer_tensors = Llama.layer_tensors + ("attn_q_norm", "attn_k_norm")

    def forward(self, g: Ops, w: Weights) -> Tensor:
        hp = self.hp
        x = g.token_embeddings(w.token_embd)
        for i, L in enumerate(w.layers):
            h = g.rms_norm(x, L.attn_norm, hp.rms_eps)
            q, k, v = self.qkv(g, L, h)
            q = g.rope(g.rms_norm(q, L.attn_q_norm, hp.rms_eps), hp.rope)
            k = g.rope(g.rms_norm(k, L.attn_k_norm, hp.rms_eps), hp.rope)
            a = g.linear(L.attn_output, g.attention(i, q, k, v, self.kq_scale), L.attn_output_b)
            if i == hp.n_layer - 1:
                a, x = g.output_rows(a), g.output_rows(x)
            x = g.add(a, x)
            h = g.rms_norm(x, L.ffn_norm, hp.rms_eps)
            f = g.linear(L.ffn_down, g.swiglu(g.linear(L.ffn_gate, h), g.linear(L.ffn_up, h)))
            x = g.add(f, x)
        return self.logits(g, w, x)
