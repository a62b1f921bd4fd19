"""ctypes binding of the engine's plain-C API (wasm_ext/engine.h).

The same binding loads the native shared library on the host and the Emscripten side
module inside Pyodide: every argument is an int32, float, double or pointer.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

_i32, _f32, _f64, _ptr, _str = ctypes.c_int32, ctypes.c_float, ctypes.c_double, ctypes.c_void_p, ctypes.c_char_p

# name: (restype, argtypes)
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "eng_last_error": (_str, []),
    "eng_version": (_str, []),
    "eng_system_info": (_str, []),
    "eng_new": (_i32, [_i32]),
    "eng_free": (None, [_i32]),
    "eng_set_threads": (_i32, [_i32, _i32]),
    "eng_type_supported": (_i32, [_i32]),
    "eng_set_abort_flag": (_i32, [_i32, _ptr]),
    "eng_set_abort_fn": (_i32, [_i32, _ptr]),
    "eng_pool_new": (_i32, [_i32, _i32]),
    "eng_pool_tensor": (_i32, [_i32, _i32, _f64, _f64, _f64, _f64, _i32]),
    "eng_weight_repacks": (_i32, [_i32, _i32, _f64, _f64, _f64, _f64]),
    "eng_pool_alloc": (_i32, [_i32]),
    "eng_pool_bytes": (_f64, [_i32]),
    "eng_pool_clear": (_i32, [_i32]),
    "eng_pool_free": (None, [_i32]),
    "eng_tensor_set": (_i32, [_i32, _f64, _ptr, _f64]),
    "eng_tensor_get": (_i32, [_i32, _f64, _ptr, _f64]),
    "eng_tensor_load_file": (_i32, [_i32, _str, _f64, _f64]),
    "eng_tensor_copy": (_i32, [_i32, _f64, _i32, _f64, _f64]),
    "eng_tensor_nbytes": (_f64, [_i32]),
    "eng_tensor_ne": (_f64, [_i32, _i32]),
    "eng_tensor_nb": (_f64, [_i32, _i32]),
    "eng_tensor_type": (_i32, [_i32]),
    "eng_tensor_is_repacked": (_i32, [_i32]),
    "eng_tensor_set_name": (_i32, [_i32, _str]),
    "eng_malloc": (_ptr, [_f64]),
    "eng_mfree": (None, [_ptr]),
    "eng_fill_arange": (_i32, [_i32, _f64, _i32]),
    "eng_fill_causal_mask": (_i32, [_i32, _i32, _i32, _i32, _i32]),
    "eng_argmax": (_i32, [_i32, _i32]),
    "eng_graph_new": (_i32, [_i32, _i32]),
    "eng_graph_expand": (_i32, [_i32, _i32]),
    "eng_graph_output": (_i32, [_i32, _i32]),
    "eng_graph_alloc": (_i32, [_i32]),
    "eng_graph_compute": (_i32, [_i32]),
    "eng_graph_n_nodes": (_i32, [_i32]),
    "eng_graph_bytes": (_f64, [_i32]),
    "eng_graph_free": (None, [_i32]),
    "eng_input": (_i32, [_i32, _i32, _f64, _f64, _f64, _f64]),
    "eng_get_rows": (_i32, [_i32, _i32, _i32]),
    "eng_set_rows": (_i32, [_i32, _i32, _i32, _i32]),
    "eng_mul_mat": (_i32, [_i32, _i32, _i32]),
    "eng_add": (_i32, [_i32, _i32, _i32]),
    "eng_mul": (_i32, [_i32, _i32, _i32]),
    "eng_scale": (_i32, [_i32, _i32, _f32]),
    "eng_rms_norm": (_i32, [_i32, _i32, _f32]),
    "eng_unary": (_i32, [_i32, _i32, _i32]),
    "eng_glu_split": (_i32, [_i32, _i32, _i32, _i32]),
    "eng_rope": (_i32, [_i32, _i32, _i32, _i32, _i32, _i32, _i32, _f32, _f32, _f32, _f32, _f32, _f32]),
    "eng_flash_attn": (_i32, [_i32, _i32, _i32, _i32, _i32, _f32, _f32, _f32]),
    "eng_soft_max": (_i32, [_i32, _i32, _i32, _f32, _f32]),
    "eng_view": (_i32, [_i32, _i32, _i32, _f64, _f64, _f64, _f64, _f64, _f64, _f64, _f64]),
    "eng_reshape": (_i32, [_i32, _i32, _f64, _f64, _f64, _f64]),
    "eng_permute": (_i32, [_i32, _i32, _i32, _i32, _i32, _i32]),
    "eng_transpose": (_i32, [_i32, _i32]),
    "eng_cont": (_i32, [_i32, _i32]),
    "eng_cast": (_i32, [_i32, _i32, _i32]),
    "eng_cpy": (_i32, [_i32, _i32, _i32]),
    "eng_sampler_new": (_i32, []),
    "eng_sampler_free": (None, [_i32]),
    "eng_sampler_seed": (_i32, [_i32, _i32, _i32]),
    "eng_sampler_set_chain": (_i32, [_i32, _i32, _f32, _f32, _f32, _f32, _i32]),
    "eng_sampler_set_penalties": (_i32, [_i32, _f32, _f32, _f32]),
    "eng_sampler_set_bias": (_i32, [_i32, _ptr, _ptr, _i32]),
    "eng_sampler_sample": (_i32, [_i32, _i32, _i32, _ptr, _i32]),
    "eng_sampler_candidates": (_i32, [_i32, _ptr, _ptr, _i32]),
    "eng_sampler_uniform": (_f64, [_i32]),
    # recurrent layers (wasm_ext/engine_recurrent.h)
    "eng_concat": (_i32, [_i32, _i32, _i32, _i32]),
    "eng_softplus": (_i32, [_i32, _i32]),
    "eng_l2_norm": (_i32, [_i32, _i32, _f32]),
    "eng_ssm_conv": (_i32, [_i32, _i32, _i32]),
    "eng_ssm_scan": (_i32, [_i32, _i32, _i32, _i32, _i32, _i32, _i32, _i32]),
    "eng_gated_delta_net": (_i32, [_i32, _i32, _i32, _i32, _i32, _i32, _i32]),
    "eng_rope_multi": (_i32, [_i32, _i32, _i32, _i32, _i32, _i32, _i32, _i32, _i32, _i32, _f32, _f32, _f32, _f32,
                              _f32, _f32]),
    "eng_fill_pos_multi": (_i32, [_i32, _f64, _i32]),
    "eng_tensor_zero": (_i32, [_i32]),
}

UNARY = {"tanh": 0, "gelu": 1, "silu": 2, "relu": 3, "exp": 4, "sigmoid": 5}
GLU = {"swiglu": 0, "geglu": 1}
MATMUL_WEIGHT = 1


class EngineError(RuntimeError):
    """An engine call failed; the message is the engine's own."""


