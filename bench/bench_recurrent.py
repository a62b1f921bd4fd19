"""Host prefill/decode speed of the recurrent architectures against llama.cpp, interleaved,
as ratios (the method of bench/bench_host.py).

    python bench/bench_recurrent.py [--threads 2] [--prompt 256] [--gen 64] [--reps 3] [--models qwen35 mamba]
                                    [--stat median|min]

Models (random weights in the real layouts, Q4_0): Qwen3.5-0.8B's shapes (24 layers, 18
Gated DeltaNet + 6 gated attention, 248k vocab) and a Mamba-1 of similar size (mamba-790m's
shapes). Both engines run the same GGUF at the same thread count; rounds alternate; --stat min
takes each side's best round (robust when other jobs load the machine). Also
prints the recurrent state size and a snapshot's size and save/load time after the prompt.
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
sys.path.insert(0, str(ROOT / "bench"))

from app.backends.ggml.runner import GGMLRunner  # noqa: E402
from app.gguf import read_gguf  # noqa: E402
from app.models import model_for  # noqa: E402
from bench_host import interleaved_rounds, print_row  # noqa: E402


def models(names: list[str]) -> dict[str, Path]:
    from tools.testmodels import MAMBA_790M, QWEN35_0_8B, model_path
    table = {"qwen35": ("qwen35-0.8B-shape Q4_0 (random)", QWEN35_0_8B),
             "mamba": ("mamba-790m-shape Q4_0 (random)", MAMBA_790M)}
    out = {}
    for name in names:
        if name not in table:
            raise SystemExit(f"unknown model {name!r} ({', '.join(table)})")
        label, shape = table[name]
        out[label] = model_path(shape, "Q4_0")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=["qwen35", "mamba"])
    ap.add_argument("--stat", choices=["median", "min"], default="median")
    args = ap.parse_args()

    from build import reference_binary
    from oracle import Oracle
    oracle = Oracle(reference_binary())
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {len(os.sched_getaffinity(0))} "
          f"cores; prompt {args.prompt} tokens, {args.gen} generated, {args.stat} of {args.reps} rounds; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'model':34} {'thr':>3} {'prefill tok/s':>22} {'ratio':>6} {'decode tok/s':>20} {'ratio':>6} "
          f"{'outside compute':>15}")
    notes = []
    for label, path in models(args.models).items():
        model = model_for(read_gguf(str(path)))
        prompt = [(i * 7919 + 13) % model.hp.n_vocab for i in range(args.prompt)]
        for threads in args.threads:
            runner = GGMLRunner(model, str(path), n_threads=threads, n_ctx=args.prompt + args.gen + 16)
            ours, ref = interleaved_rounds(runner, oracle, path, threads, prompt, args.gen, args.reps)
            runner.reset()
            runner.eval(prompt)
            t0 = time.perf_counter()
            snap = runner.save_state()
            t1 = time.perf_counter()
            runner.load_state(snap)
            t2 = time.perf_counter()
            notes.append(f"{label}: recurrent state {runner.state_bytes / 2**20:.2f} MiB, KV cache "
                         f"{runner.cache_bytes / 2**20:.2f} MiB (n_ctx {runner.kv_size}); snapshot after "
                         f"{args.prompt} tokens {len(snap) / 2**20:.2f} MiB, save {1e3 * (t1 - t0):.1f} ms, "
                         f"load {1e3 * (t2 - t1):.1f} ms")
            runner.close()
            print_row(label, threads, ours, ref, args.prompt, args.gen,
                      statistics.median if args.stat == "median" else min)
    for n in notes:
        print(n)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
