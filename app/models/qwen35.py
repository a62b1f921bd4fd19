"""Qwen 3.5: a hybrid of Gated DeltaNet (linear attention with a fixed-size state) and gated
full attention, 3 DeltaNet layers to 1 attention layer (llama.cpp's `qwen35`).

    h = x + Mixer(RMSNorm(x)),  y = h + W_down(silu(W_gate n) * W_up n),  n = RMSNorm_post(h)

Gated DeltaNet layer (per value head, state S of S_v x S_v):
    q, k, v = silu(conv1d_causal(W_qkv n))         (short conv with persistent state)
    q, k    = L2Norm(q), L2Norm(k)
    beta    = sigmoid(W_beta n),  g = A * softplus(W_alpha n + dt_bias)    (log decay, A < 0)
    S_t     = e^g S + beta k (v - e^g S^T k)^T,  o = S^T q / sqrt(d)
    out     = W_out(RMSNorm_head(o) * silu(W_z n))
Attention layer: q and a per-head output gate from one projection; RMSNorm on q and k heads,
interleaved multi-section RoPE on the first rope_dims dims; out = W_o(attn * sigmoid(gate)).
"""
from __future__ import annotations

from dataclasses import replace

from ..gguf import GGUFFile
from ..ops import Ops, Tensor
from .base import Model, ModelError, Weights

IMROPE = 40  # ggml's GGML_ROPE_TYPE_IMROPE