class Library:
    """The loaded engine; attribute access returns checked foreign functions."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lib = ctypes.CDLL(path)
        for name, (res, args) in _SIGNATURES.items():
            fn = getattr(self._lib, name)
            fn.restype, fn.argtypes = res, args
            setattr(self, name, fn)

    def error(self) -> str:
        return (self.eng_last_error() or b"").decode("utf-8", "replace")

    def check(self, value: int, what: str) -> int:
        if value < 0:
            raise EngineError(f"{what}: {self.error()}")
        return value


_loaded: Library | None = None


def find_library() -> str:
    """Where the engine lives: $PYLLM_ENGINE_LIB, next to this package, or a host build."""
    env = os.environ.get("PYLLM_ENGINE_LIB")
    if env:
        return env
    for name in ("libpyllm_engine.so", "pyllm_engine.so"):
        local = Path(__file__).with_name(name)
        if local.exists():
            return str(local)
    try:  # a checkout on the host: build (or reuse the cached build of) the native engine
        from wasm_ext.build_native import native_library
    except ImportError as exc:
        raise EngineError("engine library not found: set PYLLM_ENGINE_LIB or build it with "
                          "`python wasm_ext/build_native.py`") from exc
    return str(native_library())


def load_library(path: str | None = None) -> Library:
    global _loaded
    if _loaded is None or (path is not None and path != _loaded.path):
        _loaded = Library(path or find_library())
    return _loaded
