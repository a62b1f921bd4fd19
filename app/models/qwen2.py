"""Qwen 2 / 2.5: the Llama block with biases on q/k/v and NeoX-style RoPE."""
from __future__ import annotations

from .llama import Llama


class Qwen2(Llama):
    arch = "qwen2"
    neox_rope = True
