"""Relaxed SIMD opcodes for Debian's Emscripten (clang 14).

Clang 14 compiles `__builtin_wasm_fma_f32x4(a, b, c)` (a*b + c) to the relaxed-SIMD
proposal's pre-standard encoding, `0xfd 0xaf 0x01` ("f32x4.fma"). The standard, which every
engine shipping relaxed SIMD implements (Chrome 114+, Firefox 120+), numbers the same
operation `f32x4.relaxed_madd`, `0xfd 0x85 0x02`, and rejects the old opcode. Both
encodings are three bytes, so the instructions are rewritten in place.

Clang 14 has no builtin for `i16x8.relaxed_dot_i8x16_i7x16_s` (0xfd 0x92 0x02). The engine
writes it as clang 14's `f32x4.relaxed_min` (0xfd 0xb4 0x01: two v128 in, one out, opaque
to the optimizers), which the engine uses for nothing else, and it is rewritten here.

The instructions are found by disassembling (llvm-objdump-14, part of Emscripten's own
llvm-14 dependency), not by searching bytes, so immediates and data that happen to contain
the byte pattern are never touched; every rewritten offset is checked to hold the old
opcode first.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

OLD_MADD = b"\xfd\xaf\x01"  # clang 14: f32x4.fma
NEW_MADD = b"\xfd\x85\x02"  # standard: f32x4.relaxed_madd (0x105)
OLD_DOT_PLACEHOLDER = b"\xfd\xb4\x01"  # clang 14: f32x4.relaxed_min (stands for the dot)
NEW_DOT = b"\xfd\x92\x02"  # standard: i16x8.relaxed_dot_i8x16_i7x16_s (0x112)
OBJDUMP = "llvm-objdump-14"

# clang 14 relaxed-SIMD mnemonic -> (its encoding, the standard one); any other is refused
_REWRITES = {"f32x4.fma": (OLD_MADD, NEW_MADD), "f32x4.relaxed_min": (OLD_DOT_PLACEHOLDER, NEW_DOT)}
_INSN = re.compile(r"^\s*([0-9a-f]+):\s+fd [0-9a-f]{2} 01\s+((?:f32x4|f64x2|i8x16|i16x8|i32x4|i64x2)\."
                   r"(?:fma|fms|relaxed_\w+|laneselect))\s*$", re.M)


def _leb128(data: bytes | bytearray, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def code_section_offset(data: bytes | bytearray) -> int:
    """File offset of the code section's contents (llvm-objdump's addresses count from here)."""
    if data[:4] != b"\0asm":
        raise ValueError("not a wasm module")
    i = 8
    while i < len(data):
        section, (size, body) = data[i], _leb128(data, i + 1)
        if section == 10:
            return body
        i = body + size
    raise ValueError("wasm module has no code section")


def standardize(wasm: Path) -> dict[str, int]:
    """Rewrite clang 14's relaxed-SIMD opcodes in `wasm` to the standard ones (see above);
    returns how many of each. Refuses a module with any other relaxed-SIMD instruction."""
    if shutil.which(OBJDUMP) is None:
        raise RuntimeError(f"{OBJDUMP} not found (Debian package llvm-14, a dependency of emscripten)")
    listing = subprocess.run([OBJDUMP, "-d", str(wasm)], capture_output=True, text=True, check=True).stdout
    data = bytearray(wasm.read_bytes())
    base = code_section_offset(data)
    counts = {name: 0 for name in _REWRITES}
    for m in _INSN.finditer(listing):
        name = m.group(2)
        if name not in _REWRITES:
            raise RuntimeError(f"{wasm.name}: {name} at code offset {m.group(1)}: not rewritten by {__name__}")
        old, new = _REWRITES[name]
        at = base + int(m.group(1), 16)
        if data[at:at + 3] != old:
            raise RuntimeError(f"{wasm.name}: expected {name} at code offset {m.group(1)}, found {data[at:at + 3].hex()}")
        data[at:at + 3] = new
        counts[name] += 1
    if any(counts.values()):
        tmp = wasm.with_name(wasm.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(wasm)
    return counts


def old_opcodes(wasm: Path) -> int:
    """How many instructions still use clang 14's pre-standard relaxed-SIMD encodings."""
    listing = subprocess.run([OBJDUMP, "-d", str(wasm)], capture_output=True, text=True, check=True).stdout
    return len(_INSN.findall(listing))


# Node 20 (Debian's nodejs, which runs the Pyodide tests) has relaxed SIMD behind a flag;
# Chromium has it on by default.
NODE_WASM_FLAGS = ("--experimental-wasm-relaxed-simd",)
