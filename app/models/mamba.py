"""Mamba-1 (state-space model, arXiv:2312.00752), Falcon-Mamba's RMSNorm on dt/B/C, and Mamba-2.

Each block replaces attention with a selective SSM over a fixed-size state:

    x, z  = W_in RMSNorm(h)                      (d_inner each)
    x     = silu(conv1d_causal(x) + b)           (kernel d_conv, state: last d_conv - 1 inputs)
    dt, B, C = W_x x                              (dt_rank, d_state, d_state)
    dt    = W_dt dt + b_dt                        (softplus inside the scan)
    y     = scan(x, dt, A, B, C) + D * x          (state h: d_state x d_inner)
    h'    = h + W_out(y * silu(z))
"""
from __future__ import annotations

from ..gguf import GGUFFile
from ..ops import Ops, Rope, Tensor
from .base import HParams, Model, ModelError, Weights


class Mamba(Model):
    arch = "mamba"
    layer_tensors = ("attn_norm", "ssm_in", "ssm_conv1d", "ssm_x", "ssm_dt", "ssm_a", "ssm_d", "ssm_out")

    def __init__(self, gguf: GGUFFile) -> None:
        self.gguf = gguf
        md, a = gguf.metadata, self.arch

        def get(key: str):
            if f"{a}.{key}" not in md:
                raise ModelError(f"{gguf.source}: missing metadata {a}.{key!r} required by architecture {a!r}")
            return md[f"{a}.{key}"]

        n_embd = int(get("embedding_length"))
        embd = gguf.tensor_index.get("token_embd.weight")
        tokens = md.get("tokenizer.ggml.tokens")
        n_vocab = int(md.get(f"{a}.vocab_size", len(tokens) if tokens is not None else (embd.shape[1] if embd else 0)))
        self.hp = HParams(arch=a, n_vocab=n_vocab, n_ctx_train=int(md.get(f"{a}.context_length", 0)),
                          n_embd=n_embd, n_layer=int(get("block_count")), n_head=0, n_head_kv=0, head_dim_k=0,
                          head_dim_v=0, n_ff=0, rms_eps=float(get("attention.layer_norm_rms_epsilon")),
                          rope=Rope(n_dims=0, neox=False))
        self.d_conv = int(get("ssm.conv_kernel"))
        self.d_inner = int(get("ssm.inner_size"))
        self.d_state = int(get("ssm.state_size"))
        self.dt_rank = int(get("ssm.time_step_rank"))
        self.dt_b_c_rms = bool(md.get(f"{a}.ssm.dt_b_c_rms", False))
        self.check_d_inner()
        self.check_tensors()

    def check_d_inner(self) -> None:
        if self.d_inner != 2 * self.hp.n_embd:
            raise ModelError(f"{self.gguf.source}: {self.arch}.ssm.inner_size {self.d_inner} != 2 * embedding_length "
                             f"(only an expansion factor of 2 is supported, as in llama.cpp)")

    def check_tensors(self) -> None:
        names = self.gguf.tensor_index
        missing = [t for t in ("token_embd.weight", "output_norm.weight") if t not in names]
        for i in range(self.hp.n_layer):
            for t in self.layer_tensors:
                name = f"blk.{i}.{t}" if t in ("ssm_a", "ssm_d") else f"blk.{i}.{t}.weight"
                if name not in names:
                    missing.append(name)
        if missing:
            raise ModelError(f"{self.gguf.source}: architecture {self.arch!r} needs tensors "
                             f"{', '.join(missing[:5])}, which the file does not have")

    def is_matmul_weight(self, name: str) -> bool:
        return super().is_matmul_weight(name) and ".ssm_conv1d." not in name and ".ssm_norm." not in name

    def recurrent_state(self, layer: int) -> tuple[int, int]:
        """(conv state, scan state) elements per layer: every layer is recurrent."""
        return (self.d_conv - 1) * self.d_inner, self.d_state * self.d_inner

    def forward(self, g: Ops, w: Weights) -> Tensor:
        hp = self.hp
        x = g.token_embeddings(w.token_embd)
        for i, L in enumerate(w.layers):
            h = g.rms_norm(x, L.attn_norm, hp.rms_eps)
            y = self.mixer(g, i, L, h)
            if i == hp.n_layer - 1:
                y, x = g.output_rows(y), g.output_rows(x)
            x = g.add(y, x)
        return self.logits(g, w, x)

    def mixer(self, g: Ops, i: int, L, h: Tensor) -> Tensor:
        d_inner, d_state, dt_rank = self.d_inner, self.d_state, self.dt_rank
        xz = g.linear(L.ssm_in, h)
        x, z = g.split(xz, 0, d_inner), g.split(xz, d_inner, d_inner)
        x = g.silu(g.add(g.causal_conv(i, x, L.ssm_conv1d), L.ssm_conv1d_b))
        x_db = g.linear(L.ssm_x, x)
        dt = g.split(x_db, 0, dt_rank)
        B = g.split_heads(x_db, dt_rank, d_state, 1)
        C = g.split_heads(x_db, dt_rank + d_state, d_state, 1)
        if self.dt_b_c_rms:  # Falcon-Mamba
            eps = self.hp.rms_eps
            dt, B, C = g.rms_norm(dt, L.ssm_dt_norm, eps), g.rms_norm(B, L.ssm_b_norm, eps), \
                g.rms_norm(C, L.ssm_c_norm, eps)
        else:
            dt = g.cont(dt)
        dt = g.add(g.linear(L.ssm_dt, dt), L.ssm_dt_b)
        y = g.selective_scan(i, x, dt, L.ssm_a, B, C)
        y = g.add(y, g.mul(x, L.ssm_d))
        return g.linear(L.ssm_out, g.swiglu(g.cont(z), y))


