"""Python side of the llama.cpp oracle: run tests/reference/llama_ref and parse its output."""
from __future__ import annotations

import array
import json
import os
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ReferenceRun:
    logits: array.array  # last-position logits after the prompt
    tokens: list[int]  # greedy continuation


class Oracle:
    def __init__(self, binary: Path) -> None:
        self.binary = str(binary)

    def eval(self, model: Path | str, prompt: list[int], n_predict: int, threads: int = 2) -> ReferenceRun:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "logits.bin")
            proc = subprocess.run([self.binary, "eval", str(model), str(threads), str(n_predict), out,
                                   *map(str, prompt)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"llama_ref eval failed ({proc.returncode}): {proc.stderr[-2000:]}")
            logits = array.array("f")
            with open(out, "rb") as f:
                logits.frombytes(f.read())
        line = next(l for l in proc.stdout.splitlines() if l.startswith("tokens:"))
        return ReferenceRun(logits, [int(t) for t in line.split()[1:]])

    def bench(self, model: Path | str, threads: int, n_prompt: int, n_gen: int, reps: int) -> list[dict]:
        proc = subprocess.run([self.binary, "bench", str(model), str(threads), str(n_prompt), str(n_gen), str(reps)],
                              capture_output=True, text=True, check=True)
        return [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]

    def tokenize(self, model: Path | str, texts: list[str], add_special: bool = True,
                 parse_special: bool = False) -> list[list[int]]:
        payload = b"".join(struct.pack("<I", len(b)) + b for b in (t.encode("utf-8") for t in texts))
        proc = subprocess.run([self.binary, "tokenize", str(model), str(int(add_special)), str(int(parse_special))],
                              input=payload, capture_output=True, check=True)
        lines = proc.stdout.decode().split("\n")[: len(texts)]
        return [[int(x) for x in l.split()] for l in lines]
