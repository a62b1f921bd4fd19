"""Token ids back to bytes: llama.cpp's token_to_piece and detokenize."""
from __future__ import annotations

from .bpe import UNICODE_TO_BYTE
from .vocab import BYTE, CONTROL, NORMAL, UNKNOWN, USER_DEFINED, Vocab

_HIDDEN = UNKNOWN | CONTROL  # not rendered unless `special`


class Pieces:
    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self._cache: list[bytes | None] = [None] * len(vocab.tokens)

    def piece(self, tid: int, special: bool = True) -> bytes:
        """Bytes of one token; control/unknown tokens are empty unless `special`."""
        attr = self.vocab.attrs[tid]
        if not special and attr & _HIDDEN:
            return b""
        out = self._cache[tid]
        if out is None:
            out = self._cache[tid] = self._render(tid, attr)
        return out

    def _render(self, tid: int, attr: int) -> bytes:
        v = self.vocab
        text = v.tokens[tid]
        if attr & (_HIDDEN | USER_DEFINED):
            return text.encode("utf-8")
        if attr & NORMAL:
            if v.is_spm or v.is_wpm or v.escape_whitespaces:
                return text.replace("\u2581", " ").encode("utf-8")
            return _gpt2_decode(text)
        if attr & BYTE:
            return bytes([int(text[3:5], 16)])
        return b""  # unused / undefined tokens render as nothing

    def detokenize(self, ids: list[int], remove_special: bool = False, unparse_special: bool = False) -> bytes:
        """llama_detokenize: pieces joined, leading prefix space dropped, spaces cleaned up."""
        v = self.vocab
        ids = list(ids)
        remove_space = v.add_space_prefix
        if remove_special and v.add_bos and ids and ids[0] == v.ids["bos"]:
            remove_space = False
            ids = ids[1:]
        if remove_special and v.add_eos and ids and ids[-1] == v.ids["eos"]:
            ids = ids[:-1]
        parts = []
        for tid in ids:
            p = self.piece(tid, unparse_special)
            if remove_space and p.startswith(b" "):
                p = p[1:]
            remove_space = False
            parts.append(p)
        text = b"".join(parts)
        return _clean_spaces(text) if v.clean_spaces else text


def _gpt2_decode(text: str) -> bytes:
    out = bytearray()
    for ch in text:
        b = UNICODE_TO_BYTE.get(ch)
        if b is not None:
            out.append(b)
        else:  # llama.cpp's marker for a character outside the byte alphabet
            out += b"[UNK_BYTE_0x" + ch.encode("utf-8").hex().encode() + text.encode("utf-8") + b"]"
    return bytes(out)


def _clean_spaces(t: bytes) -> bytes:
    """clean_up_tokenization_spaces, in llama.cpp's three passes over bytes."""
    if not t:
        return t
    # " ?", " !", " .", " ,": drop the space
    buf = bytearray(t[:1])
    for i in range(1, len(t)):
        x = t[i]
        if t[i - 1] == 0x20 and x in b"?!.,":
            buf.pop()
        buf.append(x)
    # " ' " -> "'"
    src = bytearray(buf)
    buf = bytearray(src[:1])
    i = 1
    while i < len(src):
        x = src[i]
        if x == 0x27 and i + 1 < len(src) and src[i - 1] == 0x20 and src[i + 1] == 0x20:
            buf.pop()
            buf.append(x)
            src[i + 1] = 0  # llama.cpp zeroes the dropped space in place; later checks see it
            i += 2
            continue
        buf.append(x)
        i += 1
    # " 's", " 'm", " 're", " 've": drop the space
    t = bytes(buf)
    buf = bytearray(t[:1])
    for i in range(1, len(t)):
        x = t[i]
        if t[i - 1] == 0x20 and x == 0x27 and i + 1 < len(t):
            x1 = t[i + 1]
            if x1 in b"sm" or (i + 2 < len(t) and t[i + 1:i + 3] in (b"re", b"ve")):
                buf.pop()
        buf.append(x)
    return bytes(buf)
