"""Tokenizers from GGUF metadata (byte-level BPE, SPM-style BPE, SentencePiece), exact
against llama.cpp, in pure Python (runs unchanged under CPython and Pyodide)."""
from __future__ import annotations

from .pretokenize import supported_pre_tokenizers
from .stream import StreamDecoder
from .tokenizer import Tokenizer
from .vocab import SUPPORTED_MODELS, TokenizerError


def load_tokenizer(path: str) -> Tokenizer:
    """Read the GGUF header at `path` and build its tokenizer."""
    from app.gguf import read_gguf

    return Tokenizer.from_metadata(read_gguf(path).metadata)


__all__ = ["SUPPORTED_MODELS", "StreamDecoder", "Tokenizer", "TokenizerError", "load_tokenizer",
           "supported_pre_tokenizers"]
