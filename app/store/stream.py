"""Load a GGUF model from a stream of byte chunks straight into engine memory.

The browser gets a model as a byte stream (a fetch body, a Cache API response, a local
File): there is no file the C engine could fopen. `ModelStream` takes the chunks in
order, parses the header from the first ones, then builds the model and the runner and
copies every later byte into its tensor as it arrives, so no full extra copy of the
model is ever held:

    ms = ModelStream("gemma.gguf", file_size)
    for chunk in chunks:          # bytes-like, any size
        ms.feed(chunk)            # or: copy into ms.staging(n) and call ms.feed_staged(n)
    runner = ms.finish()          # checks that every tensor got all its bytes

Integrity: the byte count is checked against the announced size (a cut-off download
fails, naming what arrived), and when the expected sha256 is known (the model catalogue,
app/store/catalogue.py) the bytes are hashed as they pass, straight from the staging
buffer, and `finish()` refuses a model whose digest differs.

Tensors the engine repacks for faster mat-muls must be written whole; those are gathered
in a buffer of their own size (one weight matrix at a time) and written when complete.
Everything else is written in place, piece by piece.
"""
from __future__ import annotations

import ctypes
import time
from typing import Any, Callable

from ..gguf import GGUFFile, TensorInfo
from .stream_checks import StreamChecks


class _Target:
    __slots__ = ("start", "end", "handle", "info", "got", "stage")

    def __init__(self, start: int, handle: int, info: TensorInfo) -> None:
        self.start, self.end, self.handle, self.info = start, start + info.nbytes, handle, info
        self.got = 0
        self.stage: int | None = None  # eng_malloc'd whole-tensor buffer for repacked tensors


