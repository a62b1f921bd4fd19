"""Build the engine as a native shared library into the cache dir; print its path.

Keyed by the pinned sdist and a hash of the engine sources, so rebuilding happens only
when either changes (about 2-3 min of CPU on 2 cores).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from wasm_ext.sources import SDIST_VERSION, cache_root, llama_cpp_dir  # noqa: E402

def engine_sources() -> list[Path]:
    """Every file that goes into the engine: engine*.cpp/h and the CMake recipe."""
    return sorted([*HERE.glob("engine*.cpp"), *HERE.glob("engine*.h"), HERE / "CMakeLists.txt"])


def engine_key() -> str:
    h = hashlib.sha256()
    for path in engine_sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def native_library() -> Path:
    """The engine for this checkout's sources, built once per source hash.

    One incremental CMake tree (keyed by the pinned sdist and the CMake recipe) is shared
    by all source versions, so a change to engine*.cpp recompiles only that file; the
    finished library is copied to a directory keyed by the full source hash. A file lock
    serialises concurrent builds (several test runs or developers on one machine)."""
    out_dir = cache_root() / f"engine-native-{SDIST_VERSION}-{engine_key()}"
    lib = out_dir / "libpyllm_engine.so"
    if lib.exists():
        return lib
    # a CMake tree is bound to its source directory: one per checkout (git worktrees share the cache)
    recipe = hashlib.sha256((HERE / "CMakeLists.txt").read_bytes() + str(HERE).encode()).hexdigest()[:8]
    build = cache_root() / f"engine-native-build-{SDIST_VERSION}-{recipe}"
    build.mkdir(parents=True, exist_ok=True)
    ggml = llama_cpp_dir() / "ggml"
    log = build.parent / (build.name + ".log")
    with open(build / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.exists():
            return lib
        with open(log, "w") as out:
            for cmd in (["cmake", "-S", str(HERE), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", f"-DGGML_DIR={ggml}"],
                        ["cmake", "--build", str(build), "--target", "pyllm_engine", "-j", str(os.cpu_count() or 2)]):
                if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                    raise RuntimeError(f"engine build failed: see {log}")
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / "libpyllm_engine.so.partial"
        shutil.copy2(build / "libpyllm_engine.so", tmp)
        os.replace(tmp, lib)
    return lib


if __name__ == "__main__":
    print(native_library())