class Mamba2(Mamba):
    """Mamba-2 (arXiv:2405.21060): one projection gives z, x, B, C and dt; a scalar decay A per
    head; x, B and C share the causal conv; a grouped RMSNorm gates the output.

        z, xBC, dt = W_in RMSNorm(h)
        x, B, C    = silu(conv1d_causal(xBC) + b)       (x: n_head heads of head_dim)
        y          = scan(x, dt + b_dt, A, B, C) + D * x
        h'         = h + W_out(GroupRMSNorm(y * silu(z)))
    """
    arch = "mamba2"
    layer_tensors = ("attn_norm", "ssm_in", "ssm_conv1d", "ssm_a", "ssm_d", "ssm_norm", "ssm_out")

    def __init__(self, gguf: GGUFFile) -> None:
        key = f"{self.arch}.ssm.group_count"
        if key not in gguf.metadata:
            raise ModelError(f"{gguf.source}: missing metadata {key!r} required by architecture {self.arch!r}")
        self.n_group = int(gguf.metadata[key])
        super().__init__(gguf)

    def check_d_inner(self) -> None:
        pass  # any expansion factor

    def recurrent_state(self, layer: int) -> tuple[int, int]:
        channels = self.d_inner + 2 * self.n_group * self.d_state
        return (self.d_conv - 1) * channels, self.d_state * self.d_inner

    def mixer(self, g: Ops, i: int, L, h: Tensor) -> Tensor:
        d_inner, d_state, n_group, n_head = self.d_inner, self.d_state, self.n_group, self.dt_rank
        head_dim, channels = d_inner // n_head, d_inner + 2 * self.n_group * self.d_state
        zxbcdt = g.linear(L.ssm_in, h)
        z = g.split_heads(zxbcdt, 0, head_dim, n_head)
        xbc = g.split(zxbcdt, d_inner, channels)
        dt = g.split(zxbcdt, d_inner + channels, n_head)
        xbc = g.silu(g.add(g.causal_conv(i, xbc, L.ssm_conv1d), L.ssm_conv1d_b))
        x = g.split_heads(xbc, 0, head_dim, n_head)
        B = g.split_heads(xbc, d_inner, d_state, n_group)
        C = g.split_heads(xbc, d_inner + n_group * d_state, d_state, n_group)
        dt = g.add(g.cont(dt), L.ssm_dt_b)
        y = g.selective_scan(i, x, dt, L.ssm_a, B, C)
        y = g.add(y, g.mul(x, L.ssm_d))
        y = g.swiglu(g.cont(z), y)
        y = g.rms_norm(g.reshape(y, d_inner // n_group, n_group, g.n_tokens), L.ssm_norm, self.hp.rms_eps)
        return g.linear(L.ssm_out, g.reshape(y, d_inner, g.n_tokens))
