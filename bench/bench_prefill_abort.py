"""What the stop flag costs a prompt: prefill with the engine's abort check armed (a flag
read, or a C function called, between graph nodes) against the same prefill unarmed,
rounds interleaved so machine load hits both alike. Host engine, Gemma 3 270M.

    python bench/bench_prefill_abort.py [--threads 2] [--prompt 512] [--reps 5]
"""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.backends.ggml.runner import GGMLRunner  # noqa: E402
from app.gguf import read_gguf  # noqa: E402
from app.models import model_for  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    from tools.assets import gemma3_270m_path

    path = str(gemma3_270m_path())
    r = GGMLRunner(model_for(read_gguf(path)), path, n_threads=args.threads, n_ctx=max(1024, args.prompt + 256))
    prompt = [2] + [(i * 7919 + 13) % 200000 + 5 for i in range(args.prompt - 1)]
    flag = ctypes.c_int32(0)
    fn = ctypes.CFUNCTYPE(ctypes.c_int32)(lambda: flag.value)
    modes = {"unarmed": (None, None), "flag": (ctypes.addressof(flag), None),
             "function": (None, ctypes.cast(fn, ctypes.c_void_p).value)}
    times: dict[str, list[float]] = {m: [] for m in modes}
    names = list(modes)
    for rep in range(args.reps + 1):  # the first round warms up; the order rotates each round
        for mode in names[rep % 3:] + names[:rep % 3]:
            addr, func = modes[mode]
            r.reset()
            r.set_abort_flag(addr)
            r.set_abort_function(func)
            t0 = time.perf_counter()
            r.eval(prompt)
            if rep:
                times[mode].append(time.perf_counter() - t0)
    r.close()
    base = statistics.median(times["unarmed"])
    print(f"prefill {args.prompt} tokens, {args.threads} threads, Gemma 3 270M, host engine, "
          f"median of {args.reps} interleaved rounds ({os.cpu_count()} CPUs):")
    for mode, ts in times.items():
        med = statistics.median(ts)
        print(f"  {mode:9s} {args.prompt / med:8.1f} tok/s   x{base / med:.3f} of unarmed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
