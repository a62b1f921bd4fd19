"""`generate`: greedy-decode a prompt and stream the text, then one stats line."""
from __future__ import annotations

import argparse
import sys
import time

from ..backends.ggml.runner import GGMLRunner
from ..gguf import GGUFError, read_gguf
from ..models import ModelError, model_for


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="greedy generation from a prompt (streams text)")
    p.add_argument("--model", required=True, help="path of a GGUF file")
    p.add_argument("--prompt", default="", help="prompt text")
    p.add_argument("--prompt-ids", default=None, help="comma-separated token ids instead of text")
    p.add_argument("-n", "--n-predict", type=int, default=64, help="tokens to generate")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ctx", type=int, default=4096, help="context size in tokens")
    p.add_argument("--ignore-eos", action="store_true", help="keep going past end-of-sequence tokens")
    p.add_argument("--ids", action="store_true", help="print token ids instead of text")


def run(args: argparse.Namespace) -> int:
    if args.n_predict <= 0:
        print("error: -n must be positive", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        gguf = read_gguf(args.model)
        model = model_for(gguf)
        tokenizer = None
        if args.prompt_ids is None or not args.ids:
            from ..tokenizer import Tokenizer
            tokenizer = Tokenizer.from_metadata(gguf.metadata)
        runner = GGMLRunner(model, args.model, n_threads=args.threads,
                            n_ctx=max(args.ctx, 1))
    except (OSError, GGUFError, ModelError, RuntimeError, ValueError) as exc:  # TokenizerError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 1
    load_ms = (time.perf_counter() - t0) * 1e3

    if args.prompt_ids is not None:
        prompt = [int(t) for t in args.prompt_ids.split(",") if t.strip()]
    else:
        prompt = tokenizer.encode(args.prompt, add_special=True, parse_special=True)
    if not prompt:
        print("error: empty prompt (give --prompt or --prompt-ids)", file=sys.stderr)
        return 2
    if len(prompt) + args.n_predict > runner.kv_size:
        print(f"error: prompt ({len(prompt)}) + n ({args.n_predict}) exceed the context ({runner.kv_size}); "
              f"raise --ctx", file=sys.stderr)
        return 2

    out = sys.stdout
    decoder = tokenizer.stream() if tokenizer is not None and not args.ids else None
    t1 = time.perf_counter()
    runner.eval(prompt)
    token = runner.argmax()
    t2 = time.perf_counter()
    generated = 0
    while True:
        generated += 1
        if decoder is not None:
            if not args.ignore_eos and tokenizer.is_stop(token):
                break
            out.write(decoder.feed(token))
        else:
            out.write(f"{token} ")
        out.flush()
        if generated == args.n_predict:
            break
        runner.eval([token])
        token = runner.argmax()
    if decoder is not None:
        out.write(decoder.flush())
    t3 = time.perf_counter()
    n_dec = max(generated - 1, 0)
    prefill_s, decode_s = t2 - t1, t3 - t2
    print(f"\n[load {load_ms:.0f} ms | prompt {len(prompt)} tokens, {len(prompt) / prefill_s:.1f} tok/s | "
          f"generated {generated} tokens, {n_dec / decode_s if n_dec and decode_s > 0 else 0.0:.1f} tok/s | "
          f"threads {args.threads}]", file=sys.stderr)
    runner.close()
    return 0
