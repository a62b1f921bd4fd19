"""Speed of two builds of the wasm side module inside Pyodide (Node), interleaved.

    python bench/bench_wasm_side.py A.so B.so [--rounds 3] [--prompt 64] [--gen 32] [--model PATH]

Each round runs every module in its own Pyodide process (A, B, A, B, ...; the order is
reversed every other round) on the same model (default: the bundled Gemma 3 270M, loaded
from the cache dir through NODEFS), one prompt of --prompt tokens and --gen greedy tokens
at 1 thread; the first decode step is left out (graph building). Prints the median
prefill and decode tok/s per module and B/A. Each module is installed as the engine wheel
(loading a second copy from another path would mix the two modules' symbols).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "browser"))

CODE = r"""
import json, time
import pyllm_engine_wasm  # the module under test, installed as the engine wheel (run_pyodide(engine=...))
from app.backends.ggml.library import load_library
from app.backends.ggml.runner import GGMLRunner
from app.gguf import read_gguf
from app.models import model_for

lib = load_library(pyllm_engine_wasm.LIBRARY)
r = GGMLRunner(model_for(read_gguf(MODEL)), MODEL, n_threads=1, n_ctx=512, lib=lib)
t0 = time.perf_counter()
r.eval(PROMPT)
t1 = time.perf_counter()
out = [r.argmax()]
r.eval([out[-1]]); out.append(r.argmax())  # first decode step builds the graph: not timed
t2 = time.perf_counter()
while len(out) < GEN + 1:
    r.eval([out[-1]])
    out.append(r.argmax())
t3 = time.perf_counter()
r.close()
json.dumps({"prefill": len(PROMPT) / (t1 - t0), "decode": (GEN - 1) / (t3 - t2), "tokens": out})
"""


def main() -> None:
    from tools.assets import gemma3_270m_path
    from wasm_support import in_pyodide, run_pyodide

    ap = argparse.ArgumentParser()
    ap.add_argument("modules", nargs=2, type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()
    model = args.model or gemma3_270m_path()
    prompt = [2] + [(i * 7919 + 13) % 20000 + 100 for i in range(args.prompt - 1)]
    runs: dict[int, list[dict]] = {0: [], 1: []}
    for rnd in range(args.rounds):
        for which in ((0, 1) if rnd % 2 == 0 else (1, 0)):
            code = f"MODEL = {in_pyodide(model)!r}\nPROMPT = {prompt!r}\nGEN = {args.gen}\n" + CODE
            res = run_pyodide(code, engine=args.modules[which])
            runs[which].append(res)
            print(f"round {rnd} {'AB'[which]}: prefill {res['prefill']:.1f} tok/s, decode {res['decode']:.1f} tok/s",
                  flush=True)
    med = {w: {k: statistics.median(r[k] for r in runs[w]) for k in ("prefill", "decode")} for w in (0, 1)}
    same = all(a["tokens"] == b["tokens"] for a in runs[0] for b in runs[1])
    print(json.dumps({"model": model.name, "A": str(args.modules[0]), "B": str(args.modules[1]), "median": med,
                      "B/A": {k: med[1][k] / med[0][k] for k in ("prefill", "decode")}, "same_tokens": same},
                     indent=1))


if __name__ == "__main__":
    main()
