"""musl's sinf/cosf/sincosf (the C library of the wasm builds) as a native shared library,
to LD_PRELOAD into a native engine process.

RoPE takes its angles' cosine and sine from the C library: glibc natively, musl in wasm
(Emscripten), and the two round differently for ~1% of the angles. With musl's versions
preloaded, the native engine computes RoPE exactly as the wasm engine does, which lets a
test check that nothing else differs. The sources are the ones Debian's emscripten
package ships (the musl the wasm builds link), compiled here without FMA contraction, as
clang compiles them for wasm. Built once into the cache dir, keyed by the sources' hash.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

MUSL = Path("/usr/share/emscripten/system/lib/libc/musl")
SOURCES = ("sinf.c", "cosf.c", "sincosf.c", "__sindf.c", "__cosdf.c", "__rem_pio2f.c", "__rem_pio2_large.c")


def musl_sincos_library() -> Path:
    from wasm_ext.sources import cache_root

    files = [MUSL / "src" / "math" / name for name in SOURCES]
    libm_h = MUSL / "src" / "internal" / "libm.h"
    missing = [str(f) for f in (*files, libm_h) if not f.exists()]
    if missing:
        raise FileNotFoundError(f"musl sources of Debian's emscripten package not found: {missing}")
    key = hashlib.sha256(b"".join(f.read_bytes() for f in (*files, libm_h))).hexdigest()[:12]
    out = cache_root() / f"musl-sincos-{key}"
    lib = out / "libmusl_sincos.so"
    if lib.exists():
        return lib
    inc = out / "include"
    inc.mkdir(parents=True, exist_ok=True)
    # musl's internal header declares __sin/__cos/__tan(l) with its own signatures, which glibc's
    # math.h also declares: drop those lines (sinf/cosf use only the float kernels)
    text = re.sub(r"(?m)^(hidden )?(long )?double +__(sin|cos|tan)l? *\(.*\n", "", libm_h.read_text())
    (inc / "libm.h").write_text(text)
    tmp = out / "libmusl_sincos.so.partial"
    cc = shutil.which("gcc") or "cc"
    subprocess.run([cc, "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-builtin", "-Dhidden=",
                    f"-I{inc}", f"-I{MUSL / 'arch' / 'generic'}", "-o", str(tmp), *map(str, files), "-lm"], check=True)
    tmp.replace(lib)
    return lib
