"""Recurrent architectures (Mamba-1, Falcon-Mamba, Qwen 3.5's Gated DeltaNet hybrid) against
llama.cpp built from the same sources, as tests/test_models_vs_llamacpp.py does for the
transformers: last logits after a 64-token prompt and 64 greedy tokens, per tensor type;
a long prompt prefilled in 512-token chunks; state memory independent of the context size;
truncation refused where a recurrent state cannot be rolled back."""
from __future__ import annotations

import pytest

from app.backends.ggml.runner import GGMLRunner
from app.gguf import read_gguf
from app.models import model_for
from test_models_vs_llamacpp import THREADS, _check, _prompt
from tools.testmodels import TINY_RECURRENT, tiny

TYPES = ["F32", "F16", "Q8_0", "Q4_0", "Q4_K"]
ARCHS = [a for a in sorted(TINY_RECURRENT) if a != "falcon-mamba"]


@pytest.mark.parametrize("type_name", TYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_recurrent_matches_llama_cpp(llama_cpp, arch, type_name):
    stats = _check(llama_cpp, tiny(arch, type_name), type_name)
    assert stats.graphs_built == 2 and stats.steps == 64  # one prefill graph, one decode graph


@pytest.mark.parametrize("type_name", ["F32", "Q4_0"])
def test_falcon_mamba_rms_on_dt_b_c_matches_llama_cpp(llama_cpp, type_name):
    _check(llama_cpp, tiny("falcon-mamba", type_name), type_name)


@pytest.mark.parametrize("arch,type_name", [("mamba", "Q8_0"), ("qwen35", "Q4_0")])
def test_long_prompt_chunked_prefill_matches_llama_cpp(llama_cpp, arch, type_name):
    """2048 prompt tokens in four 512-token chunks, then decode."""
    stats = _check(llama_cpp, tiny(arch, type_name), type_name, n_prompt=2048, n_predict=8)
    assert stats.steps == 4 + 7


def _runner(arch: str, n_ctx: int) -> GGMLRunner:
    path = tiny(arch, "F32")
    return GGMLRunner(model_for(read_gguf(str(path))), str(path), n_threads=THREADS, n_ctx=n_ctx)


def test_recurrent_state_memory_is_constant_in_context_length():
    small, large = _runner("mamba", 256), _runner("mamba", 65536)
    try:
        m = small.model
        per_layer = 4 * ((m.d_conv - 1) * m.d_inner + m.d_state * m.d_inner)
        assert small.state_bytes == large.state_bytes == m.hp.n_layer * per_layer
        assert small.cache_bytes == large.cache_bytes == 0  # no KV cache at all
    finally:
        small.close()
        large.close()
    small, large = _runner("qwen35", 256), _runner("qwen35", 4096)
    try:  # hybrid: DeltaNet states fixed, only the attention layer's KV cache grows with n_ctx
        m = small.model
        n_rec = sum(m.recurrent)
        assert 0 < n_rec < m.hp.n_layer
        assert small.state_bytes == large.state_bytes == 4 * n_rec * sum(m.recurrent_state(0))
        assert large.cache_bytes == 16 * small.cache_bytes > 0
    finally:
        small.close()
        large.close()


@pytest.mark.parametrize("arch", ARCHS)
def test_truncate_refuses_to_roll_back_a_recurrent_state(arch):
    r = _runner(arch, 256)
    try:
        prompt = _prompt(20, r.hp.n_vocab)
        r.eval(prompt)
        first = r.argmax()
        with pytest.raises(ValueError, match="recurrent"):
            r.truncate(10)
        assert r.n_past == 20 and r.tokens == prompt  # unchanged
        r.truncate(20)  # no-op
        r.truncate(0)  # reset: the state starts from zero again
        assert r.n_past == 0 and r.tokens == []
        r.eval(prompt)
        assert r.argmax() == first
    finally:
        r.close()
