"""`python -m app generate`: streams the same greedy tokens as llama.cpp and ends with a stats line."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tools.testmodels import tiny

ROOT = Path(__file__).resolve().parent.parent
STATS = re.compile(r"\[load \d+ ms \| prompt (\d+) tokens, [\d.]+ tok/s \| generated (\d+) tokens, [\d.]+ tok/s "
                   r"\| threads (\d+)\]")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", "generate", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_generate_token_ids_match_llama_cpp(llama_cpp):
    path = tiny("qwen3", "Q4_K")
    prompt = [1, 17, 250, 3, 999, 64, 512, 7]
    proc = _cli("--model", str(path), "--prompt-ids", ",".join(map(str, prompt)), "-n", "24", "--threads", "2",
                "--ids", "--ignore-eos")
    assert proc.returncode == 0, proc.stderr
    tokens = [int(t) for t in proc.stdout.split()]
    assert tokens == llama_cpp.eval(path, prompt, 24).tokens
    m = STATS.search(proc.stderr)
    assert m and m.groups() == ("8", "24", "2")


def test_generate_text_streams_gemma_reply(gemma3_270m, llama_cpp):
    prompt = "The capital of France is"
    proc = _cli("--model", str(gemma3_270m), "--prompt", prompt, "-n", "16", "--threads", "2", "--ignore-eos")
    assert proc.returncode == 0, proc.stderr
    ids = llama_cpp.tokenize(gemma3_270m, [prompt])[0]
    ref = llama_cpp.eval(gemma3_270m, ids, 16).tokens
    from app.tokenizer import load_tokenizer
    assert proc.stdout.rstrip("\n") == load_tokenizer(str(gemma3_270m)).decode(ref)
    m = STATS.search(proc.stderr)
    assert m and m.group(1) == str(len(ids)) and m.group(2) == "16"


def test_generate_reports_bad_model_clearly(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"not a model at all")
    proc = _cli("--model", str(bad), "--prompt", "hi")
    assert proc.returncode == 1
    assert "not a GGUF file" in proc.stderr and "Traceback" not in proc.stderr
