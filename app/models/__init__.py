"""Architectures, one file each, written against the op vocabulary (app/ops.py)."""
from __future__ import annotations

from ..gguf import GGUFFile
from .base import HParams, Model, ModelError, Weights
from .gemma3 import Gemma3
from .llama import Llama
from .mamba import Mamba, Mamba2
from .qwen2 import Qwen2
from .qwen3 import Qwen3
from .qwen35 import Qwen35

ARCHITECTURES: dict[str, type[Model]] = {m.arch: m for m in (Llama, Qwen2, Qwen3, Gemma3, Mamba, Mamba2, Qwen35)}


def model_for(gguf: GGUFFile) -> Model:
    arch = gguf.metadata.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise ModelError(f"{gguf.source}: unsupported architecture {arch!r} "
                         f"(supported: {', '.join(sorted(ARCHITECTURES))})")
    return ARCHITECTURES[arch](gguf)


__all__ = ["ARCHITECTURES", "HParams", "Model", "ModelError", "Weights", "model_for"]
