"""Streaming a model into GPU buffers (app/backends/webgpu/stream.py, weights.py), the way
the browser worker loads it: chunks of any size, nothing whole in memory. On the host
adapter (wgpu-py): a streamed model computes exactly what one loaded from the file does,
including split tensors (a forced small binding limit), BF16 widening and unaligned
chunk boundaries; a cut-off stream is a clear error."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.backends.webgpu import WebGPURunner, WgpuDevice  # noqa: E402
from app.backends.webgpu.stream import GPUModelStream  # noqa: E402
from app.gguf import GGUFError, read_gguf  # noqa: E402
from app.models import model_for  # noqa: E402


@pytest.fixture(scope="module")
def device():
    return WgpuDevice()


def _stream(path: Path, device, chunk: int, header: bytes | None = None, **kw) -> GPUModelStream:
    ms = GPUModelStream(path.name, path.stat().st_size, header=header,
                        make_runner=lambda g, loader: WebGPURunner(model_for(g), n_ctx=64, device=device,
                                                                   loader=loader, **kw))
    data = path.read_bytes()
    for off in range(0, len(data), chunk):
        n = min(chunk, len(data) - off)
        ms.staging(n)
        ms._buf[:n] = data[off:off + n]  # what the worker's HEAPU8.set does
        ms.feed_staged(n)
    return ms


@pytest.mark.parametrize("type_name,chunk,max_binding", [("Q4_0", 997, None), ("BF16", 4093, None),
                                                         ("Q4_0", 65537, 40_000), ("F32", 1 << 20, 100_000)])
def test_streamed_model_computes_what_the_file_loaded_one_does(device, type_name, chunk, max_binding):
    from tools.testmodels import tiny
    path = tiny("llama", type_name)
    runner = _stream(path, device, chunk, max_binding=max_binding).finish()
    ref = WebGPURunner(model_for(read_gguf(str(path))), str(path), n_ctx=64, device=device, max_binding=max_binding)
    if max_binding:
        assert runner.weights.token_embd.parts and len(runner.weights.token_embd.parts) > 1
    for r in (runner, ref):
        r.eval([5, 9, 200, 17], all_logits=True)
    for row in range(4):
        assert runner.logits(row) == ref.logits(row)
    runner.eval([3])
    ref.eval([3])
    assert runner.logits() == ref.logits() and runner.argmax() == ref.argmax()


def test_a_stored_header_skips_the_parse(device):
    """The page's second load of a stored model (app/gguf/header_cache.py): the header
    comes from the first load, checked against the stream's own bytes."""
    from tools.testmodels import tiny
    path = tiny("qwen3", "Q8_0")  # alignment padding after its tensor table
    first = _stream(path, device, 4093)
    blob = first.header_blob()
    assert blob and not first.header_from_cache
    ref = first.finish()
    second = _stream(path, device, 997, header=blob)
    assert second.header_from_cache and second.gguf.tensors == first.gguf.tensors
    runner = second.finish()
    for r in (runner, ref):
        r.eval([5, 9, 200, 17])
    assert runner.logits() == ref.logits()


def test_truncated_stream_is_a_clear_error(device):
    from tools.testmodels import tiny
    path = tiny("llama", "Q4_0")
    ms = GPUModelStream(path.name, path.stat().st_size,
                        make_runner=lambda g, loader: WebGPURunner(model_for(g), n_ctx=64, device=device,
                                                                   loader=loader))
    data = path.read_bytes()
    ms.feed(data[: len(data) * 2 // 3])
    with pytest.raises(GGUFError, match="truncated file"):
        ms.finish()


def test_close_frees_the_gpu_memory(device):
    from tools.testmodels import tiny
    path = tiny("llama", "Q4_0")
    r = WebGPURunner(model_for(read_gguf(str(path))), str(path), n_ctx=64, device=device, max_binding=40_000)
    r.eval([1, 2, 3])
    embd = r.weights.token_embd
    bufs = [p[0] for p in embd.parts] + [r.caches[0].k]
    r.close()
    for b in bufs:  # destroyed: using one again is an error
        with pytest.raises(Exception):
            device.write(b, 0, b"\0\0\0\0")
            device.sync()


def test_generation_api_on_webgpu_matches_ggml(device):
    """app.generate's loop over a WebGPURunner (as the browser worker drives it): greedy and
    seeded sampling give what the ggml backend gives on an F32 model."""
    from app.backends.ggml.runner import GGMLRunner
    from app.generate import LLM
    from tools.testmodels import tiny
    path = tiny("llama", "F32")
    model = model_for(read_gguf(str(path)))
    gpu = LLM(WebGPURunner(model, str(path), n_ctx=128, device=device))
    ref = LLM(GGMLRunner(model, str(path), n_ctx=128))
    for opts in ({"temperature": 0.0}, {"temperature": 0.8, "seed": 3}):
        a = gpu.complete([1, 5, 9, 200], max_tokens=16, ignore_eos=True, **opts)
        b = ref.complete([1, 5, 9, 200], max_tokens=16, ignore_eos=True, **opts)
        a.read()
        b.read()
        assert a.tokens == b.tokens and len(a.tokens) == 16
    # the state is reused across requests (a continued prompt evaluates only the new tokens)
    c = gpu.complete([1, 5, 9, 200] + a.tokens[:4], max_tokens=2, temperature=0.0)
    c.read()
    assert c.stats.prefill_tokens <= 5
    gpu.close()
    ref.close()


def test_size_and_sha256_are_checked(device):
    """As ModelStream: the announced size and (when the catalogue knows it) the sha256."""
    import hashlib
    from tools.testmodels import tiny
    path = tiny("llama", "Q4_0")
    data = path.read_bytes()

    def stream(size, sha):
        ms = GPUModelStream(path.name, size, sha256=sha,
                            make_runner=lambda g, loader: WebGPURunner(model_for(g), n_ctx=64, device=device,
                                                                       loader=loader))
        ms.feed(data)
        return ms.finish()

    assert stream(len(data), hashlib.sha256(data).hexdigest()) is not None
    with pytest.raises(GGUFError, match="sha256 mismatch"):
        stream(len(data), "0" * 64)
    with pytest.raises(GGUFError, match=f"expected {len(data) + 5}"):
        stream(len(data) + 5, None)
