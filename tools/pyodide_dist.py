"""The pinned Pyodide core (npm `pyodide@314.0.7`) unpacked into the cache, for running
code inside real Pyodide under Node (tests) without any CDN.

    python3 tools/pyodide_dist.py     # prints the directory holding pyodide.mjs
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from wasm_ext.sources import cache_root  # noqa: E402

PYODIDE_VERSION = "314.0.7"
PYODIDE_TGZ = f"pyodide-{PYODIDE_VERSION}.tgz"
PYODIDE_SHA256 = "66b7949e5a0cba2250b586d7e368bf12fb482800748d182c4618254b685ffaa0"


def pyodide_dir() -> Path:
    root = cache_root() / f"pyodide-{PYODIDE_VERSION}"
    dist = root / "package"
    if (root / ".complete").exists():
        return dist
    root.mkdir(parents=True, exist_ok=True)
    tgz = root / PYODIDE_TGZ
    if not tgz.exists():
        subprocess.run(["npm", "pack", "--silent", f"pyodide@{PYODIDE_VERSION}", "--pack-destination", str(root)],
                       check=True, stdout=subprocess.DEVNULL)
    digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
    if digest != PYODIDE_SHA256:
        tgz.unlink()
        raise RuntimeError(f"{tgz}: sha256 {digest} does not match the pinned {PYODIDE_SHA256}")
    with tarfile.open(tgz) as tar:
        tar.extractall(root, filter="data")
    (root / ".complete").write_text("ok\n")
    return dist


if __name__ == "__main__":
    print(pyodide_dir())
