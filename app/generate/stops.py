"""Stop strings over streamed text: matched across token boundaries, never emitted.

Text is held back only while it could still be the start of a stop string.
"""
from __future__ import annotations

from typing import Sequence


class StopMatcher:
    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.held = ""
        self.matched: str | None = None

    def feed(self, text: str) -> str:
        """The text that is safe to show now. When a stop string completes, returns the
        text before it and sets `matched`; everything after is dropped."""
        if self.matched is not None:
            return ""
        buf = self.held + text
        if not self.stops:
            self.held = ""
            return buf
        first: tuple[int, str] | None = None
        for s in self.stops:
            at = buf.find(s)
            if at >= 0 and (first is None or at < first[0]):
                first = (at, s)
        if first is not None:
            self.matched, self.held = first[1], ""
            return buf[:first[0]]
        keep = self._partial(buf)
        self.held = buf[len(buf) - keep:] if keep else ""
        return buf[:len(buf) - keep]

    def _partial(self, buf: str) -> int:
        """Length of the longest end of `buf` that begins some stop string."""
        best = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(buf)), best, -1):
                if buf.endswith(s[:n]):
                    best = n
                    break
        return best

    def flush(self) -> str:
        """End of the reply without a match: the held text is ordinary text after all."""
        out, self.held = self.held, ""
        return out
