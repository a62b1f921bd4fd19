"""The engine's C API served by the pthreads module (a separate wasm instance with its own
memory, driven through JS), with the same attributes as app.backends.ggml.library.Library.

Pyodide itself has no threads, so the multi-threaded engine cannot be a side module:
Python calls its exports through JS (`bridge.mod._eng_*`), and pointer arguments, which
always point into Pyodide's memory on the Python side (arrays, ctypes buffers, the
ModelStream staging buffer), are copied across through a scratch buffer in the engine's
memory by web/engine_bridge.js. Plain int/float functions are called directly.
"""
from __future__ import annotations

import ctypes
from typing import Any

from ..backends.ggml.library import _SIGNATURES, EngineError

_PTR_FUNCS = {"eng_tensor_set", "eng_tensor_get", "eng_tensor_load_file", "eng_tensor_set_name", "eng_malloc",
              "eng_mfree", "eng_sampler_set_bias", "eng_sampler_sample", "eng_sampler_candidates"}


class JsLibrary:
    """Library-compatible wrapper of the pthreads engine module (see web/engine_bridge.js)."""

    def __init__(self, bridge: Any) -> None:
        self.bridge, self.mod = bridge, bridge.mod
        self.path = "pyllm_engine_mt (pthreads)"
        self.pool_size = int(bridge.poolSize or 0)
        self._scratch, self._scratch_n = 0, 0
        self._buffers: dict[int, Any] = {}
        self._error = b""
        for name, (res, args) in _SIGNATURES.items():
            if name in _PTR_FUNCS or hasattr(type(self), name):
                continue
            fn = getattr(self.mod, "_" + name, None)
            if fn is None:
                continue
            if res is ctypes.c_char_p:
                setattr(self, name, self._string_result(fn))
            else:
                setattr(self, name, fn)

    # -- helpers ------------------------------------------------------------------------------------

    def _string_result(self, fn: Any) -> Any:
        bridge = self.bridge
        return lambda *a: bridge.str(fn(*a)).encode()

    def _scratch_for(self, n: int) -> int:
        if n > self._scratch_n:
            if self._scratch:
                self.mod._free(self._scratch)
            size = max(int(n), 1 << 16)
            self._scratch = int(self.mod._malloc(size))
            if not self._scratch:
                raise MemoryError(f"the engine cannot allocate a {size}-byte transfer buffer")
            self._scratch_n = size
        return self._scratch

    def error(self) -> str:
        if self._error:
            return self._error.decode()
        return self.bridge.str(self.mod._eng_last_error())

    def eng_last_error(self) -> bytes:
        return self._error or self.bridge.str(self.mod._eng_last_error()).encode()

    def check(self, value: int, what: str) -> int:
        if value < 0:
            raise EngineError(f"{what}: {self.error()}")
        return value

    # -- threads: never ask for more threads than the started workers (it would hang) ---------------

    def eng_new(self, n_threads: int) -> int:
        if n_threads > self.pool_size + 1:
            self._error = f"{n_threads} threads need {n_threads - 1} started workers; this engine has " \
                          f"{self.pool_size}".encode()
            return -1
        self._error = b""
        return self.mod._eng_new(n_threads)

    def eng_set_threads(self, eng: int, n_threads: int) -> int:
        if n_threads > self.pool_size + 1:
            self._error = f"{n_threads} threads need {n_threads - 1} started workers; this engine has " \
                          f"{self.pool_size}".encode()
            return -1
        self._error = b""
        return self.mod._eng_set_threads(eng, n_threads)

    # -- functions with pointers ---------------------------------------------------------------------

    def eng_tensor_set(self, t: int, offset: float, src: int, nbytes: float) -> int:
        n = int(nbytes)
        p = self._scratch_for(n)
        self.bridge.copyIn(p, int(src), n)
        return self.mod._eng_tensor_set(t, offset, p, n)

    def eng_tensor_get(self, t: int, offset: float, dst: int, nbytes: float) -> int:
        n = int(nbytes)
        p = self._scratch_for(n)
        rc = self.mod._eng_tensor_get(t, offset, p, n)
        if rc == 0:
            self.bridge.copyOut(int(dst), p, n)
        return rc

    def eng_tensor_load_file(self, t: int, path: bytes, offset: float, nbytes: float) -> int:
        self._error = b"the pthreads engine cannot open files: stream the model (app.store.ModelStream)"
        return -1

    def eng_tensor_set_name(self, t: int, name: bytes) -> int:
        p = self.bridge.newString(name.decode() if isinstance(name, bytes) else str(name))
        try:
            return self.mod._eng_tensor_set_name(t, p)
        finally:
            self.mod._free(p)

    def eng_malloc(self, nbytes: float) -> int:
        """Staging memory on the Python side (ModelStream copies into it with ctypes)."""
        buf = ctypes.create_string_buffer(int(nbytes))
        ptr = ctypes.addressof(buf)
        self._buffers[ptr] = buf
        return ptr

    def eng_mfree(self, ptr: int) -> None:
        self._buffers.pop(int(ptr or 0), None)

    def eng_sampler_set_bias(self, s: int, ids: int | None, bias: int | None, n: int) -> int:
        if not n:
            return self.mod._eng_sampler_set_bias(s, 0, 0, 0)
        p = self._scratch_for(8 * n)
        self.bridge.copyIn(p, int(ids), 4 * n)
        self.bridge.copyIn(p + 4 * n, int(bias), 4 * n)
        return self.mod._eng_sampler_set_bias(s, p, p + 4 * n, n)

    def eng_sampler_sample(self, s: int, logits: int, row: int, recent: int | None, n: int) -> int:
        if not n or not recent:
            return self.mod._eng_sampler_sample(s, logits, row, 0, 0)
        p = self._scratch_for(4 * n)
        self.bridge.copyIn(p, int(recent), 4 * n)
        return self.mod._eng_sampler_sample(s, logits, row, p, n)

    def eng_sampler_candidates(self, s: int, ids: int | None, probs: int | None, limit: int) -> int:
        if not ids or not probs:
            return self.mod._eng_sampler_candidates(s, 0, 0, limit)
        p = self._scratch_for(8 * limit)
        n = self.mod._eng_sampler_candidates(s, p, p + 4 * limit, limit)
        if n > 0:
            self.bridge.copyOut(int(ids), p, 4 * n)
            self.bridge.copyOut(int(probs), p + 4 * limit, 4 * n)
        return n
