"""Host command line: one module per subcommand, each exposing add_parser() and run()."""
from __future__ import annotations

import argparse
import sys

from . import chat, complete, generate

# subcommand name -> module with add_parser(subparsers) and run(args) -> int
COMMANDS = {"generate": generate, "chat": chat, "complete": complete}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="Python LLM runtime (host CLI)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_parser(sub, name)
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
