"""A stored model's parsed header (app/gguf/header_cache.py), the way the browser worker uses
it: the first load parses the header and hands its bytes to the model store; the next load
of the same bytes gets them back and skips the parse. That load must compute exactly what
a parsed one does, whatever the chunking, and anything but the right header (another
model's, damaged, another format) must fall back to parsing, never load a wrong model."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.gguf import GGUFParser  # noqa: E402
from app.gguf.header_cache import FORMAT, pack_header, unpack_header  # noqa: E402
from app.worker import WorkerSession  # noqa: E402


def load(session: WorkerSession, path: Path, chunk: int, header: bytes | None = None) -> dict:
    data = path.read_bytes()
    ms = session.begin_load(path.name, len(data), header=header)
    for i in range(0, len(data), chunk):
        ms.feed(data[i:i + chunk])
    return session.finish_load()


def greedy(session: WorkerSession, prompt: list[int], n: int) -> list[int]:
    r = session.runner
    r.reset()
    r.eval(prompt)
    out = [r.argmax()]
    for _ in range(n - 1):
        r.eval([out[-1]])
        out.append(r.argmax())
    return out


def same_header(a: bytes | None, b: bytes | None) -> bool:
    """Equal unpacked (marshal's bytes for equal values vary with their reference counts)."""
    ua, ub = unpack_header(a, "m"), unpack_header(b, "m")
    return ua is not None and ub is not None and ua[0] == ub[0] and ua[1] == ub[1]


def table_end(data: bytes) -> int:
    """Where the tensor table ends: a chunk ending there leaves the alignment padding (the
    header's last bytes) to the next chunk."""
    lo, hi = 1, len(data)
    while lo < hi:
        mid = (lo + hi) // 2
        if GGUFParser().feed(data[:mid]):
            hi = mid
        else:
            lo = mid + 1
    return lo


@pytest.fixture(scope="module")
def models() -> tuple[Path, Path]:
    from tools.testmodels import tiny
    return tiny("llama", "Q4_0"), tiny("qwen3", "Q8_0")


@pytest.mark.parametrize("which", [0, 1])
def test_a_stored_header_skips_the_parse_and_loads_the_same_model(models, which) -> None:
    path = models[which]
    data = path.read_bytes()
    end = table_end(data)
    if which == 1:  # this file has alignment padding after its table: the `end` chunking splits it off
        ps = GGUFParser()
        ps.feed(data)
        assert end < ps.finish().data_offset
    session = WorkerSession(lambda e: None)
    first = load(session, path, 4093)
    assert first["header_cached"] is False
    blob = session.header_blob()
    assert blob and unpack_header(blob, path.name) is not None
    parsed = session.gguf
    want = greedy(session, [1, 5, 9, 200], 12)
    # chunk sizes: odd, one that ends exactly at the tensor table (the padding comes later),
    # and the whole file at once
    for chunk in (997, end, len(data)):
        s = WorkerSession(lambda e: None)
        assert load(s, path, chunk)["header_cached"] is False
        assert same_header(s.header_blob(), blob), f"the header's digest depends on the chunking ({chunk})"
        info = load(s, path, chunk, header=blob)
        assert info["header_cached"] is True
        assert s.header_blob() is None  # nothing new to store
        assert s.gguf.metadata == parsed.metadata and s.gguf.tensors == parsed.tensors
        assert s.gguf.data_offset == parsed.data_offset
        assert greedy(s, [1, 5, 9, 200], 12) == want
        s.unload()
    session.unload()


def test_a_header_that_does_not_match_is_parsed_instead(models) -> None:
    a, b = models
    session = WorkerSession(lambda e: None)
    load(session, a, 65536)
    blob_a = session.header_blob()
    load(session, b, 65536)
    blob_b = session.header_blob()
    want_b = greedy(session, [1, 5, 9], 8)
    fmt = FORMAT.encode()
    for wrong in (blob_a,  # another model's
                  blob_b[:-7],  # cut short
                  blob_b.replace(fmt, fmt[:-1] + b"9"),  # another format version
                  b"not a header at all"):
        info = load(session, b, 4096, header=wrong)
        assert info["header_cached"] is False
        assert same_header(session.header_blob(), blob_b)
        assert greedy(session, [1, 5, 9], 8) == want_b
    session.unload()


def test_a_stored_header_is_refused_when_the_file_is_too_short_for_it(models) -> None:
    """The tensors must lie inside the announced size, as the parser checks."""
    path = models[0]
    session = WorkerSession(lambda e: None)
    load(session, path, 1 << 20)
    blob = session.header_blob()
    size = path.stat().st_size
    assert unpack_header(blob, path.name, size) is not None
    assert unpack_header(blob, path.name, size - 1) is None
    assert pack_header(unpack_header(blob, path.name)[1], "x") != blob  # the digest is part of it
    session.unload()
