"""SentencePiece-style tokenization (tokenizer.ggml.model = llama), as llama.cpp does it.

The whole fragment (spaces already turned into U+2581) starts as single characters; the
adjacent pair whose concatenation is a token with the highest score is merged first
(leftmost on ties), until no pair forms a token. Characters left that are not tokens
fall back to byte tokens <0xXX>.
"""
from __future__ import annotations

import heapq

from .vocab import Vocab


class SPM:
    def __init__(self, vocab: Vocab) -> None:
        self.t2i = vocab.token_to_id
        self.scores = vocab.scores
        self.unk = vocab.ids.get("unk")

    def encode(self, text: str) -> list[int]:
        syms = list(text)
        n = len(syms)
        if n == 0:
            return []
        t2i, scores = self.t2i, self.scores
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        prv = list(range(-1, n - 1))
        heap = []
        for i in range(n - 1):
            tid = t2i.get(syms[i] + syms[i + 1])
            if tid is not None:
                heap.append((-scores[tid], i, i + 1, 2))
        heapq.heapify(heap)
        lens = [1] * n  # symbol length in characters (0 once merged away)
        while heap:
            _, left, right, size = heapq.heappop(heap)
            a, b = lens[left], lens[right]
            if a == 0 or b == 0 or a + b != size:
                continue  # outdated pair
            syms[left] += syms[right]
            lens[left] = size
            lens[right] = 0
            after = nxt[right]
            nxt[left] = after
            if after >= 0:
                prv[after] = left
            before = prv[left]
            if before >= 0 and (tid := t2i.get(syms[before] + syms[left])) is not None:
                heapq.heappush(heap, (-scores[tid], before, left, lens[before] + size))
            if after >= 0 and (tid := t2i.get(syms[left] + syms[after])) is not None:
                heapq.heappush(heap, (-scores[tid], left, after, size + lens[after]))
        out: list[int] = []
        i = 0
        while i != -1:
            s = syms[i]
            tid = t2i.get(s)
            if tid is not None:
                out.append(tid)
            else:
                out.extend(self._byte_token(b) for b in s.encode("utf-8"))
            i = nxt[i]
        return out

    def _byte_token(self, b: int) -> int:
        tid = self.t2i.get(f"<0x{b:02X}>")
        if tid is None and b < 0x80:
            tid = self.t2i.get(chr(b))
        if tid is None:
            if self.unk is None:
                raise ValueError(f"SPM vocab has no byte token <0x{b:02X}> and no unknown token")
            tid = self.unk
        return tid
