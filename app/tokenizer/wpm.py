"""WordPiece (tokenizer.ggml.model = bert), as llama.cpp does it.

BERT's basic normalisation first (optional lowercase and accent stripping, controls
dropped, punctuation and CJK ideographs split into one-character words), then each word,
prefixed with U+2581, is covered greedily by the longest vocabulary entries; a word that
cannot be covered becomes the unknown token.
"""
from __future__ import annotations

import unicodedata

from .unicode_classes import MARK, PUNCT, WHITESPACE, representative
from .vocab import Vocab

# CJK ideograph blocks BERT isolates (as in BERT's reference code and llama.cpp).
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_cjk(cp: int) -> bool:
    return any(a <= cp <= b for a, b in _CJK)


def _is_control(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] == "C" and cat != "Cn"


def _nfd_first(ch: str) -> str:
    """First codepoint of the NFD form (llama.cpp maps each codepoint to that one)."""
    return unicodedata.normalize("NFD", ch)[0]


def _lower(ch: str) -> str:
    low = ch.lower()
    return low if len(low) == 1 else low[0]  # simple case mapping (U+0130 -> "i")


class WPM:
    def __init__(self, vocab: Vocab) -> None:
        self.t2i = vocab.token_to_id
        self.unk = vocab.ids.get("unk")
        self.lowercase = vocab.wpm_lowercase
        self.strip_accents = vocab.wpm_strip_accents
        self.max_len = max(len(t) for t in vocab.tokens)

    def words(self, text: str) -> list[str]:
        words: list[str] = [""]
        for ch in text:
            if self.strip_accents:
                ch = _nfd_first(ch)
            cp = ord(ch)
            if cp in WHITESPACE:
                if words[-1]:
                    words.append("")
                continue
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            rep = ch if cp < 128 else representative(cp)
            if self.strip_accents and rep == MARK:
                continue
            s = _lower(ch) if self.lowercase else ch
            is_punct = rep == PUNCT or (cp < 128 and (unicodedata.category(ch)[0] in "PS"))
            if is_punct or _is_cjk(cp):
                if words[-1]:
                    words.append("")
                words[-1] = s
                words.append("")
            else:
                words[-1] += s
        if not words[-1]:
            words.pop()
        return words

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        t2i = self.t2i
        for word in self.words(text):
            word = "\u2581" + word
            n = len(word)
            start = len(out)
            i = 0
            while i < n:
                for j in range(min(n, i + self.max_len), i, -1):
                    tid = t2i.get(word[i:j])
                    if tid is not None:
                        out.append(tid)
                        i = j
                        break
                else:
                    del out[start:]  # the word cannot be covered: drop its pieces
                    break
            if len(out) == start:
                out.append(self.unk)
        return out

