"""Streaming detokenizer for the generation loop.

Feed token ids one at a time; get back text that is always whole UTF-8 characters. A
multi-byte character split across tokens is held until its last byte arrives; bytes
that can never form a character come out as U+FFFD, exactly as a one-shot
`bytes.decode("utf-8", "replace")` of all the pieces would render them, so the
concatenated stream equals the one-shot decode.
"""
from __future__ import annotations

import codecs
from typing import Callable


class StreamDecoder:
    def __init__(self, piece: Callable[[int, bool], bytes], special: bool = False) -> None:
        self._piece = piece
        self._special = special
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, token_id: int) -> str:
        """Text completed by this token ('' while a character is still incomplete)."""
        return self._utf8.decode(self._piece(token_id, self._special))

    def flush(self) -> str:
        """End of stream: whatever is held, with an incomplete tail rendered as U+FFFD."""
        return self._utf8.decode(b"", final=True)

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a character."""
        return len(self._utf8.getstate()[0])
