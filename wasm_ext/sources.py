"""Fetch the pinned ggml / llama.cpp sources (never committed) into a cache dir.

The sources come from the PyPI sdist of llama-cpp-python, which vendors llama.cpp
(commit 0c1e570, 2026-10-01) with ggml, gguf-py and the tokenizer test vocabularies.
The archive is pinned by version and sha256; the extracted tree is keyed by both.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST_NAME = "llama-cpp-python"
SDIST_VERSION = "0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
SDIST_FILE = f"llama_cpp_python-{SDIST_VERSION}.tar.gz"


def cache_root() -> Path:
    """Build cache outside the repo (override with PYLLM_CACHE)."""
    return Path(os.environ.get("PYLLM_CACHE", Path.home() / ".cache" / "pyllm"))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sdist_path() -> Path:
    """Download the sdist with pip (if not cached) and verify its sha256."""
    dest = cache_root() / "sdist"
    path = dest / SDIST_FILE
    if not path.exists():
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:",
             "--no-build-isolation", f"{SDIST_NAME}=={SDIST_VERSION}", "-d", str(dest)],
            check=True, stdout=subprocess.DEVNULL)
    digest = file_sha256(path)
    if digest != SDIST_SHA256:
        path.unlink()
        raise RuntimeError(f"{path}: sha256 {digest} does not match the pinned {SDIST_SHA256}")
    return path


def llama_cpp_dir() -> Path:
    """Path of the vendored llama.cpp tree, extracted once per pinned version+hash."""
    root = cache_root() / f"src-{SDIST_VERSION}-{SDIST_SHA256[:12]}"
    tree = root / f"llama_cpp_python-{SDIST_VERSION}" / "vendor" / "llama.cpp"
    if (root / ".complete").exists():
        return tree
    archive = sdist_path()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        os.replace(Path(tmp) / f"llama_cpp_python-{SDIST_VERSION}", root / f"llama_cpp_python-{SDIST_VERSION}")
    (root / ".complete").write_text(SDIST_SHA256)
    return tree


if __name__ == "__main__":
    print(llama_cpp_dir())
