"""The worker's WebGPU side: pick the backend, open the device, load onto it, and the
diagnostics action (the loaded model on WebGPU against the wasm ggml engine).

Backend choice: "wasm" is the ggml engine; "webgpu" our WGSL kernels on `navigator.gpu`;
"auto" takes WebGPU when a hardware adapter with enough limits exists and the browser can
block on a GPU read-back inside Python (JS Promise Integration: the generation loop samples
synchronously), else the wasm engine (a software adapter such as SwiftShader runs the WGSL
on the CPU, slower than the wasm engine: "webgpu" still picks it, for tests). The reason for the choice is reported to the page.
"""
from __future__ import annotations

import time
from typing import Any

from ..backends.webgpu.browser_device import BrowserDevice
from ..backends.webgpu.device import DeviceError
from ..store.staging import StagedFeed

BACKENDS = ("auto", "webgpu", "wasm")
REFERENCE_MAX_BYTES = 3 << 29  # 1.5 GB: what the single-threaded wasm engine can hold next to Python

_device: BrowserDevice | None = None
_probe: dict | None = None


def _has_jspi() -> bool:
    try:
        import js  # noqa: PLC0415
        return hasattr(js.WebAssembly, "Suspending")
    except Exception:
        return False


async def probe() -> dict:
    """{available, adapter, f16, limits, reason}; opens the device once per worker."""
    global _device, _probe
    if _probe is not None and not (_device is not None and _device.lost):
        return _probe
    try:
        _device = await BrowserDevice.open()
    except DeviceError as e:
        _probe = {"available": False, "adapter": None, "reason": str(e)}
        return _probe
    lim = _device.limits
    _probe = {"available": _has_jspi(), "adapter": _device.name, "f16": _device.has_f16,
              "software": _device.software,
              "max_binding": lim["max-storage-buffer-binding-size"], "max_buffer": lim["max-buffer-size"],
              "reason": "" if _has_jspi() else
              "this browser cannot wait for a GPU read-back inside Python (no JS Promise Integration)"}
    return _probe


async def select(session: Any, preference: str) -> dict:
    """Set the session's backend for the next load; returns {backend, adapter, reason}."""
    if preference not in BACKENDS:
        raise ValueError(f"unknown backend {preference!r}; supported: {', '.join(BACKENDS)}")
    info = await probe() if preference != "wasm" else {"available": False, "adapter": None, "reason": "asked for"}
    if preference == "webgpu" and not info["available"]:
        raise DeviceError(f"WebGPU is not usable here: {info['reason']}")
    use = preference != "wasm" and info["available"]
    session.gpu_auto = preference == "auto"  # a model the adapter cannot run falls back to wasm
    reason = info["reason"]
    if use and preference == "auto" and info.get("software"):
        use, reason = False, f"the adapter ({info['adapter']}) is a software rasterizer; the wasm engine is faster"
    session.gpu = _device if use else None
    return {"backend": "webgpu" if use else "wasm", "adapter": info.get("adapter"), "reason": reason}


def gpu_model_stream(session: Any, name: str, size: int | None, n_ctx: int, wasm_stream: Any,
                     sha256: str | None = None, header: bytes | None = None) -> Any:
    """A GPUModelStream whose runner is a WebGPURunner on the session's device (tokens are
    sampled on the GPU with the wasm engine sampler's draws; chains the kernel lacks read the
    logits back to that sampler). Chosen by "auto", it falls back
    to `wasm_stream` when the model cannot run on this adapter (its limits, its types)."""
    from ..backends.webgpu.runner import WebGPURunner  # noqa: PLC0415
    from ..backends.webgpu.stream import GPUModelStream  # noqa: PLC0415
    from ..models import model_for  # noqa: PLC0415

    device, lib = session.gpu, session._lib()

    def make_runner(gguf: Any, loader: Any) -> WebGPURunner:
        arch = gguf.metadata.get("general.architecture")
        ctx = min(n_ctx, int(gguf.metadata.get(f"{arch}.context_length", n_ctx) or n_ctx))
        return WebGPURunner(model_for(gguf), n_ctx=ctx, device=device, loader=loader, lib=lib)

    gpu = GPUModelStream(name, size, make_runner=make_runner, sha256=sha256, header=header)
    if not getattr(session, "gpu_auto", False):
        return gpu

    def fallback(reason: str) -> None:
        session.gpu = None
        session.emit({"type": "backend", "backend": "wasm", "adapter": device.name,
                      "reason": f"this model cannot run on the WebGPU adapter: {reason}"})
    return FallbackStream(gpu, wasm_stream, fallback)


