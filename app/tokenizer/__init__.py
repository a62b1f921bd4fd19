"""Tokenizers from GGUF metadata, exact against llama.cpp, in pure Python (runs unchanged
under CPython and Pyodide): byte-level BPE with 79 `tokenizer.ggml.pre` pre-tokenizers,
SPM-style BPE (Gemma 4), SentencePiece with byte fallback, WordPiece and Unigram.

    tok = Tokenizer.from_metadata(read_gguf(path).metadata)   # or load_tokenizer(path)
    ids = tok.encode(text, add_special=True, parse_special=False)
    stream = tok.stream(); text = stream.feed(token_id)      # whole characters only
    tok.stop_ids, tok.eos_id, tok.eot_id, tok.bos_id
"""
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
