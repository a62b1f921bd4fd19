"""Unicode property classes for the pre-tokenizers, built from `unicodedata` (no `regex`).

llama.cpp does not run its pre-tokenizer regexes on the raw text. It gives every codepoint
a category flag (\\p{L}, \\p{N}, \\p{P}, \\p{M}, \\p{S}, whitespace, other) and matches
ASCII-only regexes against a *collapsed* text in which each non-ASCII codepoint stands as
one representative character for its class. We do the same: `collapse(text)` returns a
string of the same length where ASCII is kept and every other codepoint becomes one of
the representatives below, so Python's `re` can run patterns over small, fixed classes
and the match offsets cut the original text. Categories come from `unicodedata`, looked
up once per distinct codepoint and cached.
"""
from __future__ import annotations

import unicodedata

from .unicode_delta import PINNED_RANGES

# Representatives of the collapsed text (the same code units llama.cpp uses).
OTHER = "\xd0"  # controls, separators that are not whitespace, unassigned, private use
NUMBER = "\xd1"
LETTER = "\xd2"
PUNCT = "\xd3"
MARK = "\xd4"
SYMBOL = "\xd5"
SPACE = "\x0b"  # non-ASCII whitespace collapses to vertical tab, which `\s` matches

# The Unicode White_Space property (PropList.txt); llama.cpp's `\s` is exactly this set.
WHITESPACE = frozenset(
    [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
    + list(range(0x2000, 0x200B)))

_BY_MAJOR = {"L": LETTER, "N": NUMBER, "P": PUNCT, "M": MARK, "S": SYMBOL}

# llama.cpp's classes follow Unicode 15.1; where this Python's unicodedata (14.0 on
# CPython 3.11, 16.0 in Pyodide's 3.14) disagrees, the pinned class wins, so every
# runtime splits text exactly like llama.cpp.
_PINNED = {cp: _BY_MAJOR.get(c, OTHER) for a, b, c in PINNED_RANGES for cp in range(a, b + 1)}

# Regex classes over the collapsed alphabet (for use inside [...]).
ASCII_WS = "\\t\\n\\x0b\\x0c\\r "
CLASS = {
    "L": "A-Za-z" + LETTER,
    "N": "0-9" + NUMBER,
    "P": "!-#%-*,-/:;?@\\[-\\]_{}" + PUNCT,
    "M": MARK,
    "S": "$+<->^`|~" + SYMBOL,
    "s": ASCII_WS,
}


def representative(cp: int) -> str:
    """Collapsed stand-in for a non-ASCII codepoint."""
    if cp in WHITESPACE:
        return SPACE
    rep = _PINNED.get(cp)
    if rep is not None:
        return rep
    return _BY_MAJOR.get(unicodedata.category(chr(cp))[0], OTHER)


class _CollapseTable(dict):
    """str.translate table filled lazily: one unicodedata lookup per distinct codepoint."""

    def __missing__(self, cp: int) -> str:
        rep = chr(cp) if cp < 128 else representative(cp)
        self[cp] = rep
        return rep


class _WideTable(dict):
    """Only non-ASCII whitespace changes (to \\x0b), as llama.cpp does for its wide regexes."""

    def __missing__(self, cp: int) -> int:
        out = 0x0B if cp >= 128 and cp in WHITESPACE else cp
        self[cp] = out
        return out


_COLLAPSE = _CollapseTable()
_WIDE = _WideTable()


def collapse(text: str) -> str:
    """Same-length text with each non-ASCII codepoint replaced by its class representative."""
    return text if text.isascii() else text.translate(_COLLAPSE)


def widen(text: str) -> str:
    """Same-length text with non-ASCII whitespace replaced by \\x0b, other codepoints kept."""
    return text if text.isascii() else text.translate(_WIDE)


def is_whitespace(cp: int) -> bool:
    return cp in WHITESPACE
