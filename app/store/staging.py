"""The byte-staging half of the model-stream protocol, for streams that parse bytes in Python
(the WebGPU stream, the GPU-or-wasm fallback): JS copies a chunk to `staging(n)` (in wasm
memory under Pyodide: HEAPU8.set(chunk, addr)), then calls `feed_staged(n)`, which passes a
view of it to the class's own `feed`."""
from __future__ import annotations

import ctypes
from typing import Any


class StagedFeed:
    _buf: bytearray = bytearray(0)

    def staging(self, n: int) -> int:
        """Address of a buffer of at least n bytes (grown, never shrunk; 1 MiB at least)."""
        if n > len(self._buf):
            self._buf = bytearray(max(n, 1 << 20))
        return ctypes.addressof(ctypes.c_char.from_buffer(self._buf))

    def feed_staged(self, n: int) -> None:
        self.feed(memoryview(self._buf)[:n])

    def feed(self, chunk: Any) -> None:
        raise NotImplementedError
