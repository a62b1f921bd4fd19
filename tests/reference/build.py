"""Build the llama.cpp oracle (libllama + tests/reference/llama_ref.cpp) into the cache.

Keyed by the pinned sdist and a hash of the driver's source, so a clean machine builds
it once (10-15 min on 2 cores) and later runs reuse it. Prints the binary's path.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from wasm_ext.sources import SDIST_VERSION, cache_root, llama_cpp_dir  # noqa: E402


def reference_binary() -> Path:
    key = hashlib.sha256((HERE / "llama_ref.cpp").read_bytes() + (HERE / "CMakeLists.txt").read_bytes()).hexdigest()[:12]
    build = cache_root() / f"llama-ref-{SDIST_VERSION}-{key}"
    exe = build / "llama_ref"
    if exe.exists():
        return exe
    src = llama_cpp_dir()
    jobs = str(os.cpu_count() or 2)
    build.mkdir(parents=True, exist_ok=True)
    log = build.parent / (build.name + ".log")
    with open(log, "w") as out:
        for cmd in (["cmake", "-S", str(HERE), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", f"-DLLAMA_CPP_DIR={src}"],
                    ["cmake", "--build", str(build), "--target", "llama_ref", "-j", jobs]):
            if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                raise RuntimeError(f"llama.cpp reference build failed: see {log}")
    return exe


if __name__ == "__main__":
    print(reference_binary())
