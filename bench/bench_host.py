"""Host prefill/decode speed of this runtime against llama.cpp, interleaved, as ratios.

    python bench/bench_host.py [--threads 1 2] [--prompt 256] [--gen 64] [--reps 3] [--models gemma llama05b]

Both run the same GGUF at the same thread count; rounds alternate ours / llama.cpp so
drifting machine load hits both alike. Prefill = one prompt of --prompt tokens from an
empty cache (time to the first token's logits); decode = --gen greedy tokens after it.
Medians over --reps measured rounds (after one warm-up round each). Also prints the
share of each decode token's wall time spent outside the engine's compute (Python,
ctypes, input filling).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "reference"))

from app.backends.ggml.runner import GGMLRunner  # noqa: E402
from app.gguf import read_gguf  # noqa: E402
from app.models import model_for  # noqa: E402


def models(names: list[str]) -> dict[str, Path]:
    out = {}
    for name in names:
        if name == "gemma":
            from tools.assets import gemma3_270m_path
            out["gemma3-270m Q4_K_M"] = gemma3_270m_path()
        elif name == "llama05b":
            from tools.testmodels import LLAMA_HALF_B, model_path
            out["llama-0.5B-shape Q4_0 (random)"] = model_path(LLAMA_HALF_B, "Q4_0")
        else:
            raise SystemExit(f"unknown model {name!r} (gemma, llama05b)")
    return out


def ours_round(runner: GGMLRunner, prompt: list[int], n_gen: int) -> dict:
    runner.reset()
    t0 = time.perf_counter()
    runner.eval(prompt)
    tok = runner.argmax()
    t1 = time.perf_counter()
    c0 = runner.stats.compute_ms
    for _ in range(n_gen):
        runner.eval([tok])
        tok = runner.argmax()
    t2 = time.perf_counter()
    decode_ms = (t2 - t1) * 1e3
    return {"prefill_ms": (t1 - t0) * 1e3, "decode_ms": decode_ms,
            "outside_compute": 1.0 - (runner.stats.compute_ms - c0) / decode_ms}


def interleaved_rounds(runner: GGMLRunner, oracle, path: Path, threads: int, prompt: list[int], n_gen: int,
                       reps: int) -> tuple[list[dict], list[dict]]:
    """reps measured rounds each of ours and llama.cpp's, alternating; round 0 warms up both."""
    ours, ref = [], []
    for r in range(reps + 1):
        o = ours_round(runner, prompt, n_gen)
        # llama_ref runs 2 rounds per call (the first warms up its graph and caches)
        f = oracle.bench(path, threads, len(prompt), n_gen, 2)[-1]
        if r:
            ours.append(o)
            ref.append(f)
    return ours, ref


def print_row(label: str, threads: int, ours: list[dict], ref: list[dict], n_prompt: int, n_gen: int,
              pick=statistics.median) -> None:
    """One table row: tok/s ours vs llama.cpp and their ratio, from `pick` over the rounds."""
    def stat(rows: list[dict], key: str) -> float:
        return pick(x[key] for x in rows)

    pp_o, pp_r = n_prompt / stat(ours, "prefill_ms") * 1e3, n_prompt / stat(ref, "prefill_ms") * 1e3
    tg_o, tg_r = n_gen / stat(ours, "decode_ms") * 1e3, n_gen / stat(ref, "decode_ms") * 1e3
    print(f"{label:34} {threads:>3} {pp_o:>9.1f} vs {pp_r:>9.1f} {pp_o / pp_r:>6.2f} "
          f"{tg_o:>8.1f} vs {tg_r:>8.1f} {tg_o / tg_r:>6.2f} {stat(ours, 'outside_compute') * 100:>14.2f}%",
          flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=["gemma", "llama05b"])
    args = ap.parse_args()

    from build import reference_binary
    from oracle import Oracle
    oracle = Oracle(reference_binary())
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {len(os.sched_getaffinity(0))} "
          f"cores; prompt {args.prompt} tokens, {args.gen} generated, median of {args.reps} rounds")
    print(f"{'model':34} {'thr':>3} {'prefill tok/s':>22} {'ratio':>6} {'decode tok/s':>20} {'ratio':>6} "
          f"{'outside compute':>15}")
    for label, path in models(args.models).items():
        model = model_for(read_gguf(str(path)))
        prompt = [(i * 7919 + 13) % model.hp.n_vocab for i in range(args.prompt)]
        for threads in args.threads:
            runner = GGMLRunner(model, str(path), n_threads=threads, n_ctx=args.prompt + args.gen + 16)
            ours, ref = interleaved_rounds(runner, oracle, path, threads, prompt, args.gen, args.reps)
            runner.close()
            print_row(label, threads, ours, ref, args.prompt, args.gen, statistics.median)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
