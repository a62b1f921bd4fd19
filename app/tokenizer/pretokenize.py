"""Pre-tokenizers for byte-level BPE, selected by `tokenizer.ggml.pre`.

Each pre-tokenizer is a list of regexes applied one after another, each splitting the
pieces left by the previous one (matches and the gaps between them both become pieces),
as llama.cpp's unicode_regex_split does. The regexes are written in the notation of the
models' tokenizer.json (\\p{L}, \\s, ...); `_translate` turns them into Python `re` patterns
over the collapsed text of unicode_classes (a pattern that names a Unicode class runs on
the collapsed text, one without runs on the text with non-ASCII whitespace folded to
\\x0b, which is what llama.cpp's std::regex fallback sees too).

llama.cpp hand-codes the gpt2/llama3/qwen2/qwen35 patterns; on the collapsed text their
hand-coded splitters and the plain regexes give the same pieces, so one mechanism serves.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .pre_patterns import PRE_TOKENIZERS, PreSpec
from .unicode_classes import ASCII_WS, CLASS, collapse, widen

# llama.cpp maps the letter subcategories to the whole letter class.
_CLASS_ALIAS = {"Lu": "L", "Ll": "L", "Lt": "L", "Lm": "L", "Lo": "L"}


def _translate(expr: str) -> str:
    """llama.cpp/tokenizer.json regex notation -> Python `re` over the collapsed alphabet."""
    out: list[str] = []
    inside = False
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == "\\" and i + 1 < len(expr):
            nxt = expr[i + 1]
            if nxt == "p" and expr.startswith("{", i + 2):
                end = expr.index("}", i)
                members = CLASS[_CLASS_ALIAS.get(expr[i + 3:end], expr[i + 3:end])]
                out.append(members if inside else "[" + members + "]")
                i = end + 1
                continue
            if nxt == "s":
                out.append(ASCII_WS if inside else "[" + ASCII_WS + "]")
                i += 2
                continue
            if nxt == "d":  # ECMAScript \d is ASCII only (Python's would take any Nd digit)
                out.append("0-9" if inside else "[0-9]")
                i += 2
                continue
            if nxt == "S" and not inside:
                out.append("[^" + ASCII_WS + "]")
                i += 2
                continue
            out.append(expr[i:i + 2])
            i += 2
            continue
        if c == "[" and not inside:
            inside = True
        elif c == "]" and inside:
            inside = False
        elif c == "$" and not inside:
            c = r"\Z"  # ECMAScript `$` is end of input; Python's would also match before a final \n
        out.append(c)
        i += 1
    return "".join(out)


@dataclass
class PreTokenizer:
    name: str
    spec: PreSpec
    _compiled: list[tuple[re.Pattern, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for expr in self.spec.regexes:
            collapsed = "\\p{" in expr  # llama.cpp collapses only for patterns naming a class
            self._compiled.append((re.compile(_translate(expr)), collapsed))

    def split(self, text: str) -> list[str]:
        """Pieces of `text`, in order, covering it exactly."""
        if not text:
            return []
        if len(self._compiled) == 1:
            fast = self._split_one(text)
            if fast is not None:
                return fast
        shadows: dict[bool, str] = {}
        spans = [(0, len(text))]
        for pattern, collapsed in self._compiled:
            shadow = shadows.get(collapsed)
            if shadow is None:
                shadow = shadows[collapsed] = collapse(text) if collapsed else widen(text)
            out: list[tuple[int, int]] = []
            for a, b in spans:
                last = a
                for m in pattern.finditer(shadow, a, b):
                    s, e = m.span()
                    if s == e:
                        continue
                    if s > last:
                        out.append((last, s))
                    out.append((s, e))
                    last = e
                if last < b:
                    out.append((last, b))
            spans = out
        return [text[a:b] for a, b in spans]

    def _split_one(self, text: str) -> list[str] | None:
        """One regex whose matches tile the text (the common case): findall in C, then,
        for non-ASCII text, the same lengths cut from the original. None if there are gaps."""
        pattern, collapsed = self._compiled[0]
        if pattern.groups:
            return None
        shadow = collapse(text) if collapsed else widen(text)
        words = pattern.findall(shadow)
        if sum(map(len, words)) != len(text):
            return None  # unmatched gaps: take the general path
        if shadow is text:
            return words
        out = []
        pos = 0
        for w in words:
            end = pos + len(w)
            out.append(text[pos:end])
            pos = end
        return out


def supported_pre_tokenizers() -> list[str]:
    return sorted(PRE_TOKENIZERS)


def get_pre_tokenizer(name: str | None) -> PreTokenizer:
    """The pre-tokenizer for `tokenizer.ggml.pre` (missing -> llama.cpp's 'default')."""
    key = name or "default"
    spec = PRE_TOKENIZERS.get(key)
    if spec is None:
        raise ValueError(
            f"tokenizer.ggml.pre = {name!r} is not supported; supported pre-tokenizers: "
            + ", ".join(supported_pre_tokenizers()))
    return PreTokenizer(key, spec)
