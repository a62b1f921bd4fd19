"""Tokenizer speed: MB/s of English prose for a 150k-vocab BPE model, vocab build time.

    python3 bench/bench_tokenizer.py [--vocab qwen35|qwen2|llama-bpe|...] [--reps N]

The prose is the standard library's own docstrings (~1 MB of English, the same on any
machine with the same Python), so the benchmark needs no download. Prints cold (empty
word cache) and warm MB/s, the time to build the tokenizer from parsed metadata (the
150k BPE vocab and, if present in the cache, Gemma 3's 262k SPM vocab), and, when the
llama.cpp oracle is built, llama.cpp's own time on the same text for a ratio.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.gguf import read_gguf  # noqa: E402
from app.tokenizer import Tokenizer  # noqa: E402

MODULES = ("argparse asyncio collections concurrent.futures contextlib csv dataclasses datetime decimal difflib "
           "email enum fractions functools heapq http.client http.server inspect io ipaddress itertools json "
           "logging mailbox multiprocessing numbers os pathlib pickle pydoc queue random re shutil smtplib socket "
           "sqlite3 ssl statistics string subprocess tarfile tempfile textwrap threading typing unittest "
           "urllib.request uuid xml.dom.minidom zipfile calendar codecs configparser copy doctest ftplib gettext "
           "imaplib locale optparse platform pprint sched selectors shelve socketserver tokenize trace "
           "unicodedata warnings weakref wave zoneinfo abc ast base64 bisect bz2 cmd code dis filecmp fnmatch "
           "getopt glob gzip hashlib hmac html lzma mimetypes netrc operator pdb poplib profile pstats runpy "
           "secrets signal site stat struct symtable sysconfig timeit traceback types zipimport").split()


def english_prose() -> str:
    """Distinct docstrings of stdlib modules, classes and functions, joined by blank lines."""
    seen: set[str] = set()
    parts: list[str] = []

    def add(obj) -> None:
        doc = inspect.getdoc(obj)
        if doc and doc not in seen:
            seen.add(doc)
            parts.append(doc)

    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        add(mod)
        for attr in dir(mod):
            if attr.startswith("_"):
                continue
            obj = getattr(mod, attr, None)
            if inspect.isclass(obj) or inspect.isroutine(obj):
                add(obj)
            if inspect.isclass(obj):
                for meth_name, meth in vars(obj).items():
                    if not meth_name.startswith("_") and inspect.isroutine(meth):
                        add(meth)
    return "\n\n".join(parts)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def cpu_timed(fn):
    """(result, wall s, this process's CPU s): CPU time stays meaningful on a busy machine."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def oracle_seconds(model: Path, text: str) -> float | None:
    """llama.cpp's time for the same text (process start and vocab load subtracted)."""
    try:
        sys.path.insert(0, str(ROOT / "tests" / "reference"))
        from build import cache_root, SDIST_VERSION  # noqa: F401
        exe = next((cache_root()).glob(f"llama-ref-{SDIST_VERSION}-*/llama_ref"), None)
    except Exception:
        return None
    if exe is None:
        return None

    def run(t: str) -> float:
        data = struct.pack("<I", len(t.encode())) + t.encode()
        t0 = time.perf_counter()
        subprocess.run([str(exe), "tokenize", str(model), "0", "0"], input=data, capture_output=True, check=True)
        return time.perf_counter() - t0

    return max(run(text) - run("x"), 1e-6)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", default="qwen35", help="sdist vocab name (ggml-vocab-NAME.gguf)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    from wasm_ext.sources import llama_cpp_dir
    path = llama_cpp_dir() / "models" / f"ggml-vocab-{args.vocab}.gguf"
    md = read_gguf(str(path)).metadata
    text = english_prose()
    mb = len(text.encode("utf-8")) / 1e6

    tok, build_s = timed(lambda: Tokenizer.from_metadata(md))
    print(f"vocab {args.vocab}: {tok.n_vocab} tokens, {tok.kind}, built from metadata in {build_s:.3f} s")
    ids, cold, cold_cpu = cpu_timed(lambda: tok.encode(text, add_special=False))
    warm = min(cpu_timed(lambda: tok.encode(text, add_special=False))[1:] for _ in range(args.reps))
    print(f"english prose: {mb:.2f} MB -> {len(ids)} tokens")
    print(f"tokenize cold (empty word cache): {mb / cold:.2f} MB/s wall, {mb / cold_cpu:.2f} MB/s CPU time")
    print(f"tokenize warm (best of {args.reps}):       {mb / warm[0]:.2f} MB/s wall, {mb / warm[1]:.2f} MB/s CPU time")
    ref = oracle_seconds(path, text)
    if ref is not None:
        print(f"llama.cpp same text: {mb / ref:.2f} MB/s  (ours cold/llama.cpp = {ref / cold:.2f}x)")

    try:
        from tools.assets import GEMMA3_270M_FILE, cache_root as assets_cache
        gemma = assets_cache() / "models" / GEMMA3_270M_FILE
    except Exception:
        gemma = None
    if gemma is not None and gemma.exists():
        gmd = read_gguf(str(gemma)).metadata
        best = min(timed(lambda: Tokenizer.from_metadata(gmd))[1] for _ in range(args.reps))
        gtok = Tokenizer.from_metadata(gmd)
        sample = text[:200_000]
        _, spm_s = timed(lambda: gtok.encode(sample, add_special=False))
        print(f"gemma3 262k SPM vocab built from metadata in {best:.3f} s (best of {args.reps}); "
              f"SPM tokenize {len(sample.encode()) / 1e6 / spm_s:.2f} MB/s")


if __name__ == "__main__":
    main()
