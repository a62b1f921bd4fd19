"""Runs inside the harness's Pyodide worker (tests/browser/test_webgpu_sampling_browser.py):
GPU sampling (shaders/sample.wgsl compiled by Tint, run on the browser's adapter) against
the wasm engine's C sampler (wasm_ext/engine_sampler.cpp) on the same logits, the same
settings and the same position of the same PCG32 stream. Everything returns plain
JSON-able values; the test asserts on them.
"""
import array
import random

import js
import pyllm_engine_wasm

from app.backends.ggml.library import load_library
from app.backends.ggml.runner import GGMLRunner
from app.backends.webgpu import WebGPURunner
from app.backends.webgpu.sampler import HOST, OK, GPUSampler
from app.backends.webgpu.stream import GPUModelStream
from app.generate.llm import LLM
from app.gguf import read_gguf
from app.models import model_for
from app.sampling import Sampler, SamplingParams

F32 = 0
LIB = load_library(pyllm_engine_wasm.LIBRARY)


async def load(dev, name: str, n_ctx: int = 256):
    """The model streamed from the site into GPU buffers, and the same bytes as a file for
    the wasm engine's ggml (a small test model)."""
    reader = (await js.fetch(name)).body.getReader()
    ms = GPUModelStream(name, None, make_runner=lambda g, loader: WebGPURunner(
        model_for(g), n_ctx=n_ctx, device=dev, loader=loader, lib=LIB))
    chunks = []
    while True:
        r = await reader.read()
        if r.done:
            break
        data = r.value.to_bytes()
        chunks.append(data)
        ms.feed(data)
    path = "/tmp/" + name
    with open(path, "wb") as f:
        f.write(b"".join(chunks))
    return ms.finish(), path


def decode_steps(gpu, settings: list, prompt: list, n_steps: int) -> list:
    """Per setting: a prefill, then decode steps; each step's token from the GPU sampler
    (`runner.sample`: 8 bytes read back) and from the C sampler over the logits row read
    back, with twin streams seeded alike. The C sampler's token is fed on."""
    out = []
    for i, opts in enumerate(settings):
        params = SamplingParams(**opts, seed=100 + i)
        draws, c_side = Sampler(LIB), Sampler(LIB)
        draws.configure(params, n_ctx=gpu.kv_size)
        c_side.configure(params, n_ctx=gpu.kv_size)
        gpu.reset()
        gpu.eval(prompt)
        history = list(prompt)
        got, want, on_gpu = [], [], 0
        for _ in range(n_steps):
            before = gpu.stats["gpu_samples"]
            got.append(gpu.sample(draws, history))
            on_gpu += gpu.stats["gpu_samples"] - before
            want.append(c_side.sample(gpu._host_logits(LIB), 0, history))
            history.append(want[-1])
            gpu.eval([want[-1]])
        out.append({"setting": i, "got": got, "want": want, "on_gpu": on_gpu, "argmax_last": gpu.argmax()})
    return out


class _Row:
    """One F32 row in an engine tensor (what the C sampler reads)."""

    def __init__(self, n: int) -> None:
        eng = LIB.check(LIB.eng_new(1), "engine")
        pool = LIB.check(LIB.eng_pool_new(eng, 1), "pool")
        self.t = LIB.check(LIB.eng_pool_tensor(pool, F32, float(n), 1.0, 1.0, 1.0, 0), "tensor")
        LIB.check(LIB.eng_pool_alloc(pool), "alloc")

    def set(self, x: array.array) -> None:
        ptr, n = x.buffer_info()
        LIB.check(LIB.eng_tensor_set(self.t, 0.0, ptr, float(4 * n)), "set")


def synthetic_rows(dev, kernels, settings: list, n_vocab: int, n_draws: int) -> list:
    """GPUSampler on random rows of a large vocabulary (radix select over several passes,
    id-order chunks), ties at the top every third row, a penalty history."""
    gs = GPUSampler(dev, kernels)
    logits = dev.buffer(4 * n_vocab, "logits")
    row = _Row(n_vocab)
    out = []
    for i, opts in enumerate(settings):
        params = SamplingParams(**opts, seed=1234 + i)
        draws, c_side = Sampler(LIB), Sampler(LIB)
        draws.configure(params, n_ctx=256)
        c_side.configure(params, n_ctx=256)
        window = draws.penalty_window
        rng = random.Random(i)
        history = [rng.randrange(50) for _ in range(30)]
        res = {"setting": i, "got": [], "want": [], "status": [], "top": []}
        for d in range(n_draws):
            scale = (1.0, 3.0, 8.0)[d % 3]
            x = array.array("f", [scale * rng.gauss(0.0, 1.0) for _ in range(n_vocab)])
            if d % 3 == 0:
                m = max(x)
                for _ in range(5):
                    x[rng.randrange(n_vocab)] = m
            row.set(x)
            dev.write(logits, 0, x)
            want = c_side.sample(row.t, 0, history)
            r = 0.0 if params.greedy else draws.uniform()
            got, status = gs.sample(logits, 0, n_vocab, params, r, history, window)
            res["got"].append(got)
            res["want"].append(want)
            res["status"].append({OK: "ok", HOST: "host"}.get(status, str(status)))
            res["top"].append(max(range(n_vocab), key=x.__getitem__))
            history.append(want)
        out.append(res)
    return out


def generation_api(gpu, path: str, settings: list, prompt: list, n: int) -> list:
    """app.generate (the worker's loop) on the WebGPU runner: tokens sampled on the GPU; the
    same runner sampling on the host (the logits read back into the C sampler); greedy also
    the wasm engine's ggml."""
    out = []
    gpu_sample = gpu.sample
    for opts in settings:
        replies, counts = [], []
        for host in (False, True):
            gpu.sample = (lambda s, h: s.sample(gpu._host_logits(s.lib), 0, h)) if host else gpu_sample
            before = gpu.stats["gpu_samples"]
            reply = LLM(gpu).complete(prompt, max_tokens=n, ignore_eos=True, **opts)
            for _ in reply:
                pass
            replies.append(list(reply.tokens))
            counts.append(gpu.stats["gpu_samples"] - before)
        gpu.sample = gpu_sample
        if opts.get("temperature") == 0.0:
            ref = GGMLRunner(model_for(read_gguf(path)), path, n_ctx=256, lib=LIB)
            reply = LLM(ref).complete(prompt, max_tokens=n, ignore_eos=True, **opts)
            for _ in reply:
                pass
            replies.append(list(reply.tokens))
            ref.close()
        out.append({"replies": replies, "gpu_samples": counts})
    return out