class Qwen35(Model):
    arch = "qwen35"
    neox_rope = True
    common_tensors = ("attn_norm", "post_attention_norm", "ffn_gate", "ffn_up", "ffn_down")
    deltanet_tensors = ("attn_qkv", "attn_gate", "ssm_conv1d", "ssm_a", "ssm_beta", "ssm_alpha", "ssm_norm",
                        "ssm_out")
    attention_tensors = ("attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm", "attn_k_norm")

    def __init__(self, gguf: GGUFFile) -> None:
        md, a = gguf.metadata, self.arch
        missing = [k for k in ("ssm.conv_kernel", "ssm.inner_size", "ssm.state_size", "ssm.time_step_rank",
                               "ssm.group_count") if f"{a}.{k}" not in md]
        if missing:
            raise ModelError(f"{gguf.source}: missing metadata {', '.join(a + '.' + k for k in missing)} "
                             f"required by architecture {a!r}")
        self.d_conv = int(md[f"{a}.ssm.conv_kernel"])
        self.d_inner = int(md[f"{a}.ssm.inner_size"])
        self.head_k_dim = int(md[f"{a}.ssm.state_size"])
        self.n_v_heads = int(md[f"{a}.ssm.time_step_rank"])
        self.n_k_heads = int(md[f"{a}.ssm.group_count"])
        self.head_v_dim = self.d_inner // self.n_v_heads
        n_layer = int(md.get(f"{a}.block_count", 0))
        recurrent = md.get(f"{a}.attention.recurrent_layers")
        if recurrent is None:
            interval = int(md.get(f"{a}.full_attention_interval", 4))
            recurrent = [(i + 1) % interval != 0 for i in range(n_layer)]
        self.recurrent = [bool(r) for r in recurrent[:n_layer]]
        super().__init__(gguf)
        sections = tuple(int(s) for s in md.get(f"{a}.rope.dimension_sections", ()))
        self.hp.rope = replace(self.hp.rope, sections=(sections + (0, 0, 0, 0))[:4], multi_mode=IMROPE)

    def check_tensors(self) -> None:
        names = self.gguf.tensor_index
        missing = [t for t in ("token_embd.weight", "output_norm.weight") if t not in names]
        for i in range(self.hp.n_layer):
            own = self.deltanet_tensors if self.recurrent[i] else self.attention_tensors
            for t in self.common_tensors + own:
                name = f"blk.{i}.{t}" if t == "ssm_a" else f"blk.{i}.{t}.weight"
                if name not in names:
                    missing.append(name)
            if self.recurrent[i] and f"blk.{i}.ssm_dt.bias" not in names:
                missing.append(f"blk.{i}.ssm_dt.bias")
        if missing:
            raise ModelError(f"{self.gguf.source}: architecture {self.arch!r} needs tensors "
                             f"{', '.join(missing[:5])}, which the file does not have")

    def is_matmul_weight(self, name: str) -> bool:
        return super().is_matmul_weight(name) and ".ssm_conv1d." not in name

    def recurrent_state(self, layer: int) -> tuple[int, int] | None:
        """(conv state, delta-rule state) elements of a DeltaNet layer; None for attention."""
        if not self.recurrent[layer]:
            return None
        channels = self.d_inner + 2 * self.n_k_heads * self.head_k_dim
        return (self.d_conv - 1) * channels, self.head_v_dim * self.head_v_dim * self.n_v_heads

    def forward(self, g: Ops, w: Weights) -> Tensor:
        hp = self.hp
        x = g.token_embeddings(w.token_embd)
        for i, L in enumerate(w.layers):
            h = g.rms_norm(x, L.attn_norm, hp.rms_eps)
            a = self.deltanet(g, i, L, h) if self.recurrent[i] else self.attention(g, i, L, h)
            x = g.add(a, x)
            h = g.rms_norm(x, L.post_attention_norm, hp.rms_eps)
            f = g.linear(L.ffn_down, g.swiglu(g.linear(L.ffn_gate, h), g.linear(L.ffn_up, h)))
            x = g.add(f, x)
        x = g.output_rows(g.rms_norm(x, w.output_norm, hp.rms_eps))
        return g.linear(w.output if w.output is not None else w.token_embd, x)

    def attention(self, g: Ops, i: int, L, h: Tensor) -> Tensor:
        hp, hd = self.hp, self.hp.head_dim_k
        qg = g.linear(L.attn_q, h)  # per head: hd query values, then hd gate values
        k, v = g.linear(L.attn_k, h), g.linear(L.attn_v, h)
        q = g.rms_norm(g.split_heads(qg, 0, hd, hp.n_head, 2 * hd), L.attn_q_norm, hp.rms_eps)
        k = g.rms_norm(g.heads(k, hd), L.attn_k_norm, hp.rms_eps)
        gate = g.reshape(g.cont(g.split_heads(qg, hd, hd, hp.n_head, 2 * hd)), hd * hp.n_head, g.n_tokens)
        v = g.heads(v, hp.head_dim_v)
        q, k = g.rope(q, hp.rope), g.rope(k, hp.rope)
        o = g.attention(i, q, k, v, self.kq_scale)
        return g.linear(L.attn_output, g.mul(o, g.sigmoid(gate)))

    def deltanet(self, g: Ops, i: int, L, h: Tensor) -> Tensor:
        n, Sk, Sv, Hk, Hv = g.n_tokens, self.head_k_dim, self.head_v_dim, self.n_k_heads, self.n_v_heads
        qkv = g.linear(L.attn_qkv, h)
        z = g.linear(L.attn_gate, h)
        beta = g.sigmoid(g.reshape(g.linear(L.ssm_beta, h), 1, Hv, n))
        decay = g.mul(g.softplus(g.add(g.linear(L.ssm_alpha, h), L.ssm_dt_b)), L.ssm_a)
        decay = g.reshape(decay, 1, Hv, n)
        qkv = g.silu(g.causal_conv(i, qkv, L.ssm_conv1d))
        q = g.split_heads(qkv, 0, Sk, Hk)
        k = g.split_heads(qkv, Sk * Hk, Sk, Hk)
        v = g.split_heads(qkv, 2 * Sk * Hk, Sv, Hv)
        eps = self.hp.rms_eps
        q, k = g.l2_norm(q, eps), g.l2_norm(k, eps)
        o = g.gated_delta_rule(i, q, k, v, decay, beta)
        o = g.mul(g.rms_norm(o, L.ssm_norm, eps), g.silu(g.reshape(z, Sv, Hv, n)))
        return g.linear(L.ssm_out, g.reshape(o, Sv * Hv, n))
