"""ggml's GELU lookup table, for exact mode's geglu.

ggml's CPU geglu does not compute gelu: it rounds x to f16 and reads a 65536-entry table
of f16 gelu values built at start-up with the C library's tanhf (GGML_GELU_FP16). A GPU
tanh puts ~6% of those values on the other side of an f16 rounding. The table is taken
from the engine itself (its gelu op over every f16 value), so it is the table of the ggml
this process runs against, wherever that is (native here, wasm in the browser).
"""
from __future__ import annotations

import array
import struct
from typing import Any

_tables: dict[int, Any] = {}


def _f16_values() -> array.array:
    """Every f16 bit pattern's value as f32 (NaN and inf patterns included; geglu only
    reads entries for -10 < x < 10)."""
    out = array.array("f", bytes(4 * 65536))
    for i in range(65536):
        out[i] = struct.unpack("<e", struct.pack("<H", i))[0]
    return out


def gelu_table(lib: Any | None = None) -> bytes:
    """The 65536 gelu values (f32, each an f16 value) ggml's geglu looks up, by bit pattern."""
    if lib is None:
        from ..ggml.library import load_library  # noqa: PLC0415
        lib = load_library()
    x = _f16_values()
    eng = lib.check(lib.eng_new(1), "engine")
    g = lib.check(lib.eng_graph_new(eng, 16), "graph")
    try:
        inp = lib.check(lib.eng_input(g, 0, 65536.0, 1.0, 1.0, 1.0), "input")
        out = lib.check(lib.eng_unary(g, inp, 1), "gelu")  # UNARY["gelu"]
        lib.check(lib.eng_graph_output(g, out), "output")
        lib.check(lib.eng_graph_alloc(g), "graph allocation")
        lib.check(lib.eng_tensor_set(inp, 0.0, x.buffer_info()[0], float(4 * 65536)), "input")
        lib.check(lib.eng_graph_compute(g), "gelu")
        y = array.array("f", bytes(4 * 65536))
        lib.check(lib.eng_tensor_get(out, 0.0, y.buffer_info()[0], float(4 * 65536)), "gelu")
    finally:
        lib.eng_graph_free(g)
        lib.eng_free(eng)
    return y.tobytes()


def gelu_table_buffer(device: Any) -> Any | None:
    """The table on `device` (made once per device); None where the engine cannot be
    loaded (a GPU-only host): geglu then computes gelu itself, not bit for bit."""
    if id(device) not in _tables:
        try:
            table = gelu_table()
        except Exception:  # noqa: BLE001 - no engine here (not built, cannot be built): plain gelu
            _tables[id(device)] = None
        else:
            buf = _tables[id(device)] = device.buffer(4 * 65536, "gelu_table")
            device.write(buf, 0, table)
    return _tables[id(device)]
