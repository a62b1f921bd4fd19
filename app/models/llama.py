"""Llama 2/3, TinyLlama, SmolLM, Mistral-style dense decoders.

    h = x + Attn(RMSNorm(x))          q, k rotated by RoPE (Llama 3: with rope_freqs)
    y = h + W_down(silu(W_gate n) * W_up n),  n = RMSNorm(h)
"""
from __future__ import annotations

from ..ops import Ops, Tensor
from .base import Layer, Model, Weights


class Llama(Model):
    arch = "llama"
    neox_rope = False
    layer_tensors = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                     "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")

    def forward(self, g: Ops, w: Weights) -> Tensor:
        hp = self.hp
        x = g.token_embeddings(w.token_embd)
        for i, L in enumerate(w.layers):
            h = g.rms_norm(x, L.attn_norm, hp.rms_eps)
            q, k, v = self.qkv(g, L, h)
            q, k = self.position(g, w, L, q, k)
            a = g.linear(L.attn_output, g.attention(i, q, k, v, self.kq_scale), L.attn_output_b)
            if i == hp.n_layer - 1:
                a, x = g.output_rows(a), g.output_rows(x)
            x = g.add(a, x)
            h = g.rms_norm(x, L.ffn_norm, hp.rms_eps)
            f = g.linear(L.ffn_down, g.swiglu(g.linear(L.ffn_gate, h), g.linear(L.ffn_up, h)))
            x = g.add(f, x)
        return self.logits(g, w, x)

    def position(self, g: Ops, w: Weights, L: Layer, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """Rotate q and k by their positions (Llama 3: scaled by rope_freqs)."""
        return g.rope(q, self.hp.rope, w.rope_freqs), g.rope(k, self.hp.rope, w.rope_freqs)
