"""Every supported architecture and tensor type against llama.cpp built from the same sources.

For each model: last-position logits after a 64-token prompt (F32/F16/BF16: max abs
difference <= 1e-3 x max |logit|; quantized: same argmax and cosine >= 0.999) and 64
greedy tokens identical to llama.cpp's, at the same thread count.
"""
from __future__ import annotations

import math

import pytest

from app.backends.ggml.runner import GGMLRunner
from app.gguf import read_gguf
from app.models import model_for
from tools.testmodels import TINY, tiny

THREADS = 2
FLOAT_TYPES = ("F32", "F16", "BF16")


def _prompt(n: int, n_vocab: int, seed: int = 0) -> list[int]:
    return [1] + [(i * 7919 + 13 + seed * 104729) % n_vocab for i in range(n - 1)]


def run_ours(path, prompt: list[int], n_predict: int, threads: int = THREADS):
    model = model_for(read_gguf(str(path)))
    runner = GGMLRunner(model, str(path), n_threads=threads, n_ctx=len(prompt) + n_predict + 16)
    try:
        runner.eval(prompt)
        logits = runner.logits()
        tokens = [runner.argmax()]
        while len(tokens) < n_predict:
            runner.eval([tokens[-1]])
            tokens.append(runner.argmax())
        return logits, tokens, runner.stats
    finally:
        runner.close()


def _compare(ours, ref, type_name: str) -> None:
    assert len(ours) == len(ref)
    max_ref = max(abs(x) for x in ref)
    if type_name in FLOAT_TYPES:
        diff = max(abs(a - b) for a, b in zip(ours, ref))
        assert diff <= 1e-3 * max_ref, f"max |diff| {diff} > 1e-3 * {max_ref}"
    else:
        dot = sum(a * b for a, b in zip(ours, ref))
        cos = dot / math.sqrt(sum(a * a for a in ours) * sum(b * b for b in ref))
        assert cos >= 0.999, f"cosine {cos}"
        assert max(range(len(ours)), key=ours.__getitem__) == max(range(len(ref)), key=ref.__getitem__)


def _check(llama_cpp, path, type_name: str, n_prompt: int = 64, n_predict: int = 64, seed: int = 0):
    n_vocab = model_for(read_gguf(str(path))).hp.n_vocab
    prompt = _prompt(n_prompt, n_vocab, seed)
    logits, tokens, stats = run_ours(path, prompt, n_predict)
    ref = llama_cpp.eval(path, prompt, n_predict, threads=THREADS)
    _compare(logits, ref.logits, type_name)
    assert tokens == ref.tokens
    return stats


@pytest.mark.parametrize("type_name", ["F32", "F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"])
@pytest.mark.parametrize("arch", sorted(TINY))
def test_architecture_matches_llama_cpp(llama_cpp, arch, type_name):
    stats = _check(llama_cpp, tiny(arch, type_name), type_name)
    # graph reuse: one prefill graph and one decode graph serve all 64 steps
    assert stats.graphs_built == 2 and stats.steps == 64


@pytest.mark.parametrize("type_name", ["BF16", "Q4_1", "Q5_0", "Q5_1", "Q5_K", "Q2_K", "Q3_K", "IQ4_NL", "IQ4_XS"])
def test_remaining_tensor_types_match_llama_cpp(llama_cpp, type_name):
    _check(llama_cpp, tiny("llama", type_name), type_name)


@pytest.mark.parametrize("arch,type_name", [("gemma3", "Q4_K"), ("llama", "Q8_0"), ("qwen3", "Q4_0")])
def test_long_prompt_chunked_prefill_matches_llama_cpp(llama_cpp, arch, type_name):
    """700 tokens: two prefill chunks (512 + 188), sliding-window masking (gemma3: window 32)
    and decode over more than 512 cached cells (ggml's split-KV attention path)."""
    _check(llama_cpp, tiny(arch, type_name), type_name, n_prompt=700, n_predict=24)


GEMMA_PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
]


@pytest.mark.parametrize("text", GEMMA_PROMPTS)
def test_gemma3_270m_greedy_matches_llama_cpp(llama_cpp, gemma3_270m, text):
    prompt = llama_cpp.tokenize(gemma3_270m, [text])[0]
    assert prompt[0] == 2 and len(prompt) > 4  # <bos> + text
    logits, tokens, _ = run_ours(gemma3_270m, prompt, 64)
    ref = llama_cpp.eval(gemma3_270m, prompt, 64, threads=THREADS)
    _compare(logits, ref.logits, "Q4_K")
    assert tokens == ref.tokens


def test_results_do_not_depend_on_thread_count(llama_cpp):
    path = tiny("qwen2", "Q4_K")
    prompt = _prompt(64, 1024)
    one = run_ours(path, prompt, 32, threads=1)
    two = run_ours(path, prompt, 32, threads=2)
    assert one[1] == two[1]
    assert list(one[0]) == list(two[0])


def test_tied_output_head_reads_its_own_repacked_copy(llama_cpp):
    """qwen2's tiny model ties the output head to token_embd. Where the engine repacks Q4_0
    for mat-muls (x86/ARM builds), the head gets its own repacked copy, as llama.cpp loads a
    tied head, and the embedding lookup keeps the plain table: without the copy the product
    over the whole vocabulary runs on the slow un-repacked kernel (~25% of a small model's
    decode time). Results stay llama.cpp's either way."""
    path = tiny("qwen2", "Q4_0")
    gguf = read_gguf(str(path))
    assert "output.weight" not in gguf.tensor_index
    runner = GGMLRunner(model_for(gguf), str(path), n_ctx=64)
    try:
        embd = gguf.tensor_index["token_embd.weight"]
        repacks = runner.lib.eng_weight_repacks(runner.eng, embd.ggml_type.id, *embd.shape, 1, 1)
        assert repacks in (0, 1)
        head, table = runner.weights._t.get("output"), runner.weights._t["token_embd"]
        assert not runner.lib.eng_tensor_is_repacked(table)
        if repacks:
            assert head is not None and runner.lib.eng_tensor_is_repacked(head)
        else:  # nothing to gain: no second copy of the table
            assert head is None
    finally:
        runner.close()
    _check(llama_cpp, path, "Q4_0")
