"""app.gguf: the incremental reader agrees with gguf-py on real files and refuses bad ones clearly."""
from __future__ import annotations

import math
import random
import struct
import time
from pathlib import Path

import pytest

from app.gguf import GGUFError, GGUFParser, parse_chunks, read_gguf
from tools.testmodels import TINY, tiny
from wasm_ext.sources import llama_cpp_dir

TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K")


def _gguf_py():
    import sys
    sys.path.insert(0, str(llama_cpp_dir() / "gguf-py"))
    import gguf
    return gguf


# gguf-py's reader takes 2-50 s per large vocabulary file: cross-check the small ones,
# and parse every vocabulary file with ours.
CROSS_CHECKED_VOCABS = ("llama-spm", "phi-3", "starcoder", "bert-bge")


def _files() -> list[Path]:
    files = [tiny(arch, t) for arch in TINY for t in ("F32", "Q4_0", "Q4_K")]
    files += [tiny("llama", t) for t in TYPES]
    files += [llama_cpp_dir() / "models" / f"ggml-vocab-{v}.gguf" for v in CROSS_CHECKED_VOCABS]
    return files


def test_reads_every_vocab_file_of_the_sources():
    files = sorted((llama_cpp_dir() / "models").glob("ggml-vocab-*.gguf"))
    assert len(files) >= 15
    for path in files:
        g = read_gguf(str(path))
        tokens = g.metadata["tokenizer.ggml.tokens"]
        assert len(tokens) > 1000 and all(isinstance(t, str) for t in tokens[:100])
        types = g.metadata.get("tokenizer.ggml.token_type")
        assert types is None or len(types) == len(tokens)


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-7) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _check_against_gguf_py(path: Path) -> None:
    gguf = _gguf_py()
    ours = read_gguf(str(path))
    ref = gguf.GGUFReader(str(path))
    fields = {k: f for k, f in ref.fields.items() if not k.startswith("GGUF.")}
    assert set(ours.metadata) == set(fields), path.name
    for key, field in fields.items():
        value = ours.metadata[key]
        if isinstance(value, list) and len(value) > 2000:
            # gguf-py converts array elements one by one (slow): compare the length,
            # both ends and a stride through the middle
            assert len(value) == len(field.data), f"{path.name}: {key}"
            idx = sorted({*range(200), *range(len(value) - 200, len(value)), *range(0, len(value), 97)})
            for i in idx:
                assert _same(value[i], field.contents(i)), f"{path.name}: {key}[{i}]"
        else:
            assert _same(value, field.contents()), f"{path.name}: {key}"
    assert [t.name for t in ours.tensors] == [t.name for t in ref.tensors]
    for t, r in zip(ours.tensors, ref.tensors):
        assert t.ggml_type.id == int(r.tensor_type), t.name
        assert list(t.shape) == [int(x) for x in r.shape], t.name
        assert t.nbytes == r.n_bytes and t.n_elements == r.n_elements, t.name
        assert ours.data_offset + t.offset == r.data_offset, t.name


def test_agrees_with_gguf_py_on_test_models_and_vocab_files():
    files = _files()
    assert len(files) > 20
    for path in files:
        _check_against_gguf_py(path)


def test_agrees_with_gguf_py_on_gemma3_270m(gemma3_270m):
    _check_against_gguf_py(gemma3_270m)
    g = read_gguf(str(gemma3_270m))
    assert g.metadata["general.architecture"] == "gemma3"
    assert len(g.metadata["tokenizer.ggml.tokens"]) == 262144


def test_any_chunking_gives_the_same_header():
    path = tiny("gemma3", "Q4_K")
    data = path.read_bytes()
    whole = read_gguf(str(path))
    rng = random.Random(7)
    for sizes in ([1], [3, 7, 1], [4096], [100_000]):
        chunks, pos, i = [], 0, 0
        while pos < len(data):
            n = sizes[i % len(sizes)] if len(sizes) > 1 or sizes[0] > 1 else 1
            n = max(1, n + rng.randint(0, 3)) if len(sizes) > 1 else n
            chunks.append(data[pos:pos + n])
            pos += n
            i += 1
            if pos > whole.data_offset + 64:
                break  # the header is complete long before the data
        got = parse_chunks(chunks, file_size=len(data))
        assert got.metadata == whole.metadata
        assert got.tensors == whole.tensors
        assert got.data_offset == whole.data_offset


def test_parser_stops_asking_once_the_header_is_done():
    path = tiny("llama", "Q8_0")
    data = path.read_bytes()
    p = GGUFParser("stream")
    assert p.feed(data[:10]) is False
    assert p.feed(data[10:]) is True
    assert p.done and p.finish().tensors


# -- bad input ---------------------------------------------------------------------------

def _kv_string(key: str, value: str) -> bytes:
    k, v = key.encode(), value.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<I", 8) + struct.pack("<Q", len(v)) + v


def _tensor_info(name: str, shape: list[int], type_id: int, offset: int) -> bytes:
    n = name.encode()
    return (struct.pack("<Q", len(n)) + n + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
            + struct.pack("<I", type_id) + struct.pack("<Q", offset))


