"""The engine's sampler chain against a numpy reference of llama.cpp's chain, its
empirical distribution (chi-square), seeding and determinism."""
from __future__ import annotations

import math

import numpy as np
import pytest

from app.backends.ggml.library import EngineError
from app.sampling import Sampler, SamplingParams
from sampling_support import LogitsTensors, Pcg32, chi_square_threshold, reference_distribution


@pytest.fixture(scope="module")
def tensors(engine_library):
    t = LogitsTensors(engine_library)
    yield t
    t.close()


@pytest.fixture()
def sampler(engine_library):
    s = Sampler(engine_library)
    yield s
    s.close()


def _logits(n: int, seed: int, scale: float = 2.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


CHAINS = {
    "llama.cpp defaults": dict(),
    "top_k only": dict(top_k=12, top_p=1.0, min_p=0.0, temperature=1.0),
    "top_p only": dict(top_k=0, top_p=0.7, min_p=0.0, temperature=1.3),
    "min_p only": dict(top_k=0, top_p=1.0, min_p=0.2, temperature=0.7),
    "typical": dict(top_k=0, top_p=1.0, min_p=0.0, typical_p=0.6, temperature=1.0),
    "everything": dict(top_k=30, typical_p=0.9, top_p=0.8, min_p=0.02, temperature=0.6, repeat_penalty=1.3,
                       frequency_penalty=0.2, presence_penalty=0.5, logit_bias={3: 2.5, 7: -math.inf}),
}


def _reference(logits: np.ndarray, params: SamplingParams, recent: list[int]) -> dict[int, float]:
    return reference_distribution(logits, params.temperature, params.top_k, params.top_p, params.min_p,
                                  params.typical_p, params.min_keep, params.logit_bias, recent,
                                  params.repeat_penalty, params.frequency_penalty, params.presence_penalty)


@pytest.mark.parametrize("name", CHAINS)
def test_candidates_match_reference_chain(name, tensors, sampler):
    for trial in range(3):
        logits = _logits(200, seed=10 * trial + len(name))
        t = tensors.make(logits)
        params = SamplingParams(seed=trial, **CHAINS[name])
        recent = [3, 5, 5, 9, 11, 11, 11]
        sampler.configure(params)
        token = sampler.sample(t, 0, recent)
        got = dict(sampler.candidates())
        want = _reference(logits, params, recent)
        assert set(got) == set(want), name
        assert token in want
        for tid, p in want.items():
            assert got[tid] == pytest.approx(p, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("name", ["llama.cpp defaults", "top_p only", "typical", "everything"])
def test_empirical_distribution_chi_square(name, tensors, sampler):
    """N draws; Pearson's chi-square against the reference distribution must stay under
    its p = 1e-4 quantile, and no token outside the truncated set is ever drawn."""
    logits = _logits(64, seed=7, scale=1.0)
    t = tensors.make(logits)
    params = SamplingParams(seed=1234, **CHAINS[name])
    recent = [3, 5, 5, 9]
    want = _reference(logits, params, recent)
    sampler.configure(params)
    n = 20000
    counts: dict[int, int] = {}
    for _ in range(n):
        tok = sampler.sample(t, 0, recent)
        counts[tok] = counts.get(tok, 0) + 1
    assert set(counts) <= set(want)
    ids = sorted(want)
    expected = np.array([want[i] * n for i in ids])
    observed = np.array([counts.get(i, 0) for i in ids])
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    assert len(ids) > 3
    assert chi2 < chi_square_threshold(len(ids) - 1), (name, chi2, len(ids))


def test_greedy_is_exact_argmax(tensors, sampler, engine_library):
    rows = np.stack([_logits(1000, seed=s) for s in range(5)])
    rows[2, [17, 400]] = rows[2].max() + 1.0  # a tie: the first index wins, as eng_argmax
    t = tensors.make(rows)
    sampler.configure(SamplingParams(temperature=0.0))
    for r in range(5):
        assert sampler.sample(t, r) == engine_library.eng_argmax(t, r) == int(np.argmax(rows[r]))
        assert sampler.candidates() == [(int(np.argmax(rows[r])), 1.0)]
    # greedy sees the bias and penalties first
    sampler.configure(SamplingParams(temperature=0.0, logit_bias={5: 100.0}))
    assert sampler.sample(t, 0) == 5
    sampler.configure(SamplingParams(temperature=0.0, repeat_penalty=1e6))
    best = int(np.argmax(rows[0]))
    assert sampler.sample(t, 0, [best]) != best


def test_same_seed_same_sequence(tensors, sampler):
    t = tensors.make(_logits(500, seed=3))
    runs = []
    for seed in (42, 42, 43):
        sampler.configure(SamplingParams(seed=seed, top_k=0, min_p=0.0))
        runs.append([sampler.sample(t, 0) for _ in range(200)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    # the sequence is a contract (PCG32 + our exp): the same on every build, native or wasm
    assert runs[0][:12] == GOLDEN_SEED_42


GOLDEN_SEED_42 = [329, 407, 9, 9, 468, 9, 9, 468, 354, 9, 242, 386]  # recorded from the native build


def test_rng_is_pcg32(sampler):
    for seed in (0, 1, 2 ** 32 + 5, 2 ** 64 - 1):
        sampler.seed(seed)
        ref = Pcg32(seed)
        assert [sampler.uniform() for _ in range(50)] == [ref.uniform() for _ in range(50)]


def test_draw_uses_one_uniform_per_token(tensors, sampler):
    """With only temperature on, the draw is the inverse CDF of one uniform over the
    candidates in id order: a full check of the draw against our own PCG32 stream."""
    logits = _logits(50, seed=11)
    t = tensors.make(logits)
    sampler.configure(SamplingParams(seed=9, top_k=0, top_p=1.0, min_p=0.0, temperature=1.0))
    dist = reference_distribution(logits, 1.0, 0, 1.0, 0.0)
    cdf = np.cumsum([dist[i] for i in range(50)])
    ref = Pcg32(9)
    for _ in range(300):
        u = ref.uniform()
        assert sampler.sample(t, 0) == int(np.searchsorted(cdf, u, side="right"))


def test_large_vocabulary_nucleus(tensors, sampler):
    """262,144 logits (Gemma's vocabulary) with top-k off: the nucleus found without a full
    sort equals the reference's."""
    logits = _logits(262144, seed=5, scale=3.0)
    t = tensors.make(logits)
    params = SamplingParams(seed=1, top_k=0, top_p=0.9, min_p=0.0, temperature=1.0)
    sampler.configure(params)
    sampler.sample(t, 0)
    got = sampler.candidates()
    want = _reference(logits, params, [])
    assert len(got) == len(want) > 1000
    assert [i for i, _ in got] == sorted(want, key=lambda i: (-logits[i], i))
    assert max(abs(p - want[i]) for i, p in got) < 1e-7


def test_bans_and_errors(tensors, sampler):
    logits = _logits(20, seed=2)
    t = tensors.make(logits)
    best = int(np.argmax(logits))
    sampler.configure(SamplingParams(seed=0, logit_bias={best: -math.inf}, temperature=5.0, top_k=0, top_p=1.0,
                                     min_p=0.0))
    assert best not in {sampler.sample(t, 0) for _ in range(300)}
    sampler.configure(SamplingParams(logit_bias={i: -math.inf for i in range(20)}))
    with pytest.raises(EngineError, match="all banned"):
        sampler.sample(t, 0)
    sampler.configure(SamplingParams(logit_bias={25: 1.0}))
    with pytest.raises(EngineError, match="outside the vocabulary"):
        sampler.sample(t, 0)
    sampler.configure(SamplingParams())
    with pytest.raises(EngineError, match="row 1 out of range"):
        sampler.sample(t, 1)
