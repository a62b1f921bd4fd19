"""A Python LLM runtime for the browser (Pyodide) and the host.

    import app
    llm = app.load("model.gguf")
    for piece in llm.chat(system="Be brief.").send("hi", temperature=0.7, max_tokens=256):
        print(piece.text, end="")

The generation API is imported on first use, so `import app.gguf` and friends stay light.
"""
from __future__ import annotations

from typing import Any

__all__ = ["load", "LLM", "ChatSession", "Reply", "Piece", "ContextFullError", "OptionError"]


def load(path: str, n_ctx: int = 4096, threads: int | None = None) -> Any:
    """Load a GGUF model; returns an app.generate.LLM (see docs/api.md)."""
    from .generate import load as _load
    return _load(path, n_ctx=n_ctx, threads=threads)


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import generate
        return getattr(generate, name)
    raise AttributeError(f"module 'app' has no attribute {name!r}")
