"""The tokenizer benchmark run inside real Pyodide (Node, Python 3.14, wasm), offline.

    python3 bench/bench_tokenizer_pyodide.py [--vocab qwen35]

Same English prose as bench/bench_tokenizer.py (made on the host, copied in); prints the
vocab build time and cold/warm MB/s inside Pyodide next to the host's numbers.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_tokenizer import english_prose  # noqa: E402
from pyodide_support import app_files, run_in_pyodide  # noqa: E402

from app.gguf import read_gguf  # noqa: E402
from app.tokenizer import Tokenizer  # noqa: E402

CODE = """
import json, time
from app.gguf import read_gguf
from app.tokenizer import Tokenizer
md = read_gguf("/work/vocab.gguf").metadata
text = open("/work/prose.txt", encoding="utf-8").read()
t0 = time.perf_counter(); tok = Tokenizer.from_metadata(md); t1 = time.perf_counter()
tok.encode(text, add_special=False); t2 = time.perf_counter()
tok.encode(text, add_special=False); t3 = time.perf_counter()
result = {"build": t1 - t0, "cold": t2 - t1, "warm": t3 - t2}
try:
    from app.gguf import parse_chunks
    with open("/work/gemma_header.bin", "rb") as f:
        gmd = parse_chunks([f.read()]).metadata
    t4 = time.perf_counter(); gtok = Tokenizer.from_metadata(gmd); t5 = time.perf_counter()
    sample = text[:100_000]
    gtok.encode(sample, add_special=False); t6 = time.perf_counter()
    result.update(gemma_build=t5 - t4, gemma_mb=len(sample.encode()) / 1e6, gemma_encode=t6 - t5)
except FileNotFoundError:
    pass
json.dumps(result)
"""


def _gemma_header(tmp: Path) -> Path | None:
    """The first bytes of the Gemma 3 270M file, enough for its header (metadata)."""
    from tools.assets import GEMMA3_270M_FILE, cache_root
    path = cache_root() / "models" / GEMMA3_270M_FILE
    if not path.exists():
        return None
    out = tmp / "gemma_header.bin"
    with open(path, "rb") as f:
        out.write_bytes(f.read(8 << 20))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", default="qwen35")
    args = ap.parse_args()
    from wasm_ext.sources import llama_cpp_dir
    vocab = llama_cpp_dir() / "models" / f"ggml-vocab-{args.vocab}.gguf"
    text = english_prose()
    mb = len(text.encode("utf-8")) / 1e6

    tok = Tokenizer.from_metadata(read_gguf(str(vocab)).metadata)
    t0 = time.perf_counter()
    tok.encode(text, add_special=False)
    host_cold = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        prose = Path(tmp) / "prose.txt"
        prose.write_text(text, encoding="utf-8")
        files = {**app_files("gguf", "tokenizer"), "/work/vocab.gguf": str(vocab), "/work/prose.txt": str(prose)}
        gemma = _gemma_header(Path(tmp))
        if gemma is not None:
            files["/work/gemma_header.bin"] = str(gemma)
        r = json.loads(run_in_pyodide(CODE, files, timeout=600))
    print(f"pyodide, vocab {args.vocab}: built in {r['build']:.3f} s; {mb:.2f} MB English prose: "
          f"cold {mb / r['cold']:.2f} MB/s, warm {mb / r['warm']:.2f} MB/s "
          f"(host CPython cold {mb / host_cold:.2f} MB/s, pyodide/host {host_cold / r['cold']:.2f}x)")
    if "gemma_build" in r:
        print(f"pyodide, gemma3 262k SPM vocab built from metadata in {r['gemma_build']:.3f} s; "
              f"SPM tokenize {r['gemma_mb'] / r['gemma_encode']:.2f} MB/s")


if __name__ == "__main__":
    main()