def _file(tensors: list[tuple[str, list[int], int, int]], kvs: list[bytes] | None = None, version: int = 3,
          data: int = 4096, magic: bytes = b"GGUF") -> bytes:
    kvs = kvs if kvs is not None else [_kv_string("general.architecture", "llama")]
    head = magic + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    head += b"".join(_tensor_info(*t) for t in tensors)
    head += b"\0" * ((-len(head)) % 32)
    return head + b"\0" * data


def _parse(blob: bytes):
    return parse_chunks([blob], source="bad.gguf", file_size=len(blob))


def test_wrong_magic():
    with pytest.raises(GGUFError, match="not a GGUF file"):
        _parse(_file([], magic=b"GGML"))
    with pytest.raises(GGUFError, match="not a GGUF file"):
        _parse(b"<html>404 Not Found</html>" + b"\0" * 100)


def test_unsupported_versions():
    with pytest.raises(GGUFError, match="unsupported GGUF version 1"):
        _parse(_file([], version=1))
    with pytest.raises(GGUFError, match="big-endian"):
        _parse(_file([], version=3 << 24))


def test_truncated_header_at_every_cut_names_the_field():
    tensors = [("a.weight", [32, 4], 0, 0), ("b.weight", [64], 0, 512)]
    blob = _file(tensors, data=0)
    header_end = 4 + 4 + 8 + 8 + len(_kv_string("general.architecture", "llama")) \
        + sum(len(_tensor_info(*t)) for t in tensors)
    assert parse_chunks([blob[:header_end]]).tensors
    for cut in range(0, header_end):
        with pytest.raises(GGUFError, match="truncated header|not a GGUF"):
            parse_chunks([blob[:cut]], source="cut.gguf")


def test_unknown_tensor_type_lists_known_ones():
    with pytest.raises(GGUFError, match=r"unknown tensor type 77 .*known ggml types: F32=0"):
        _parse(_file([("w.weight", [32, 2], 77, 0)]))


def test_tensor_data_outside_the_file():
    with pytest.raises(GGUFError, match="lies outside the file"):
        _parse(_file([("w.weight", [1024, 1024], 0, 0)], data=4096))


def test_misaligned_tensor_offset():
    with pytest.raises(GGUFError, match="not aligned to 32 bytes"):
        _parse(_file([("w.weight", [8], 0, 8)]))


def test_row_not_multiple_of_block():
    with pytest.raises(GGUFError, match="not a multiple of the Q4_0 block size 32"):
        _parse(_file([("w.weight", [48, 2], 2, 0)]))


def test_absurd_counts():
    blob = b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 0)
    with pytest.raises(GGUFError, match="tensor count .* absurd"):
        _parse(blob)
    blob = b"GGUF" + struct.pack("<IQQ", 3, 0, 1 << 40)
    with pytest.raises(GGUFError, match="metadata count .* absurd"):
        _parse(blob)
    huge_string = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 50)
    with pytest.raises(GGUFError, match="corrupt header|file has only"):
        _parse(huge_string + b"\0" * 64)
    key = b"k"
    huge_array = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + key + struct.pack("<I", 9)
                  + struct.pack("<IQ", 4, 1 << 45))
    with pytest.raises(GGUFError, match="corrupt header|file has only|larger than the file"):
        _parse(huge_array + b"\0" * 64)


def test_duplicate_keys_and_tensor_names():
    kvs = [_kv_string("a", "x"), _kv_string("a", "y")]
    with pytest.raises(GGUFError, match="duplicate metadata key 'a'"):
        _parse(_file([], kvs=kvs))
    with pytest.raises(GGUFError, match="duplicate tensor name"):
        _parse(_file([("w", [32], 0, 0), ("w", [32], 0, 128)]))


def test_fuzzed_headers_never_crash_or_hang():
    """Mutated headers either parse or raise GGUFError: no other exception, no hang."""
    base = bytearray(_file([("blk.0.attn_q.weight", [64, 64], 8, 0), ("output_norm.weight", [64], 0, 4352)],
                           kvs=[_kv_string("general.architecture", "llama"),
                                _kv_string("general.name", "fuzz")], data=8192))
    header_len = len(base) - 8192
    rng = random.Random(1234)
    start = time.monotonic()
    outcomes = {"ok": 0, "error": 0}
    for _ in range(3000):
        blob = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(header_len)
            blob[pos] = rng.choice([0, 0xFF, rng.randrange(256), blob[pos] ^ (1 << rng.randrange(8))])
        cut = len(blob) if rng.random() < 0.8 else rng.randrange(len(blob))
        t0 = time.monotonic()
        try:
            _parse(bytes(blob[:cut]))
            outcomes["ok"] += 1
        except GGUFError:
            outcomes["error"] += 1
        assert time.monotonic() - t0 < 1.0
    assert outcomes["error"] > 100 and outcomes["ok"] > 10
    assert time.monotonic() - start < 60


def test_large_vocab_header_parses_fast(gemma3_270m):
    t0 = time.perf_counter()
    read_gguf(str(gemma3_270m))
    assert time.perf_counter() - t0 < 2.0  # 262k-token vocabulary