class FallbackStream(StagedFeed):
    """Feeds the GPU stream; if that refuses the model once its header is known (a WebGPU
    limit, an unsupported type: before any weight reached the GPU), the wasm engine's
    stream takes over from the first byte (the header bytes are kept until then)."""

    def __init__(self, first: Any, second: Any, on_fallback: Any) -> None:
        self.s, self._second, self._on_fallback = first, second, on_fallback
        self._head: bytearray | None = bytearray()
        self._buf = bytearray(0)

    def feed(self, chunk: Any) -> None:
        from ..backends.webgpu.runner import WebGPUError  # noqa: PLC0415
        if self._head is None:
            self.s.feed(chunk)
            return
        self._head += chunk
        try:
            self.s.feed(chunk)
        except (DeviceError, WebGPUError) as e:
            if self._second is None:
                raise
            self.s.abort()
            self.s, self._second = self._second, None
            self._on_fallback(str(e))
            head, self._head = bytes(self._head), None
            self.s.feed(head)
            return
        if self.s.header_done:
            self._head = None

    def finish(self) -> Any:
        self._buf = bytearray(0)
        return self.s.finish()

    def __getattr__(self, name: str) -> Any:  # gguf, t_start, abort, header_done, ...
        return getattr(self.s, name)


# -- diagnostics ----------------------------------------------------------------------------------

def begin_reference(session: Any, size: int | None) -> Any:
    """A ModelStream loading the same model into the wasm engine (the reference); JS feeds it
    the model's bytes again (from the Cache API or the picked file)."""
    from ..backends.ggml.runner import GGMLRunner  # noqa: PLC0415
    from ..models import model_for  # noqa: PLC0415
    from ..store.stream import ModelStream  # noqa: PLC0415

    if session.runner is None or session.gpu is None:
        raise RuntimeError("diagnostics compare a model loaded on WebGPU with the wasm engine: load one on WebGPU")
    if session.runner.weight_bytes > REFERENCE_MAX_BYTES:
        raise RuntimeError(f"diagnostics load the model a second time into the wasm engine, which holds at most "
                           f"{REFERENCE_MAX_BYTES >> 20} MB of weights; this model has "
                           f"{session.runner.weight_bytes >> 20} MB")
    lib = session._lib()
    n_ctx = session.runner.kv_size
    return ModelStream(session.model_name, size, lib=lib,
                       make_runner=lambda g, loader: GGMLRunner(model_for(g), loader=loader, n_ctx=n_ctx, lib=lib))


async def diagnose(session: Any, ref_stream: Any, positions: int = 32) -> dict:
    """Forced decoding of `positions` tokens on both backends; emits and returns the result."""
    from ..backends.webgpu.agreement import forced_decoding, probe_tokens  # noqa: PLC0415

    t0 = time.perf_counter()
    ref = ref_stream.finish()
    try:
        gpu = session.runner
        positions = max(2, min(int(positions), gpu.kv_size, ref.kv_size))
        tokens = probe_tokens(positions, gpu.hp.n_vocab)
        res = await forced_decoding(ref, gpu, tokens, n_prefill=positions * 55 // 100)
    finally:
        ref.close()
        session.reset()  # the state now holds the probe tokens: the next chat starts afresh
        if session.runner is not None:
            session.runner.reset()
    out = {"type": "diagnostics", "backend": "webgpu", "adapter": session.gpu.name, **res.as_dict(),
           "passes": res.passes(), "total_ms": round((time.perf_counter() - t0) * 1e3, 1)}
    out["disagreements"] = [list(d) for d in res.disagreements[:8]]
    out["gpu_stats"] = {k: round(v, 1) if isinstance(v, float) else v for k, v in session.runner.stats.items()}
    session.emit(out)
    return out
