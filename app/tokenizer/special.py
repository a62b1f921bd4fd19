"""Split text around special tokens before BPE/SPM (llama.cpp's tokenizer_st_partition).

Special tokens are tried longest text first; each one splits every remaining text
fragment at all its occurrences. Control and unknown tokens are only recognised when
the caller asks (`parse_special`); user-defined tokens always are. A token flagged
lstrip/rstrip eats the ASCII whitespace to its left/right.
"""
from __future__ import annotations

from .vocab import CONTROL, LSTRIP, RSTRIP, UNKNOWN, Vocab

Fragment = "int | tuple[int, int]"  # a token id, or a (start, end) span of raw text
_C_SPACE = " \t\n\v\f\r"  # C isspace() in the "C" locale


def partition(text: str, vocab: Vocab, parse_special: bool) -> list:
    """Fragments of `text` in order: token ids and (start, end) spans of raw text."""
    if not text:
        return []
    frags: list = [(0, len(text))]
    tokens, attrs = vocab.tokens, vocab.attrs
    for tid in vocab.special_ids:
        attr = attrs[tid]
        if not parse_special and attr & (CONTROL | UNKNOWN):
            continue
        needle = tokens[tid]
        if needle not in text:  # cheap whole-text test first: most specials never occur
            continue
        out: list = []
        for frag in frags:
            if isinstance(frag, int):
                out.append(frag)
                continue
            start, end = frag
            while True:
                at = text.find(needle, start, end)
                if at < 0:
                    out.append((start, end))
                    break
                left_end = at
                if attr & LSTRIP:
                    while left_end > start and text[left_end - 1] in _C_SPACE:
                        left_end -= 1
                if left_end > start:
                    out.append((start, left_end))
                out.append(tid)
                start = at + len(needle)
                if attr & RSTRIP:
                    while start < end and text[start] in _C_SPACE:
                        start += 1
                if start >= end:
                    break
        frags = out
    return frags
