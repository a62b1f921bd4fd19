"""The WebGPU device in the browser: `navigator.gpu` from Python under Pyodide, in the Web Worker.

The JS side (web/webgpu_device.js, `self.pyllmWebGPU`) is a thin shell over the WebGPU
calls; every decision stays here. Two things shape it:

- A call from Python into JS costs microseconds, so a recorded dispatch list becomes one
  JS array once (`program`), and a step is one JS call that encodes the whole compute
  pass (`run`), not one call per dispatch.
- Reading a buffer back (`mapAsync`) is asynchronous. `read_async` awaits it and works
  everywhere; the synchronous `read`, which the generation loop (app.generate) uses
  through the runner, blocks on the promise with Pyodide's `run_sync` (JS Promise
  Integration: Chromium 137+, and only inside Python code that JS entered asynchronously,
  as the worker's `await session.generate(...)`). `can_read_sync()` says whether it may.

Writes go from Python's buffers (wasm memory) to `queue.writeBuffer` without a copy.
"""
from __future__ import annotations

from typing import Any, Sequence

from .device import Device, DeviceError
from .kernels import MAX_STORAGE_BINDINGS

# the limits the backend cares about, asked for at the adapter's real values
LIMITS = ("maxStorageBufferBindingSize", "maxBufferSize", "maxStorageBuffersPerShaderStage",
          "maxComputeWorkgroupStorageSize", "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX",
          "maxComputeWorkgroupsPerDimension", "maxUniformBufferBindingSize")
# what the kernels need at least (shaders/*.wgsl: 256-thread workgroups, up to 8 storage
# bindings, 64x64 matmul tiles in workgroup memory); a model needs its largest row on top
MIN_LIMITS = {"maxComputeInvocationsPerWorkgroup": 256, "maxComputeWorkgroupSizeX": 256,
              "maxStorageBuffersPerShaderStage": MAX_STORAGE_BINDINGS, "maxComputeWorkgroupStorageSize": 16384}


def _kebab(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() else c for c in name)


def _js() -> Any:
    try:
        import js  # noqa: PLC0415 - Pyodide only
    except ImportError as exc:
        raise DeviceError("BrowserDevice runs only under Pyodide in a browser; on the host use WgpuDevice") from exc
    helper = getattr(js, "pyllmWebGPU", None)
    if helper is None:
        raise DeviceError("web/webgpu_device.js is not loaded in this worker (self.pyllmWebGPU is missing)")
    return helper