class ModelStream(StreamChecks):
    """Feed a GGUF byte stream; `finish()` returns the loaded runner.

    make_runner(gguf, loader) builds the runner (model + engine pools) once the header is
    known; `loader(handle, tensor_info)` only records where each tensor's bytes go.
    """

    def __init__(self, source: str, file_size: int | None = None,
                 make_runner: Callable[[GGUFFile, Callable[[int, TensorInfo], None]], Any] | None = None,
                 lib: Any = None, on_header: Callable[[GGUFFile], None] | None = None,
                 sha256: str | None = None, header: bytes | None = None) -> None:
        super().__init__(source, file_size, sha256, header)
        self.make_runner = make_runner or _default_runner
        self.on_header = on_header
        self.lib = lib
        self._targets: list[_Target] = []
        self._next = 0  # first target not yet complete (targets sorted by start)
        self._staging = 0
        self._staging_size = 0

    # -- chunk input --------------------------------------------------------------------------

    def staging(self, n: int) -> int:
        """Address of an engine-side buffer of at least n bytes: copy a chunk there (from JS:
        HEAPU8.set(chunk, addr)), then call feed_staged(n). Saves a copy through Python."""
        if n > self._staging_size:
            lib = self._lib()
            if self._staging:
                lib.eng_mfree(self._staging)
            size = max(n, 1 << 20)
            self._staging = lib.eng_malloc(size) or 0
            if not self._staging:
                raise MemoryError(f"{self.source}: cannot allocate a {size}-byte load buffer")
            self._staging_size = size
        return self._staging

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        n = len(chunk)
        if not n:
            return
        if self._hash is not None:
            self._hash.update(chunk)
        if self.gguf is None:
            self._feed_header(bytes(chunk), n)
            return
        if self._head_left:
            self._header_tail(memoryview(chunk).cast("B"))
        ptr = self.staging(n)
        ctypes.memmove(ptr, bytes(chunk) if not isinstance(chunk, (bytes, bytearray)) else chunk, n)
        self._dispatch(ptr, self.pos, n)
        self.pos += n

    def feed_staged(self, n: int) -> None:
        """The next n bytes of the stream are in the staging buffer."""
        if self._hash is not None:  # hashed in place: no copy
            self._hash.update((ctypes.c_char * n).from_address(self._staging))
        if self.gguf is None:
            self._feed_header(ctypes.string_at(self._staging, n), n)
            return
        if self._head_left:
            self._header_tail(memoryview((ctypes.c_char * n).from_address(self._staging)).cast("B"))
        self._dispatch(self._staging, self.pos, n)
        self.pos += n

    # -- internals ----------------------------------------------------------------------------

    def _lib(self) -> Any:
        if self.lib is None:
            from ..backends.ggml.library import load_library
            self.lib = load_library()
        return self.lib

    def _feed_header(self, data: bytes, n: int) -> None:
        start = self.pos
        if not self._header_feed(data, start):
            self.pos += n
            return
        self.t_header = time.perf_counter()
        if self.on_header is not None:
            self.on_header(self.gguf)
        # the runner allocates the engine pools; tensors are filled by _dispatch
        recorded: list[tuple[int, TensorInfo]] = []
        self.runner = self.make_runner(self.gguf, lambda h, info: recorded.append((h, info)))
        self.t_runner = time.perf_counter()
        self.lib = getattr(self.runner, "lib", None) or self._lib()
        base = self.gguf.data_offset
        self._targets = sorted((_Target(base + info.offset, h, info) for h, info in recorded),
                               key=lambda t: t.start)
        # every file tensor must have a destination (one may have two: a tied output head's
        # repacked copy of token_embd is filled from the same bytes)
        names = {t.name for t in self.gguf.tensors}
        self._check_registered(len({t.info.name for t in self._targets} & names))
        for t in self._targets:
            if self.lib.eng_tensor_is_repacked(t.handle):
                t.stage = -1  # allocated when its first byte arrives
        # the rest of this chunk may already hold tensor data
        ptr = self.staging(n)
        ctypes.memmove(ptr, data, n)
        self._dispatch(ptr, start, n)
        self.pos = start + n

    def _dispatch(self, ptr: int, pos: int, n: int) -> None:
        lib, end = self.lib, pos + n
        targets = self._targets
        i = self._next
        while i < len(targets) and targets[i].got == targets[i].info.nbytes:
            i += 1
        self._next = i
        while i < len(targets) and targets[i].start < end:
            t = targets[i]
            a, b = max(t.start, pos), min(t.end, end)
            if a < b:
                src, off, size = ptr + (a - pos), a - t.start, b - a
                if t.stage is None:
                    if lib.eng_tensor_set(t.handle, off, src, size) != 0:
                        raise RuntimeError(f"{self.source}: writing {t.info.name}: {lib.eng_last_error().decode()}")
                else:
                    if t.stage == -1:
                        t.stage = lib.eng_malloc(t.info.nbytes) or 0
                        if not t.stage:
                            raise MemoryError(f"{self.source}: cannot allocate {t.info.nbytes} bytes for "
                                              f"{t.info.name}")
                    ctypes.memmove(t.stage + off, src, size)
                t.got += size
                if t.got == t.info.nbytes and t.stage not in (None, -1):
                    rc = lib.eng_tensor_set(t.handle, 0, t.stage, t.info.nbytes)
                    lib.eng_mfree(t.stage)
                    t.stage = None
                    if rc != 0:
                        raise RuntimeError(f"{self.source}: writing {t.info.name}: {lib.eng_last_error().decode()}")
            i += 1

    def finish(self) -> Any:
        """End of stream: the runner, or a GGUFError naming what is missing."""
        self.close_buffers()
        self._check_complete([t.info.name for t in self._targets if t.got != t.info.nbytes])
        return self.runner

    def close_buffers(self) -> None:
        lib = self.lib
        if lib is None:
            return
        for t in self._targets:
            if t.stage not in (None, -1):
                lib.eng_mfree(t.stage)
                t.stage = None
        if self._staging:
            lib.eng_mfree(self._staging)
            self._staging, self._staging_size = 0, 0

    def abort(self) -> None:
        """Drop a partial load (frees the runner's engine memory too)."""
        self.close_buffers()
        if self.runner is not None and hasattr(self.runner, "close"):
            self.runner.close()
        self.runner = None


def _default_runner(gguf: GGUFFile, loader: Callable[[int, TensorInfo], None]) -> Any:
    from ..backends.ggml.runner import GGMLRunner
    from ..models import model_for
    return GGMLRunner(model_for(gguf), loader=loader)
