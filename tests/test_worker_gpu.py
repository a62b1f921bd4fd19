"""The worker's backend choice (app/worker/gpu.py) for each kind of adapter: "auto" takes a
hardware adapter, keeps the wasm engine on a software one or without JS Promise
Integration, and says why; "webgpu" insists (a clear error when it cannot); "wasm" never
opens the GPU. The adapter itself is faked here (the real one is tested in Chromium:
tests/browser/test_webgpu_browser.py)."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.backends.webgpu.device import DeviceError  # noqa: E402
from app.worker import gpu  # noqa: E402


class Session:
    gpu = None


def _with_adapter(monkeypatch, **probe):
    dev = type("FakeDevice", (), {"lost": False, "name": probe.get("adapter", "Some GPU")})()
    info = {"available": True, "adapter": "Some GPU", "software": False, "reason": "", **probe}
    monkeypatch.setattr(gpu, "_probe", info)
    monkeypatch.setattr(gpu, "_device", dev)
    return dev


def _select(pref):
    s = Session()
    return s, asyncio.run(gpu.select(s, pref))


def test_auto_takes_a_hardware_adapter(monkeypatch):
    dev = _with_adapter(monkeypatch)
    s, res = _select("auto")
    assert res == {"backend": "webgpu", "adapter": "Some GPU", "reason": ""} and s.gpu is dev


def test_auto_keeps_wasm_on_a_software_adapter_and_says_why(monkeypatch):
    _with_adapter(monkeypatch, adapter="google swiftshader", software=True)
    s, res = _select("auto")
    assert res["backend"] == "wasm" and s.gpu is None and "software rasterizer" in res["reason"]
    s, res = _select("webgpu")  # asked for: used anyway
    assert res["backend"] == "webgpu" and s.gpu is not None


def test_no_promise_integration_or_adapter(monkeypatch):
    _with_adapter(monkeypatch, available=False, reason="this browser cannot wait for a GPU read-back")
    s, res = _select("auto")
    assert res["backend"] == "wasm" and "read-back" in res["reason"]
    with pytest.raises(DeviceError, match="WebGPU is not usable here: this browser cannot wait"):
        _select("webgpu")


def test_wasm_and_bad_choice(monkeypatch):
    _with_adapter(monkeypatch)
    s, res = _select("wasm")
    assert res["backend"] == "wasm" and s.gpu is None
    with pytest.raises(ValueError, match="unknown backend 'cuda'; supported: auto, webgpu, wasm"):
        _select("cuda")


class _LoadSession:
    """What gpu_model_stream uses of a WorkerSession: its device, engine, events."""

    def __init__(self, device) -> None:
        from app.backends.ggml.library import load_library
        self.gpu, self.gpu_auto, self.events = device, True, []
        self.lib = load_library()

    def _lib(self):
        return self.lib

    def emit(self, event: dict) -> None:
        self.events.append(event)


def _stream_through(session, path: Path, chunk: int = 4093):
    from app.backends.ggml.runner import GGMLRunner
    from app.models import model_for
    from app.store.stream import ModelStream
    wasm = ModelStream(path.name, path.stat().st_size, lib=session.lib,
                       make_runner=lambda g, loader: GGMLRunner(model_for(g), loader=loader, n_ctx=64, lib=session.lib))
    ms = gpu.gpu_model_stream(session, path.name, path.stat().st_size, 64, wasm)
    data = path.read_bytes()
    for off in range(0, len(data), chunk):
        n = min(chunk, len(data) - off)
        ptr = ms.staging(n)
        import ctypes
        ctypes.memmove(ptr, data[off:off + n], n)  # what the worker's HEAPU8.set does
        ms.feed_staged(n)
    return ms.finish()


def test_auto_falls_back_to_wasm_for_a_model_the_adapter_cannot_run():
    """auto: a model WebGPU refuses at its header (here IQ4_NL tensors) loads into the wasm
    engine from the same stream, and the page hears why; a supported one goes to the GPU."""
    from app.backends.ggml.runner import GGMLRunner
    from app.backends.webgpu import WebGPURunner, WgpuDevice
    from app.gguf import read_gguf
    from app.models import model_for
    from tools.testmodels import tiny
    device = WgpuDevice()
    s = _LoadSession(device)
    path = tiny("llama", "IQ4_NL")  # in the file cache (tools/testmodels.py; llama.cpp's quantizer)
    runner = _stream_through(s, path)
    assert isinstance(runner, GGMLRunner) and s.gpu is None
    assert s.events and s.events[-1]["backend"] == "wasm" and "IQ4_NL" in s.events[-1]["reason"], s.events
    ref = GGMLRunner(model_for(read_gguf(str(path))), str(path), n_ctx=64)
    runner.eval([1, 2, 3])
    ref.eval([1, 2, 3])
    assert runner.logits() == ref.logits()

    s = _LoadSession(device)
    assert isinstance(_stream_through(s, tiny("llama", "Q4_0")), WebGPURunner) and s.gpu is device and not s.events
