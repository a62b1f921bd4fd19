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

import hashlib
import time
from typing import Any, Callable

from ...gguf import GGUFError, GGUFFile, GGUFParser
from ...store.staging import StagedFeed
from .weights import WeightSink


class GPUModelStream(StagedFeed):
    """Feed a GGUF byte stream; `finish()` returns the loaded WebGPURunner.

    make_runner(gguf, loader) builds the runner once the header is known; `loader(sink)`
    only collects the tensors' sinks (their bytes come later, from the stream)."""

    def __init__(self, source: str, file_size: int | None = None,
                 make_runner: Callable[[GGUFFile, Callable[[WeightSink], None]], Any] | None = None,
                 sha256: str | None = None) -> None:
        if make_runner is None:
            raise ValueError("GPUModelStream needs make_runner (a WebGPURunner on an open device)")
        self.source, self.file_size = source, file_size
        self.expected_sha256 = sha256.lower() if sha256 else None
        self._hash = hashlib.sha256() if sha256 else None  # as ModelStream: hashed as the bytes pass
        self.parser = GGUFParser(source, file_size)
        self.make_runner = make_runner
        self.pos = 0  # absolute offset of the next byte
        self.gguf: GGUFFile | None = None
        self.runner: Any = None
        self._sinks: list[tuple[int, WeightSink]] = []  # (absolute start, sink), by start
        self._next = 0
        self._buf = bytearray(0)
        self.t_start = time.perf_counter()
        self.t_header = 0.0
        self.t_runner = 0.0  # the load's phases, as ModelStream's (the worker reports them)

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
            if not self.parser.feed(bytes(mv)):
                return
            self._header_done()
        self._dispatch(mv, start)

    @property
    def header_done(self) -> bool:
        return self.gguf is not None

    @property
    def bytes_needed(self) -> int | None:
        return None if self.gguf is None else self.gguf.data_offset + self.gguf.data_size

    # -- internals --------------------------------------------------------------------------------

    def _header_done(self) -> None:
        self.gguf = self.parser.finish()
        self.t_header = time.perf_counter()
        sinks: list[WeightSink] = []
        self.runner = self.make_runner(self.gguf, sinks.append)
        self.t_runner = time.perf_counter()
        if len(sinks) != len(self.gguf.tensors):
            raise GGUFError(f"{self.source}: the runner registered {len(sinks)} of {len(self.gguf.tensors)} tensors")
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
        if self.gguf is None:
            self.parser.finish()  # raises: truncated header
            raise GGUFError(f"{self.source}: incomplete header")
        missing = [s for _, s in self._sinks if not s.done]
        self._buf = bytearray(0)
        if missing:
            raise GGUFError(f"{self.source}: truncated file: got {self.pos} bytes, the tensors need "
                            f"{self.bytes_needed} ({len(missing)} tensor(s) incomplete, first {missing[0].info.name})")
        if self.file_size and self.pos != self.file_size:
            raise GGUFError(f"{self.source}: got {self.pos} bytes, expected {self.file_size}: the download is "
                            f"incomplete or not the file the catalogue describes")
        if self._hash is not None and self._hash.hexdigest() != self.expected_sha256:
            raise GGUFError(f"{self.source}: sha256 mismatch: the {self.pos} bytes received hash to "
                            f"{self._hash.hexdigest()}, expected {self.expected_sha256} (a damaged or changed "
                            f"file; it is not kept)")
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
