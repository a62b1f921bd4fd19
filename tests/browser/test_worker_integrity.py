"""Download integrity in the worker's Python side: the announced size is always checked and,
when the catalogue knows it, the sha256 is computed while the bytes stream in (from the
staging buffer, as the browser feeds them) and a mismatch refuses the model."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from app.gguf import GGUFError  # noqa: E402
from app.worker import WorkerSession  # noqa: E402


def stream(s: WorkerSession, data: bytes, size: int | None, sha256: str | None, chunk: int = 65536 + 3,
           staged: bool = True) -> dict:
    ms = s.begin_load("model.gguf", size, sha256=sha256)
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        if staged:  # the browser's path: copy into the staging buffer, then feed_staged
            import ctypes
            ptr = ms.staging(len(piece))
            ctypes.memmove(ptr, piece, len(piece))
            ms.feed_staged(len(piece))
        else:
            ms.feed(piece)
    return s.finish_load()


@pytest.mark.parametrize("staged", [True, False])
def test_sha256_checked_while_streaming(staged: bool) -> None:
    from tools.testmodels import tiny

    data = tiny("llama", "Q4_0").read_bytes()
    good = hashlib.sha256(data).hexdigest()
    s = WorkerSession(lambda e: None)
    assert stream(s, data, len(data), good, staged=staged)["arch"] == "llama"
    bad = data[:-1] + bytes([data[-1] ^ 1])  # one flipped bit in the last tensor
    with pytest.raises(GGUFError, match="sha256 mismatch"):
        stream(s, bad, len(bad), good, staged=staged)
    assert s.runner is None
    with pytest.raises(GGUFError, match="expected"):  # more bytes than announced: not the described file
        stream(s, data + bytes(32), len(data), None, staged=staged)
    assert stream(s, data, len(data), None, staged=staged)["arch"] == "llama"  # no digest known: size only
    s.unload()
