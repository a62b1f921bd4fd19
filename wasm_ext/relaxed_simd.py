"""Relaxed SIMD opcodes for Debian's Emscripten (clang 14).

Clang 14 compiles `__builtin_wasm_fma_f32x4(a, b, c)` (a*b + c) to the relaxed-SIMD
proposal's pre-standard encoding, `0xfd 0xaf 0x01` ("f32x4.fma"). The standard, which every
engine shipping relaxed SIMD implements (Chrome 114+, Firefox 120+), numbers the same
operation `f32x4.relaxed_madd`, `0xfd 0x85 0x02`, and rejects the old opcode. Both
encodings are three bytes, so the instructions are rewritten in place.

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
OLD_NMADD = b"\xfd\xb0\x01"  # clang 14: f32x4.fms, -(a*b) + c; not used by the engine
OBJDUMP = "llvm-objdump-14"

_INSN = re.compile(r"^\s*([0-9a-f]+):\s+fd (af|b0) 01\s+f32x4\.(fma|fms)\s*$", re.M)


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


def standardize(wasm: Path) -> int:
    """Rewrite clang 14's relaxed madd opcodes in `wasm` to the standard ones; returns how
    many. Refuses a module that uses the relaxed nmadd (not rewritten here)."""
    if shutil.which(OBJDUMP) is None:
        raise RuntimeError(f"{OBJDUMP} not found (Debian package llvm-14, a dependency of emscripten)")
    listing = subprocess.run([OBJDUMP, "-d", str(wasm)], capture_output=True, text=True, check=True).stdout
    data = bytearray(wasm.read_bytes())
    base = code_section_offset(data)
    count = 0
    for m in _INSN.finditer(listing):
        if m.group(3) != "fma":
            raise RuntimeError(f"{wasm.name}: f32x4.fms at {m.group(1)}: not supported by {__name__}")
        at = base + int(m.group(1), 16)
        if data[at:at + 3] != OLD_MADD:
            raise RuntimeError(f"{wasm.name}: expected f32x4.fma at code offset {m.group(1)}, found {data[at:at + 3].hex()}")
        data[at:at + 3] = NEW_MADD
        count += 1
    if count:
        tmp = wasm.with_name(wasm.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(wasm)
    return count


def old_opcodes(wasm: Path) -> int:
    """How many instructions still use clang 14's pre-standard relaxed-SIMD encodings."""
    listing = subprocess.run([OBJDUMP, "-d", str(wasm)], capture_output=True, text=True, check=True).stdout
    return len(_INSN.findall(listing))


# Node 20 (Debian's nodejs, which runs the Pyodide tests) has relaxed SIMD behind a flag;
# Chromium has it on by default.
NODE_WASM_FLAGS = ("--experimental-wasm-relaxed-simd",)
