"""Rendered conversation text -> token ids, reusing the tokens the model already has.

A chat re-renders the whole conversation each turn. Tokenizing it from scratch would
re-tokenize the model's own replies, which need not give back the tokens it generated
(and then the cached state could not be reused). Like llama.cpp's CLI, we keep
checkpoints of (text, tokens) known to belong together and tokenize only the new text
after the longest checkpoint the rendering starts with, provided that new text begins
with a special token (so the split point is one the tokenizer would make anyway).
Otherwise the text is tokenized whole, and the state reuse falls back to the longest
common prefix of tokens.
"""
from __future__ import annotations

from typing import Any

MAX_CHECKPOINTS = 8


class PromptTokens:
    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer
        self.checkpoints: list[tuple[str, list[int]]] = []
        bos = tokenizer.bos_id
        self._bos_text = tokenizer.token_text(bos) if bos is not None and tokenizer.add_bos else ""

    def whole(self, text: str) -> list[int]:
        """Tokenize a full prompt: BOS per the model unless the text already starts with it."""
        add_special = not (self._bos_text and text.startswith(self._bos_text))
        return self.tok.encode(text, add_special=add_special, parse_special=True)

    def _starts_special(self, suffix: str, ids: list[int]) -> bool:
        first = ids[0] if ids else None
        return (first is not None and self.tok.token_to_piece(first, special=False) == b""
                and suffix.startswith(self.tok.token_text(first)))

    def tokens(self, text: str) -> list[int]:
        for ctext, ctokens in sorted(self.checkpoints, key=lambda c: -len(c[0])):
            if not text.startswith(ctext):
                continue
            suffix = text[len(ctext):]
            if not suffix:
                return list(ctokens)
            ids = self.tok.encode(suffix, add_special=False, parse_special=True)
            if self._starts_special(suffix, ids):
                return ctokens + ids
        return self.whole(text)

    def remember(self, text: str, tokens: list[int]) -> None:
        self.checkpoints = [c for c in self.checkpoints if c[0] != text][-(MAX_CHECKPOINTS - 1):]
        self.checkpoints.append((text, list(tokens)))

    def forget(self) -> None:
        self.checkpoints.clear()
