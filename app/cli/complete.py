"""`complete`: continue a prompt with the sampler chain, streaming the text.

Also holds the generation flags shared with `chat` (each maps to one API option; flags
left out keep the library's defaults, which are llama.cpp's).
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from typing import Any, Iterator

# flag -> (API option, type, help)
GENERATION_FLAGS = {
    "--max-tokens": ("max_tokens", int, "most tokens to generate (default 512)"),
    "--temperature": ("temperature", float, "0 = greedy (default 0.8)"),
    "--top-k": ("top_k", int, "0 = off (default 40)"),
    "--top-p": ("top_p", float, "1 = off (default 0.95)"),
    "--min-p": ("min_p", float, "0 = off (default 0.05)"),
    "--typical-p": ("typical_p", float, "1 = off (default 1)"),
    "--repeat-penalty": ("repeat_penalty", float, "1 = off (default 1)"),
    "--presence-penalty": ("presence_penalty", float, "0 = off"),
    "--frequency-penalty": ("frequency_penalty", float, "0 = off"),
    "--penalty-last-n": ("penalty_last_n", int, "tokens the penalties look back over (default 64, -1 = all)"),
    "--seed": ("seed", int, "sampler seed (default: random, reported in the stats)"),
    "--on-context-full": ("on_context_full", str, "error (default) or drop_oldest"),
}


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="path of a GGUF file")
    p.add_argument("--threads", type=int, default=None, help="engine threads (default: cores, at most 8)")
    p.add_argument("--ctx", type=int, default=4096, help="context size in tokens")
    for flag, (_, typ, text) in GENERATION_FLAGS.items():
        p.add_argument(flag, type=typ, default=None, help=text)
    p.add_argument("-n", dest="max_tokens_short", type=int, default=None, help="same as --max-tokens")
    p.add_argument("--stop", action="append", default=None, help="stop string (repeatable)")
    p.add_argument("--ignore-eos", action="store_true", help="never end at end-of-generation tokens")
    p.add_argument("--quiet", action="store_true", help="no stats line")


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    opts = {name: getattr(args, flag[2:].replace("-", "_")) for flag, (name, _, _) in GENERATION_FLAGS.items()}
    if args.max_tokens_short is not None:
        opts["max_tokens"] = args.max_tokens_short
    opts["stop"] = args.stop
    opts["ignore_eos"] = args.ignore_eos or None
    return {k: v for k, v in opts.items() if v is not None}


@contextlib.contextmanager
def interrupt_cancels(reply: Any) -> Iterator[None]:
    """While a reply streams, Ctrl-C cancels it (between tokens) instead of killing us."""
    try:
        previous = signal.signal(signal.SIGINT, lambda *_: reply.cancel())
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stream(reply: Any, out: Any = None) -> None:
    out = out or sys.stdout
    with interrupt_cancels(reply):
        for piece in reply:
            out.write(piece.text)
            out.flush()


def report(reply: Any, quiet: bool) -> None:
    if not quiet:
        seed = f" | seed {reply.seed}" if reply.seed is not None else ""
        print(f"\n[{reply.stop_reason} | {reply.stats.summary()}{seed}]", file=sys.stderr)


def load(args: argparse.Namespace) -> Any:
    from ..generate import load as load_model
    return load_model(args.model, n_ctx=args.ctx, threads=args.threads)


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="continue a prompt with sampling (streams text)")
    p.add_argument("--prompt", default=None, help="prompt text (default: read stdin)")
    p.add_argument("--prompt-file", default=None, help="read the prompt from a file")
    add_common_args(p)


def run(args: argparse.Namespace) -> int:
    from ..generate import ContextFullError, OptionError, make_options
    try:
        options = options_from_args(args)
        make_options(**options)  # bad options fail before the model loads
    except OptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.prompt_file is not None:
        with open(args.prompt_file, encoding="utf-8") as f:
            prompt = f.read()
    else:
        prompt = args.prompt if args.prompt is not None else sys.stdin.read()
    try:
        llm = load(args)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        reply = llm.complete(prompt, **options)
        stream(reply)
    except (OptionError, ContextFullError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    finally:
        llm.close()
    report(reply, args.quiet)
    return 0