class BrowserDevice(Device):
    """A GPUDevice from `navigator.gpu`; open with `await BrowserDevice.open()`."""

    def __init__(self, gpu: Any) -> None:
        """`gpu` is the object web/webgpu_device.js's `open()` resolved to."""
        from pyodide.ffi import to_js  # noqa: PLC0415

        self._to_js = to_js
        self._none: Any = None  # an empty JS array (no copies around a step)
        self.gpu = gpu
        info = gpu.info
        parts = [str(info.vendor or ""), str(info.architecture or ""), str(info.description or "")]
        self.name = " ".join(p for p in parts if p) or "WebGPU adapter"
        # a CPU rasterizer (SwiftShader, or the browser's fallback adapter): WebGPU works but
        # the wasm engine is faster there
        self.software = bool(info.fallback) or "swiftshader" in self.name.lower()
        self.features = [str(f) for f in gpu.features]
        self.has_f16 = "shader-f16" in self.features  # the kernels' f16 variants follow it (kernels.py)
        self.has_subgroups = "subgroups" in self.features
        # the same keys WgpuDevice reports (wgpu-py spells them in kebab case)
        self.limits = {_kebab(k): int(getattr(gpu.limits, k)) for k in LIMITS}

    @classmethod
    async def open(cls, power_preference: str = "high-performance", f16: bool = True) -> "BrowserDevice":
        """The adapter's device with its real limits (not WebGPU's defaults, e.g. 128 MiB per
        storage binding where the adapter has 1 GiB) and shader-f16 when it has it (`f16`
        False: the kernels keep their packed-u32 variants all the same)."""
        helper = _js()
        gpu = await helper.open(power_preference, cls._js_array(LIMITS))
        if gpu.error:
            raise DeviceError(str(gpu.error))
        dev = cls(gpu)
        dev.has_f16 = dev.has_f16 and f16
        short = [f"{k} {dev.limits[_kebab(k)]} < {v}" for k, v in MIN_LIMITS.items() if dev.limits[_kebab(k)] < v]
        if short:
            raise DeviceError(f"the WebGPU adapter {dev.name} has too small limits for the kernels: {', '.join(short)}")
        return dev

    @staticmethod
    def _js_array(items: Sequence[Any]) -> Any:
        from pyodide.ffi import to_js  # noqa: PLC0415
        return to_js(list(items))

    # -- the Device interface ---------------------------------------------------------------------

    def buffer(self, size: int, label: str = "") -> Any:
        size = max(16, (size + 15) // 16 * 16)
        if size > self.limits["max-buffer-size"]:
            raise DeviceError(f"buffer {label!r} of {size} bytes exceeds the adapter's max buffer size "
                              f"{self.limits['max-buffer-size']}")
        return self.gpu.buffer(size, label)

    def uniform(self, data: bytes, label: str = "") -> Any:
        data = bytes(data) + bytes((-len(data)) % 4)
        buf = self.gpu.uniform(max(16, (len(data) + 15) // 16 * 16), label)
        self.write(buf, 0, data)
        return buf

    def write(self, buf: Any, offset: int, data: Any) -> None:
        mv = memoryview(data).cast("B")
        if len(mv) % 4:  # writeBuffer takes whole words
            mv = memoryview(bytes(mv) + bytes(4 - len(mv) % 4))
        # the memoryview reaches JS as a proxy whose getBuffer() views wasm memory: no copy
        self.gpu.write(buf, offset, mv, len(mv))

    def read(self, buf: Any, offset: int, size: int) -> memoryview:
        from pyodide.ffi import can_run_sync, run_sync  # noqa: PLC0415
        if not can_run_sync():
            raise DeviceError("a synchronous GPU read-back needs JS Promise Integration and an async entry "
                              "(await the call from JS); use `await read_async(...)` instead")
        return run_sync(self.read_async(buf, offset, size))

    async def read_async(self, buf: Any, offset: int, size: int) -> memoryview:
        size4 = (size + 3) // 4 * 4
        got = await self.gpu.read(buf, offset, size4)
        return memoryview(got.to_bytes())[:size]

    def pipeline(self, code: str, constants: dict[str, float] | None = None, label: str = "") -> Any:
        from js import Object  # noqa: PLC0415
        consts = self._to_js(dict(constants or {}), dict_converter=Object.fromEntries)
        return self.gpu.pipeline(code, consts, label)

    def bind(self, pipeline: Any, resources: Sequence[Any]) -> Any:
        entries = [list(r) if isinstance(r, tuple) else [r, 0, -1] for r in resources]
        return self.gpu.bind(pipeline, self._to_js(entries))

    def program(self, dispatches: Sequence[tuple[Any, Any, tuple[int, int, int]]]) -> Any:
        return _Program(self.gpu.program(self._to_js([[p, b, *g] for p, b, g in dispatches])), len(dispatches))

    def run(self, dispatches: Any, before: Sequence[tuple[Any, int, Any, int, int]] = (),
            after: Sequence[tuple[Any, int, Any, int, int]] = (), chunks: int = 1) -> None:
        prog = dispatches if isinstance(dispatches, _Program) else self.program(dispatches)
        if self._none is None:
            self._none = self._to_js([])
        b = self._to_js([list(c) for c in before]) if before else self._none
        a = self._to_js([list(c) for c in after]) if after else self._none
        self.gpu.run(prog.js, b, a, max(1, int(chunks)))
        err = self.gpu.takeError()
        if err:
            raise DeviceError(f"WebGPU: {err}")

    def sync(self) -> None:
        from pyodide.ffi import run_sync  # noqa: PLC0415
        run_sync(self.gpu.sync())

    async def sync_async(self) -> None:
        await self.gpu.sync()

    async def profile_async(self, program: Any) -> list[float]:
        """Milliseconds each dispatch of a recorded program takes alone (waited for one by one)."""
        prog = program if isinstance(program, _Program) else self.program(program)
        return [float(x) for x in (await self.gpu.profile(prog.js)).to_py()]

    @property
    def lost(self) -> bool:
        """The GPU device is gone (driver reset, tab in the background too long): open another."""
        return bool(self.gpu.lost)

    def error(self) -> str | None:
        """The first WebGPU validation/out-of-memory error since the last call (cleared)."""
        err = self.gpu.takeError()
        return str(err) if err else None


class _Program:
    """A dispatch list held on the JS side."""
    __slots__ = ("js", "n")

    def __init__(self, js_list: Any, n: int) -> None:
        self.js, self.n = js_list, n

    def __len__(self) -> int:
        return self.n
