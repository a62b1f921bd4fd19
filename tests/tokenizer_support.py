"""Shared helpers for the tokenizer tests: the sdist's vocab files and vectors, the corpus,
the Gemma 3 model, and the llama.cpp oracle (tests/reference/llama_ref) for regenerating
the expected-output fixtures."""
from __future__ import annotations

import functools
import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.gguf import read_gguf  # noqa: E402
from app.tokenizer import Tokenizer  # noqa: E402
from wasm_ext.sources import llama_cpp_dir  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "tokenizer"
VECTOR_SEP = "\n__ggml_vocab_test__\n"


def vocab_dir() -> Path:
    return llama_cpp_dir() / "models"


def vocab_files() -> list[Path]:
    """Every ggml-vocab-*.gguf of the pinned sdist."""
    return sorted(vocab_dir().glob("ggml-vocab-*.gguf"))


def vector_files() -> list[Path]:
    """The vocab files that come with .inp/.out test vectors."""
    return [p for p in vocab_files() if Path(str(p) + ".inp").exists()]


def read_vectors(vocab: Path) -> list[tuple[str, list[int]]]:
    """(text, expected ids) pairs, read the way llama.cpp's test-tokenizer-0 reads them."""
    raw = Path(str(vocab) + ".inp").read_bytes().decode("utf-8")
    outs = Path(str(vocab) + ".out").read_text(encoding="utf-8").split("\n")
    texts = raw.split(VECTOR_SEP)
    return [(t, [int(x) for x in outs[i].split()]) for i, t in enumerate(texts)]


@functools.lru_cache(maxsize=None)
def metadata(path: str) -> dict:
    return read_gguf(path).metadata


@functools.lru_cache(maxsize=None)
def tokenizer(path: str) -> Tokenizer:
    return Tokenizer.from_metadata(metadata(path))


def gemma3_path() -> Path:
    from tools.assets import gemma3_270m_path
    return gemma3_270m_path()


def corpus() -> list[str]:
    return json.loads((FIXTURES / "corpus.json").read_text(encoding="utf-8"))


def ids_digest(ids: list[int]) -> str:
    """Short fingerprint of an id sequence (fixtures store these for the many-vocab checks)."""
    return hashlib.sha256(" ".join(map(str, ids)).encode()).hexdigest()[:12]


def corpus_digest(all_ids: list[list[int]]) -> str:
    """One fingerprint for the ids of a whole corpus."""
    return hashlib.sha256("\n".join(" ".join(map(str, ids)) for ids in all_ids).encode()).hexdigest()


PRE_CHECK_VOCAB = "ggml-vocab-qwen2.gguf"  # the BPE vocab every pre-tokenizer is checked on


def pieces_digest(pieces: list[bytes]) -> str:
    """sha256 of the pieces in llama_ref's `pieces` output format (one hex line per id)."""
    h = hashlib.sha256()
    for p in pieces:
        h.update(p.hex().encode() + b"\n")
    return h.hexdigest()


# -- the oracle (only needed to regenerate fixtures) ---------------------------------------

def oracle_binary() -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "reference"))
    from build import reference_binary
    return reference_binary()


def oracle_tokenize(model: Path, texts: list[str], add_special: bool, parse_special: bool) -> list[list[int]]:
    data = b"".join(struct.pack("<I", len(b)) + b for b in (t.encode("utf-8") for t in texts))
    out = subprocess.run([str(oracle_binary()), "tokenize", str(model), str(int(add_special)), str(int(parse_special))],
                         input=data, capture_output=True, check=True).stdout.decode()
    lines = out.split("\n")[:len(texts)]
    return [[int(x) for x in line.split()] for line in lines]


def oracle_pieces(model: Path, special: bool) -> list[bytes]:
    out = subprocess.run([str(oracle_binary()), "pieces", str(model), str(int(special))],
                         capture_output=True, check=True).stdout.decode()
    return [bytes.fromhex(line) for line in out.split("\n")[:-1]]


def with_pre_tokenizer(src: Path, pre: str, dest: Path) -> Path:
    """Copy of a tensor-less vocab GGUF with `tokenizer.ggml.pre` replaced (for checking
    each pre-tokenizer against llama.cpp on the same vocabulary)."""
    data = src.read_bytes()
    assert struct.unpack_from("<Q", data, 8)[0] == 0, "only tensor-less vocab files can be patched"
    key = b"tokenizer.ggml.pre"
    head = struct.pack("<Q", len(key)) + key + struct.pack("<I", 8)
    at = data.index(head) + len(head)
    old_len = struct.unpack_from("<Q", data, at)[0]
    value = pre.encode()
    dest.write_bytes(data[:at] + struct.pack("<Q", len(value)) + value + data[at + 8 + old_len:])
    return dest
