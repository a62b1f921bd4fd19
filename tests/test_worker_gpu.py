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
    dev = object()
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
