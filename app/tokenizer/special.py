"""Split text around special tokens before BPE/SPM (llama.cpp's tokenizer_st_partition).

Special tokens are tried longest text first; each one splits every remaining text
fragment at all its occurrences. Control and unknown tokens are only recognised when
the caller asks (`parse_special`); user-defined tokens always are. A token flagged
lstrip/rstrip eats the ASCII whitespace to its left/right.
"""
from __future__ import annotations

from .vocab import CONTROL, LSTRIP, RSTRIP, UNKNOWN, Vocab

_C_SPACE = " \t\n\v\f\r"  # C isspace() in the "C" locale
_PREFIX = 2  # specials are grouped by their first characters for a cheap "absent" test


class SpecialSplitter:
    def __init__(self, vocab: Vocab) -> None:
        self.tokens = vocab.tokens
        self.attrs = vocab.attrs
        self.order = vocab.special_ids  # longest first
        self.prefix = {tid: vocab.tokens[tid][:_PREFIX] for tid in self.order}

    def split(self, text: str, parse_special: bool) -> list:
        """Fragments of `text` in order: token ids (int) and (start, end) spans of raw text."""
        if not text:
            return []
        frags: list = [(0, len(text))]
        present: dict[str, bool] = {}
        tokens, attrs = self.tokens, self.attrs
        for tid in self.order:
            attr = attrs[tid]
            if not parse_special and attr & (CONTROL | UNKNOWN):
                continue
            prefix = self.prefix[tid]
            seen = present.get(prefix)
            if seen is None:
                seen = present[prefix] = prefix in text
            if not seen:
                continue  # most specials share a prefix that the text never contains
            needle = tokens[tid]
            if needle not in text:
                continue
            frags = self._split_on(text, frags, tid, needle, attr)
        return frags

    @staticmethod
    def _split_on(text: str, frags: list, tid: int, needle: str, attr: int) -> list:
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
        return out
