"""Sampling on the GPU (shaders/sample.wgsl) against the engine's C sampler: the same logits,
the same settings and the same position in the same PCG32 stream must give the same token.

The C sampler draws its own uniform number per token; the GPU sampler is given the one a
second C sampler, seeded alike, hands out (`Sampler.uniform()`), which is what the
WebGPU runner does in a generation loop.
"""
from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.backends.webgpu.device import WgpuDevice  # noqa: E402
from app.backends.webgpu.kernels import Kernels  # noqa: E402
from app.backends.webgpu.sampler import HOST, OK, GPUSampler  # noqa: E402
from app.sampling import Sampler, SamplingParams  # noqa: E402

F32 = 0


@pytest.fixture(scope="module")
def dev():
    return WgpuDevice()


@pytest.fixture(scope="module")
def gpu(dev):
    return GPUSampler(dev, Kernels(dev))


class LogitsTensor:
    """One F32 row in an engine tensor (what the C sampler reads)."""

    def __init__(self, lib, n: int) -> None:
        self.lib, self.n = lib, n
        eng = lib.check(lib.eng_new(1), "engine")
        self.pool = lib.check(lib.eng_pool_new(eng, 1), "pool")
        self.t = lib.check(lib.eng_pool_tensor(self.pool, F32, float(n), 1.0, 1.0, 1.0, 0), "tensor")
        lib.check(lib.eng_pool_alloc(self.pool), "alloc")

    def set(self, row: np.ndarray) -> None:
        buf = ctypes.create_string_buffer(row.astype(np.float32).tobytes(), 4 * self.n)
        self.lib.check(self.lib.eng_tensor_set(self.t, 0.0, ctypes.addressof(buf), float(4 * self.n)), "set")


SETTINGS = [
    dict(temperature=0.0),                                       # greedy
    dict(),                                                      # llama.cpp's defaults: k 40, p .95, min-p .05, t .8
    dict(top_k=1),
    dict(top_k=5, top_p=1.0, min_p=0.0, temperature=1.0),
    dict(top_k=200, top_p=0.9, min_p=0.0, temperature=1.3),
    dict(top_k=0, top_p=0.8, min_p=0.0, temperature=0.7),        # nucleus over the whole vocabulary
    dict(top_k=0, top_p=1.0, min_p=0.1, temperature=1.0),        # min-p alone: id order
    dict(top_k=0, top_p=1.0, min_p=0.0, temperature=1.0),        # plain temperature: every token, id order
    dict(top_k=40, top_p=0.5, min_p=0.2, temperature=2.0, min_keep=3),
    dict(top_k=64, logit_bias={3: 5.0, 10: -np.inf, 11: 2.5}, repeat_penalty=1.3, frequency_penalty=0.2,
         presence_penalty=0.1, penalty_last_n=16),
    dict(temperature=0.0, logit_bias={7: 100.0}),                # greedy sees the bias
]


@pytest.mark.parametrize("n_vocab", [1000, 40000])
@pytest.mark.parametrize("setting", range(len(SETTINGS)))
def test_gpu_sampler_picks_what_the_c_sampler_picks(dev, gpu, engine_library, n_vocab, setting):
    opts = dict(SETTINGS[setting])
    params = SamplingParams(**opts, seed=1234 + setting)
    c_side, draws = Sampler(engine_library), Sampler(engine_library)
    window = 16 if params.penalties_on else 0
    c_side.configure(params, n_ctx=256)
    draws.configure(params, n_ctx=256)
    row = LogitsTensor(engine_library, n_vocab)
    logits = dev.buffer(4 * n_vocab, "logits")
    rng = np.random.default_rng(setting)
    history: list[int] = [int(t) for t in rng.integers(0, 50, 30)]
    same, n_draws, on_gpu, not_top = 0, 60, 0, 0
    for i in range(n_draws):
        scale = (1.0, 3.0, 8.0)[i % 3]
        x = (scale * rng.standard_normal(n_vocab)).astype(np.float32)
        if i % 7 == 0:
            x[rng.integers(0, n_vocab, 5)] = x.max()  # ties at the top
        row.set(x)
        dev.write(logits, 0, x.tobytes())
        want = c_side.sample(row.t, 0, history)
        r = 0.0 if params.greedy else draws.uniform()
        got, status = gpu.sample(logits, 0, n_vocab, params, r, history, window)
        assert status in (OK, HOST)
        if status == OK:
            same += got == want
            on_gpu += 1
            not_top += got != int(np.argmax(x))
        else:
            same += 1  # the host would sample this one: same C code
            assert opts.get("top_k", 40) == 0  # only a full-vocabulary nucleus may overflow the list
        history.append(want)
    assert same == n_draws, f"{n_draws - same} of {n_draws} draws differ"
    # the GPU answered (only a wide full-vocabulary nucleus goes back to the host) and drew
    assert on_gpu == n_draws or (opts.get("top_k") == 0 and opts.get("top_p", 1.0) < 1.0)
    assert on_gpu > 0
    if not params.greedy and params.top_k != 1:
        assert not_top > 0


@pytest.mark.parametrize("opts", [dict(temperature=0.0), dict(seed=11), dict(seed=5, top_k=0, top_p=0.9, min_p=0.0),
                                  dict(seed=3, top_k=0, top_p=1.0, min_p=0.0, temperature=1.5, repeat_penalty=1.2)])
def test_generation_api_samples_on_the_gpu(dev, opts):
    """The generation loop (app.generate) on a WebGPU runner samples on the GPU (only token
    ids come back) and generates what the C sampler picks from the same runner's logits
    read back to the host, with the same seed; greedy also matches the ggml backend."""
    from app.backends.ggml.runner import GGMLRunner
    from app.backends.webgpu import WebGPURunner
    from app.generate.llm import LLM
    from app.gguf import read_gguf
    from app.models import model_for
    from tools.testmodels import tiny
    path = tiny("llama", "F32")
    model = model_for(read_gguf(str(path)))
    gpu_runner = WebGPURunner(model, path, n_ctx=128, device=dev)
    host_runner = WebGPURunner(model, path, n_ctx=128, device=dev)
    host_runner.sample = lambda sampler, history: sampler.sample(host_runner._host_logits(sampler.lib), 0, history)
    llms = [LLM(gpu_runner), LLM(host_runner)]
    if opts.get("temperature") == 0.0:
        llms.append(LLM(GGMLRunner(model, path, n_ctx=128)))
    prompt = [1, 50, 60, 70, 80]
    replies = []
    for llm in llms:
        reply = llm.complete(prompt, max_tokens=32, ignore_eos=True, **opts)
        for _ in reply:
            pass
        replies.append(reply.tokens)
    assert len(replies[0]) == 32 and all(r == replies[0] for r in replies[1:])
    assert gpu_runner.stats["gpu_samples"] == 32 and host_runner.stats["gpu_samples"] == 0
    if opts.get("temperature", 0.8) > 0:
        assert len(set(replies[0])) > 4  # it sampled, not a greedy loop
