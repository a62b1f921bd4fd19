"""Byte-level BPE (tokenizer.ggml.model = gpt2) and SPM-style BPE (gemma4).

Each pre-tokenized piece is merged on its own: the adjacent pair with the lowest merge
rank goes first, the leftmost one on ties, one merge at a time, exactly like llama.cpp's
bigram queue. Pieces repeat a lot in real text, so their ids are cached.
"""
from __future__ import annotations

import heapq

from .pretokenize import PreTokenizer, get_pre_tokenizer
from .vocab import Vocab


def _bytes_to_unicode() -> list[str]:
    """GPT-2's reversible byte -> printable character table."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


BYTE_TO_UNICODE = _bytes_to_unicode()
UNICODE_TO_BYTE = {c: b for b, c in enumerate(BYTE_TO_UNICODE)}
_BYTE_ENCODE = {b: c for b, c in enumerate(BYTE_TO_UNICODE)}  # for bytes.translate-like use
_CACHE_LIMIT = 1 << 17
_SMALL_WORD = 256  # pieces up to this many symbols use the list scan, longer ones the heap
_NO_RANK = 1 << 62


class BPE:
    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self.t2i = vocab.token_to_id
        spec = vocab.pre_spec
        assert spec is not None
        self.pre: PreTokenizer = get_pre_tokenizer(vocab.pre)
        self.byte_encode = spec.byte_encode
        self.ignore_merges = spec.ignore_merges
        self.newline_words = vocab.pre == "gemma4"  # a run of "\n" that is a token stays whole
        # llama.cpp keys a merge by its split at the first space after position 0; the
        # first occurrence of a merge wins. We key by the merge string itself and check
        # at lookup that the left part has no space after position 0 (see _rank).
        merges = vocab.merges
        self.ranks: dict[str, int] = dict(zip(reversed(merges), range(len(merges) - 1, -1, -1)))
        self.cache: dict[str, list[int]] = {}
        # Byte-encoded symbols never hold a space (it is "Ġ"), so the split check is moot.
        self.spaced_tokens = not self.byte_encode

    def _rank(self, left: str, right: str) -> int | None:
        if self.spaced_tokens and " " in left[1:]:
            return None
        return self.ranks.get(left + " " + right)

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        cache = self.cache
        for word in self.pre.split(text):
            ids = cache.get(word)
            if ids is None:
                ids = self._encode_word(word)
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[word] = ids
            out.extend(ids)
        return out

    def _encode_word(self, word: str) -> list[int]:
        if self.byte_encode:
            word = "".join([_BYTE_ENCODE[b] for b in word.encode("utf-8")])
        t2i = self.t2i
        if self.ignore_merges and word in t2i:
            return [t2i[word]]
        if self.newline_words and word.strip("\n") == "" and word in t2i:
            return [t2i[word]]
        return self._finish(self._merge(list(word)))

    def _merge(self, syms: list[str]) -> list[str]:
        n = len(syms)
        if n < 2:
            return syms
        if n <= _SMALL_WORD:
            return self._merge_small(syms)
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        prv = list(range(-1, n - 1))
        rank = self._rank
        heap = []
        for i in range(n - 1):
            r = rank(syms[i], syms[i + 1])
            if r is not None:
                heap.append((r, i, i + 1, syms[i] + syms[i + 1]))
        heapq.heapify(heap)
        while heap:
            _, left, right, text = heapq.heappop(heap)
            a, b = syms[left], syms[right]
            if not a or not b or a + b != text:
                continue  # outdated pair
            syms[left] = text
            syms[right] = ""
            after = nxt[right]
            nxt[left] = after
            if after >= 0:
                prv[after] = left
            before = prv[left]
            if before >= 0 and (r := rank(syms[before], text)) is not None:
                heapq.heappush(heap, (r, before, left, syms[before] + text))
            if after >= 0 and (r := rank(text, syms[after])) is not None:
                heapq.heappush(heap, (r, left, after, text + syms[after]))
        return [s for s in syms if s]

    def _merge_small(self, parts: list[str]) -> list[str]:
        """Same merge order as the queue (lowest rank, then leftmost), with the scans done
        by min()/index() in C: faster for the short pieces that make up most text."""
        rank, none = self._rank, _NO_RANK
        ranks = [rank(a, b) for a, b in zip(parts, parts[1:])]
        ranks = [none if r is None else r for r in ranks]
        while ranks:
            best = min(ranks)
            if best == none:
                break
            i = ranks.index(best)
            parts[i] += parts[i + 1]
            del parts[i + 1]
            del ranks[i]
            if i > 0:
                r = rank(parts[i - 1], parts[i])
                ranks[i - 1] = none if r is None else r
            if i < len(ranks):
                r = rank(parts[i], parts[i + 1])
                ranks[i] = none if r is None else r
        return parts

    def _finish(self, syms: list[str]) -> list[int]:
        t2i = self.t2i
        out: list[int] = []
        for s in syms:
            tid = t2i.get(s)
            if tid is not None:
                out.append(tid)
                continue
            # Unknown symbol: fall back to one token per byte where the vocab has one.
            if self.byte_encode:
                out.extend(t2i[c] for c in s if c < "\x80" and c in t2i)
            else:
                for b in s.encode("utf-8"):
                    tid = t2i.get(f"<0x{b:02X}>")
                    if tid is not None:
                        out.append(tid)
        return out
