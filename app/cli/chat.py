"""`chat`: an interactive, streaming multi-turn chat in the terminal.

Type a message and press Enter. Commands: /regen (answer the last message again),
/edit TEXT (replace the last message), /undo, /reset, /quit. Ctrl-C while a reply
streams stops it; Ctrl-C or Ctrl-D at the prompt quits.
"""
from __future__ import annotations

import argparse
import sys

from .complete import add_common_args, load, options_from_args, report, stream

HELP = "commands: /regen, /edit TEXT, /undo, /reset, /quit"


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="interactive multi-turn chat (streams replies)")
    p.add_argument("--system", default=None, help="system prompt")
    add_common_args(p)


def _read(prompt: str) -> str | None:
    try:
        return input(prompt)
    except (EOFError, KeyboardInterrupt):
        return None


def run(args: argparse.Namespace) -> int:
    from ..generate import ContextFullError, OptionError, make_options
    try:
        options = options_from_args(args)
        make_options(**options)  # bad options fail before the model loads
    except OptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        llm = load(args)
        chat = llm.chat(system=args.system, **options)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"[{args.model}: context {llm.n_ctx} tokens, {llm.threads} threads; {HELP}]", file=sys.stderr)
    try:
        while True:
            line = _read("> " if interactive else "")
            if line is None or line.strip() == "/quit":
                break
            text = line.strip()
            if not text:
                continue
            try:
                if text == "/regen":
                    reply = chat.regenerate()
                elif text.startswith("/edit "):
                    reply = chat.edit_last(text[len("/edit "):])
                elif text == "/undo":
                    chat.undo()
                    continue
                elif text == "/reset":
                    chat.reset()
                    continue
                elif text.startswith("/"):
                    print(HELP, file=sys.stderr)
                    continue
                else:
                    reply = chat.send(line)
                stream(reply)
                report(reply, args.quiet)
            except OptionError as exc:
                print(f"\nerror: {exc}", file=sys.stderr)
                return 2
            except (ContextFullError, RuntimeError, ValueError) as exc:  # ValueError: the chat template's
                print(f"\nerror: {exc}", file=sys.stderr)
    finally:
        llm.close()
    return 0
