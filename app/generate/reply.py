"""A streamed reply: iterate it for pieces of text; its fields fill in as it runs."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Iterator

from .errors import ContextFullError
from .stats import ReplyStats

# Why a reply ended: "eos" (an end-of-generation token), "stop" (a stop string), "length"
# (max_tokens), "cancelled", "context_full" (an error was raised), "error".
STOP_REASONS = ("eos", "stop", "length", "cancelled", "context_full", "error")


@dataclass
class Piece:
    text: str                  # new text, whole characters (may be "" when tokens made no text yet)
    token_ids: list[int] = field(default_factory=list)  # the tokens this text came from
    t_ms: float = 0.0          # since the reply started


class Reply:
    """One reply. `for piece in reply` streams it (once); `reply.read()` runs it to the end
    and returns the text; `reply.cancel()` stops it before the next token (or the next
    prefill batch), after which the model is ready for the next request."""

    def __init__(self, run: Callable[["Reply"], Iterator[Piece]],
                 on_done: Callable[["Reply"], None] | None = None) -> None:
        self.text = ""
        self.prompt_tokens: list[int] = []    # the token sequence this reply continues
        self.tokens: list[int] = []
        self.stop_reason: str | None = None
        self.stop_string: str | None = None   # the stop string that matched
        self.stop_token: int | None = None    # the end-of-generation token that ended it
        self.seed: int | None = None          # the sampler seed used (reproduces the reply)
        self.stats = ReplyStats()
        self.error: BaseException | None = None
        self._run, self._on_done = run, on_done
        self._gen: Iterator[Piece] | None = None
        self._cancel = False
        self.done = False

    def __iter__(self) -> Iterator[Piece]:
        if self._gen is not None:
            raise RuntimeError("a reply streams once; read .text for what it said")
        if self.done:  # closed before it started (another request took the model)
            return iter(())
        self._gen = self._drive()
        return self._gen

    async def astream(self) -> AsyncIterator[Piece]:
        """`async for piece in reply.astream()`: the same stream, giving the event loop a
        turn after every piece (in a browser worker, that lets a cancel message in)."""
        for piece in self:
            yield piece
            await asyncio.sleep(0)

    def _drive(self) -> Iterator[Piece]:
        try:
            for piece in self._run(self):
                self.text += piece.text
                yield piece
        except GeneratorExit:
            self.stop_reason = self.stop_reason or "cancelled"
            raise
        except ContextFullError as e:
            self.stop_reason, self.error = "context_full", e
            e.reply = self
            raise
        except BaseException as e:
            self.stop_reason, self.error = self.stop_reason or "error", e
            raise
        finally:
            self._finish()

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            if self._on_done is not None:
                self._on_done(self)

    def cancel(self) -> None:
        """Ask the reply to stop; safe to call from another thread or a callback."""
        self._cancel = True

    @property
    def cancel_requested(self) -> bool:
        return self._cancel

    def read(self) -> str:
        """Run to the end (or continue a started stream) and return the whole text."""
        for _ in (self if self._gen is None else self._gen):
            pass
        return self.text

    def close(self) -> None:
        """Stop now (as a cancel) and finish the bookkeeping, whether or not it started."""
        if self.done:
            return
        if self._gen is None:
            self.stop_reason = "cancelled"
            self._finish()
        else:
            self._gen.close()  # runs the stream's cleanup; a never-advanced one gets none
            if not self.done:
                self.stop_reason = self.stop_reason or "cancelled"
                self._finish()

    def __repr__(self) -> str:
        return f"Reply(done={self.done}, stop_reason={self.stop_reason!r}, text={self.text[:40]!r})"
