"""Unigram (tokenizer.ggml.model = t5), as llama.cpp does it.

The text is first normalised with SentencePiece's precompiled character map (a
XOR-compressed double array of byte prefixes and their replacements), spaces become
U+2581, then a Viterbi pass over the UTF-8 bytes picks the segmentation with the highest
total score; a character no token covers costs the unknown token's penalty score.
Everything works on bytes, like llama.cpp, so offsets and lengths match it exactly.
"""
from __future__ import annotations

import struct

from .vocab import NORMAL, UNUSED, USER_DEFINED, Vocab

_SPACE = "\u2581".encode()
_UNKNOWN_PENALTY = 10.0


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _utf8_len(lead: int) -> int:
    return (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4)[lead >> 4]


class CharsMap:
    """SentencePiece's precompiled normaliser: longest byte prefix -> replacement bytes."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) < 4:
            raise ValueError("tokenizer.ggml.precompiled_charsmap is too small for its header")
        size = struct.unpack_from("<I", blob, 0)[0]
        if size + 4 >= len(blob):
            raise ValueError("tokenizer.ggml.precompiled_charsmap: double array runs past the end")
        self.nodes = struct.unpack_from(f"<{size // 4}I", blob, 4)
        self.replacements = blob[4 + size:]

    def _node(self, i: int) -> int:
        if i >= len(self.nodes):
            raise ValueError("tokenizer.ggml.precompiled_charsmap: index out of the double array")
        return self.nodes[i]

    def _base(self, i: int) -> int:
        n = self._node(i)
        return (n >> 10) << ((n & (1 << 9)) >> 6)

    def longest(self, data: bytes, start: int) -> tuple[int, bytes]:
        """(bytes consumed, replacement) for the longest mapped prefix at `start`; (0, b'')."""
        best_len, best_off = 0, 0
        index = self._base(0)
        for pos in range(start, len(data)):
            c = data[pos]
            if c == 0:
                break
            index ^= c
            node = self._node(index)
            if node & ((1 << 31) | 0xFF) != c:  # LCHECK: not a child of the previous node
                break
            leaf = (node >> 8) & 1
            index ^= self._base(index)
            if leaf:
                best_len = pos - start + 1
                best_off = self._node(index) & ((1 << 31) - 1)
        if not best_len:
            return 0, b""
        end = self.replacements.find(b"\0", best_off)
        if best_off >= len(self.replacements) or end < 0:
            raise ValueError("tokenizer.ggml.precompiled_charsmap: bad replacement string")
        return best_len, self.replacements[best_off:end]


class UGM:
    def __init__(self, vocab: Vocab, charsmap: bytes | None, remove_extra_whitespaces: bool) -> None:
        self.unk = vocab.ids["unk"]
        self.add_space_prefix = vocab.add_space_prefix
        self.merge_spaces = remove_extra_whitespaces
        self.space = _SPACE if vocab.escape_whitespaces else b" "
        self.charsmap = CharsMap(charsmap) if charsmap else None
        attrs, tokens = vocab.attrs, vocab.tokens
        kept = [i for i, a in enumerate(attrs) if a & (NORMAL | USER_DEFINED | UNUSED)]
        self.matcher: dict[bytes, int] = {tokens[i].encode("utf-8"): i for i in kept}
        user = [i for i in kept if attrs[i] & USER_DEFINED]
        # user-defined tokens score 0 so they win over normal (log-probability) ones
        self.scores = list(vocab.scores)
        for i in user:
            self.scores[i] = 0.0
        raw_user = [tokens[i].encode("utf-8") for i in user]
        self.user_prefixes = {raw[:n] for raw in raw_user for n in range(1, len(raw) + 1)}
        self.user_max = max(map(len, raw_user), default=0)
        self.max_len = max(map(len, self.matcher), default=0)
        normal = [vocab.scores[i] for i, a in enumerate(attrs) if a & NORMAL]
        min_score = min(normal) if normal else 0.0
        self.unknown_score = _f32(min_score - _UNKNOWN_PENALTY)

    def _normalize_prefix(self, data: bytes, start: int) -> tuple[bytes, int]:
        # llama.cpp's trie walk stops where no user-defined token continues: the longest
        # prefix of some user-defined token, complete token or not, passes through as is.
        for n in range(min(self.user_max, len(data) - start), 0, -1):
            if data[start:start + n] in self.user_prefixes:
                return data[start:start + n], n
        if self.charsmap is not None:
            n, repl = self.charsmap.longest(data, start)
            if n:
                return repl, n
        n = min(_utf8_len(data[start]), len(data) - start)  # the input is valid UTF-8
        return data[start:start + n], n

    def normalize(self, text: str) -> bytes:
        data = text.encode("utf-8")
        out = bytearray()
        space_prepended = False
        in_word = False
        pos = 0
        while pos < len(data):
            piece, used = self._normalize_prefix(data, pos)
            for c in piece:
                if c != 0x20:
                    if not in_word:
                        in_word = True
                        if (self.add_space_prefix and not space_prepended) or self.merge_spaces:
                            out += self.space
                            space_prepended = True
                    out.append(c)
                else:
                    in_word = False
                    if not self.merge_spaces:
                        out += self.space
            pos += used
        return bytes(out)

    def encode(self, text: str) -> list[int]:
        data = self.normalize(text)
        n = len(data)
        if n == 0:
            return []
        best_score = [float("-inf")] * (n + 1)  # best total score of data[:i]
        best_token = [self.unk] * (n + 1)
        best_from = [0] * (n + 1)
        best_score[0] = 0.0
        matcher, scores = self.matcher, self.scores
        pos = 0
        while pos < n:
            units = min(_utf8_len(data[pos]), n - pos)
            base = best_score[pos]
            whole_char = False
            for end in range(pos + 1, min(n, pos + self.max_len) + 1):
                tid = matcher.get(data[pos:end])
                if tid is None:
                    continue
                if end - pos == units:
                    whole_char = True
                score = base + scores[tid]
                if score > best_score[end]:
                    best_score[end], best_token[end], best_from[end] = score, tid, pos
            if not whole_char:
                end = pos + units
                score = base + self.unknown_score
                if score > best_score[end]:
                    best_score[end], best_token[end], best_from[end] = score, self.unk, pos
            pos += units
        out: list[int] = []
        prev_unknown = False
        at = n
        while True:  # walk back; runs of unknown tokens collapse into one
            tid = best_token[at]
            unknown = tid == self.unk
            if not (prev_unknown and unknown):
                out.append(tid)
            if best_from[at] == 0:
                break
            prev_unknown = unknown
            at = best_from[at]
        out.reverse()
        return out
