"""Load a GGUF model from a stream of byte chunks straight into GPU buffers.

The WebGPU twin of app.store.stream.ModelStream, with the same calls, so the worker's
download loop (web/worker.js) drives either: copy a chunk to `staging(n)` (one chunk-sized
buffer in wasm memory), call `feed_staged(n)`, and at the end `finish()`. The header is
parsed from the first chunks; then the runner allocates every tensor's device buffers
(WeightSink) and each later byte goes to its tensor's buffer as it arrives. The model is
never whole in wasm memory, so one larger than wasm's 4 GB address space can load (GPU
memory and the browser's storage are the limits).
"""
from __future__ import annotations

import time
from typing import Any, Callable

from ...gguf import GGUFError, GGUFFile
from ...store.staging import StagedFeed
from ...store.stream_checks import StreamChecks
from .weights import WeightSink


class GPUModelStream(StagedFeed, StreamChecks):
    """Feed a GGUF byte stream; `finish()` returns the loaded WebGPURunner.

    make_runner(gguf, loader) builds the runner once the header is known; `loader(sink)`
    only collects the tensors' sinks (their bytes come later, from the stream)."""

    def __init__(self, source: str, file_size: int | None = None,
                 make_runner: Callable[[GGUFFile, Callable[[WeightSink], None]], Any] | None = None,
                 sha256: str | None = None, header: bytes | None = None) -> None:
        if make_runner is None:
            raise ValueError("GPUModelStream needs make_runner (a WebGPURunner on an open device)")
        StreamChecks.__init__(self, source, file_size, sha256, header)
        self.make_runner = make_runner
        self._sinks: list[tuple[int, WeightSink]] = []  # (absolute start, sink), by start
        self._next = 0
        self._buf = bytearray(0)

    # -- chunk input (the same calls as ModelStream) ------------------------------------------------

    def feed(self, chunk: Any) -> None:
        mv = memoryview(chunk).cast("B")
        n = len(mv)
        if not n:
            return
        if self._hash is not None:
            self._hash.update(mv)
        start = self.pos
        self.pos += n
        if self.gguf is None:
            if not self._header_feed(bytes(mv), start):
                return
            self._header_done()
        elif self._head_left:
            self._header_tail(mv)
        self._dispatch(mv, start)

    # -- internals --------------------------------------------------------------------------------

    def _header_done(self) -> None:
        self.t_header = time.perf_counter()
        sinks: list[WeightSink] = []
        self.runner = self.make_runner(self.gguf, sinks.append)
        self.t_runner = time.perf_counter()
        self._check_registered(len(sinks))
        base = self.gguf.data_offset
        self._sinks = sorted(((base + s.info.offset, s) for s in sinks), key=lambda p: p[0])

    def _dispatch(self, mv: memoryview, pos: int) -> None:
        end = pos + len(mv)
        sinks, i = self._sinks, self._next
        while i < len(sinks) and sinks[i][1].done:
            i += 1
        self._next = i
        while i < len(sinks) and sinks[i][0] < end:
            start, s = sinks[i]
            a, b = max(start + s.got, pos), min(start + s.nbytes, end)
            if a < b:
                if a != start + s.got:  # bytes between tensors (alignment padding) are skipped, never
                    raise GGUFError(f"{self.source}: {s.info.name}: bytes out of order")  # a gap inside one
                s.feed(mv[a - pos:b - pos])
                if s.done:
                    s.close()
            i += 1

    def finish(self) -> Any:
        """End of stream: the runner, or a GGUFError naming what is missing."""
        self._buf = bytearray(0)
        self._check_complete([s.info.name for _, s in self._sinks if not s.done])
        err = getattr(self.runner.device, "error", None)
        if callable(err) and (msg := err()):
            raise GGUFError(f"{self.source}: the GPU refused the weights: {msg}")
        return self.runner

    def close_buffers(self) -> None:
        self._buf = bytearray(0)

    def abort(self) -> None:
        """Drop a partial load."""
        self.close_buffers()
        if self.runner is not None:
            self.runner.close()
        self.runner = None
        self._sinks = []
