"""What every architecture shares: hyper-parameters from GGUF metadata, the weight
namespace, and the transformer blocks that llama.cpp's graph helpers also share."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..gguf import GGUFFile
from ..ops import Ops, Rope, Tensor


class ModelError(ValueError):
    """A model file this runtime cannot run, with the reason and what is supported."""


@dataclass
class HParams:
    arch: str
    n_vocab: int
    n_ctx_train: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ff: int
    rms_eps: float
    rope: Rope
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_embd_k_gqa(self) -> int:
        return self.head_dim_k * self.n_head_kv

    @property
    def n_embd_v_gqa(self) -> int:
        return self.head_dim_v * self.n_head_kv


def read_hparams(gguf: GGUFFile, arch: str, neox: bool) -> HParams:
    md = gguf.metadata

    def get(key: str, default: Any = KeyError) -> Any:
        full = f"{arch}.{key}"
        if full in md:
            return md[full]
        if default is KeyError:
            raise ModelError(f"{gguf.source}: missing metadata {full!r} required by architecture {arch!r}")
        return default

    n_embd = int(get("embedding_length"))
    n_head = get("attention.head_count")
    n_head_kv = get("attention.head_count_kv", n_head)
    for name, value in (("attention.head_count", n_head), ("attention.head_count_kv", n_head_kv)):
        if isinstance(value, list):  # per-layer head counts: fine only when uniform
            if len(set(value)) != 1:
                raise ModelError(f"{gguf.source}: per-layer {arch}.{name} is not supported")
    n_head = int(n_head[0] if isinstance(n_head, list) else n_head)
    n_head_kv = int(n_head_kv[0] if isinstance(n_head_kv, list) else n_head_kv)
    head_dim_k = int(get("attention.key_length", n_embd // n_head))
    head_dim_v = int(get("attention.value_length", n_embd // n_head))
    tokens = md.get("tokenizer.ggml.tokens")
    n_vocab = int(get("vocab_size", len(tokens) if tokens is not None else 0))
    if not n_vocab:
        embd = gguf.tensor_index.get("token_embd.weight")
        n_vocab = embd.shape[1] if embd else 0

    scaling = get("rope.scaling.type", "none")
    factor = float(get("rope.scaling.factor", 0.0) or 0.0)
    if scaling not in ("none", "linear") and factor not in (0.0, 1.0):
        raise ModelError(f"{gguf.source}: rope scaling {scaling!r} is not supported (supported: none, linear)")
    n_ctx_train = int(get("context_length"))
    rope = Rope(
        n_dims=int(get("rope.dimension_count", head_dim_k)),
        neox=neox,
        freq_base=float(get("rope.freq_base", 10000.0)),
        freq_scale=1.0 / factor if factor else 1.0,
        n_ctx_orig=int(get("rope.scaling.original_context_length", n_ctx_train)),
    )
    return HParams(arch=arch, n_vocab=n_vocab, n_ctx_train=n_ctx_train, n_embd=n_embd,
                   n_layer=int(get("block_count")), n_head=n_head, n_head_kv=n_head_kv,
                   head_dim_k=head_dim_k, head_dim_v=head_dim_v, n_ff=int(get("feed_forward_length")),
                   rms_eps=float(get("attention.layer_norm_rms_epsilon")), rope=rope)


class Layer:
    """Weights of one block: `blk.N.attn_q.weight` is `.attn_q`, `blk.N.attn_q.bias` is
    `.attn_q_b`; a tensor the file does not have reads as None."""

    def __init__(self) -> None:
        self._t: dict[str, Tensor] = {}

    def __getattr__(self, name: str) -> Tensor | None:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._t.get(name)


class Weights(Layer):
    """All weights: top-level tensors as attributes (`.token_embd`), blocks in `.layers`."""

    def __init__(self, handles: dict[str, Tensor], n_layer: int) -> None:
        super().__init__()
        self.layers = [Layer() for _ in range(n_layer)]
        for name, h in handles.items():
            parts = name.split(".")
            suffix = "_b" if parts[-1] == "bias" else ""
            if parts[0] == "blk" and len(parts) >= 3 and parts[1].isdigit():
                i = int(parts[1])
                if i < n_layer:
                    self.layers[i]._t[".".join(parts[2:-1]) + suffix] = h
            else:
                self._t[".".join(parts[:-1]) + suffix] = h


class Model:
    """An architecture: hyper-parameters, which tensors it needs, and its forward pass."""

    arch = ""
    neox_rope = False
    # per-layer tensors (without `blk.N.` and `.weight`) that must exist
    layer_tensors: tuple[str, ...] = ()
    top_tensors: tuple[str, ...] = ("token_embd", "output_norm")

    def __init__(self, gguf: GGUFFile) -> None:
        self.gguf = gguf
        self.hp = read_hparams(gguf, self.arch, self.neox_rope)
        self.check_tensors()

    def check_tensors(self) -> None:
        names = self.gguf.tensor_index
        missing = [f"{t}.weight" for t in self.top_tensors if f"{t}.weight" not in names]
        for i in range(self.hp.n_layer):
            missing += [f"blk.{i}.{t}.weight" for t in self.layer_tensors if f"blk.{i}.{t}.weight" not in names]
        if missing:
            more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
            raise ModelError(f"{self.gguf.source}: architecture {self.arch!r} needs tensors "
                             f"{', '.join(missing[:5])}{more}, which the file does not have")

    def is_matmul_weight(self, name: str) -> bool:
        """Weights consumed by linear() (the engine may repack them for faster mat-muls)."""
        return name.endswith(".weight") and len(self.gguf.tensor_index[name].shape) >= 2 \
            and not name.startswith("token_embd")

    def attention_window(self, layer: int) -> int:
        """Sliding-window size of a layer, 0 for full attention."""
        return 0

    def forward(self, g: Ops, w: Weights) -> Tensor:
        raise NotImplementedError

    # -- blocks shared by the architectures (llama.cpp's build_norm / build_qkv / build_ffn) --

    def qkv(self, g: Ops, L: Layer, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        hp = self.hp
        q = g.heads(g.linear(L.attn_q, x, L.attn_q_b), hp.head_dim_k)
        k = g.heads(g.linear(L.attn_k, x, L.attn_k_b), hp.head_dim_k)
        v = g.heads(g.linear(L.attn_v, x, L.attn_v_b), hp.head_dim_v)
        return q, k, v

    def logits(self, g: Ops, w: Weights, x: Tensor) -> Tensor:
        x = g.rms_norm(x, w.output_norm, self.hp.rms_eps)
        return g.linear(w.output if w.output is not None else w.token_embd, x, w.output_b)

    @property
    def kq_scale(self) -> float:
        scale = self.gguf.metadata.get(f"{self.arch}.attention.scale")
        return float(scale) if scale else 1.0 / math.sqrt(self.hp.head_dim_k)
