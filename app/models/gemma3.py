"""Gemma 3: interleaved sliding-window and global attention layers.

    x0 = sqrt(d) * Embed(tokens)
    h  = x + PostNorm(Attn(PreNorm(x)))      q, k: per-head RMSNorm, then RoPE;
                                             local layers use rope base 10k and a window
    y  = h + PostNorm(W_down(gelu(W_gate n) * W_up n)),  n = PreNorm(h)
    logits = cap * tanh(W_out RMSNorm(y) / cap)   when final soft-capping is set
"""
from __future__ import annotations

import math
from dataclasses import replace

from ..ops import Ops, Tensor
from .base import Model, Weights


class Gemma3(Model):
    arch = "gemma3"
    neox_rope = True
    layer_tensors = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm", "attn_k_norm",
                     "post_attention_norm", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down", "post_ffw_norm")

    def __init__(self, gguf) -> None:
        super().__init__(gguf)
        md, hp = gguf.metadata, self.hp
        self.window = int(md.get("gemma3.attention.sliding_window", 0) or 0)
        pattern = md.get("gemma3.attention.sliding_window_pattern", 6)
        if isinstance(pattern, list):
            self.is_local = [bool(p) for p in pattern][:hp.n_layer]
        else:
            self.is_local = [self.window > 0 and (pattern == 0 or i % pattern < pattern - 1) for i in range(hp.n_layer)]
        self.local_rope = replace(hp.rope, freq_base=float(md.get("gemma3.rope.freq_base_swa", 10000.0)),
                                  freq_scale=1.0)
        self.softcap = float(md.get("gemma3.final_logit_softcapping", 0.0) or 0.0)
        # Gemma 3 27B scales queries by 1/sqrt(d/n_head) rather than 1/sqrt(head_dim)
        big = hp.n_layer == 62
        self.query_scale = 1.0 / math.sqrt(hp.n_embd / hp.n_head if big else hp.head_dim_k)

    def attention_window(self, layer: int) -> int:
        return self.window if self.is_local[layer] else 0

    def forward(self, g: Ops, w: Weights) -> Tensor:
        hp = self.hp
        x = g.scale(g.token_embeddings(w.token_embd), math.sqrt(hp.n_embd))
        for i, L in enumerate(w.layers):
            rope = self.local_rope if self.is_local[i] else hp.rope
            h = g.rms_norm(x, L.attn_norm, hp.rms_eps)
            q, k, v = self.qkv(g, L, h)
            q = g.rope(g.rms_norm(q, L.attn_q_norm, hp.rms_eps), rope)
            k = g.rope(g.rms_norm(k, L.attn_k_norm, hp.rms_eps), rope)
            q = g.scale(q, self.query_scale)
            a = g.linear(L.attn_output, g.attention(i, q, k, v, 1.0, window=self.attention_window(i)))
            if i == hp.n_layer - 1:
                a, x = g.output_rows(a), g.output_rows(x)
            x = g.add(g.rms_norm(a, L.post_attention_norm, hp.rms_eps), x)
            h = g.rms_norm(x, L.ffn_norm, hp.rms_eps)
            f = g.linear(L.ffn_down, g.geglu(g.linear(L.ffn_gate, h), g.linear(L.ffn_up, h)))
            x = g.add(g.rms_norm(f, L.post_ffw_norm, hp.rms_eps), x)
        logits = self.logits(g, w, x)
        if self.softcap:
            logits = g.scale(g.tanh(g.scale(logits, 1.0 / self.softcap)), self.softcap)
        return logits
