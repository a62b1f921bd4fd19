"""The GPU behind the WebGPU backend: one small interface, two implementations.

`WgpuDevice` drives wgpu-py on the host (Mesa lavapipe on a CPU, NVIDIA/AMD through
Vulkan); `BrowserDevice` (browser_device.py) is the same interface over `navigator.gpu`
through Pyodide's `js` module and web/webgpu_device.js. The backend only ever: creates
buffers, writes and reads them, compiles a WGSL compute pipeline (with override
constants), makes bind groups, and submits a list of dispatches as ONE compute pass (a dispatch costs ~7 us that way against ~65 us when
each gets its own pass).
"""
from __future__ import annotations

import os
import struct
from typing import Any, Sequence


class DeviceError(RuntimeError):
    """No usable GPU adapter, or one whose limits are too small for the model."""


class Device:
    """What the backend needs from a GPU. Handles are opaque to the caller."""

    name = "?"
    limits: dict[str, int]
    has_f16 = False  # shader-f16 granted: kernels read f16 data natively (kernels.F16_SWAPS)
    has_subgroups = False
    _fused_fma: bool | None = None

    @property
    def fused_fma(self) -> bool:
        """Whether WGSL's fma() rounds once on this device (NVIDIA: yes; Mesa lavapipe
        computes a*b + c with two roundings). Kernels that reproduce ggml's fused
        multiply-adds emulate them where it does not. Found once, by running it."""
        if self._fused_fma is None:
            code = ("@group(0) @binding(0) var<storage, read_write> v: array<f32>;\n"
                    "@compute @workgroup_size(1) fn main() { v[3] = fma(v[0], v[1], v[2]); }")
            pipe = self.pipeline(code, None, "fma_probe")
            buf = self.buffer(16, "fma_probe")
            a = 1.0 + 2.0 ** -23  # a*a = 1 + 2^-22 + 2^-46: only a fused op keeps the 2^-46
            self.write(buf, 0, struct.pack("<4f", a, a, -(1.0 + 2.0 ** -22), 0.0))
            self.run([(pipe, self.bind(pipe, [buf]), (1, 1, 1))])
            self._fused_fma = struct.unpack("<f", bytes(self.read(buf, 12, 4)))[0] != 0.0
        return self._fused_fma

    def buffer(self, size: int, label: str = "") -> Any:
        """A storage buffer of `size` bytes (rounded up to 4), zero-filled."""
        raise NotImplementedError

    def uniform(self, data: bytes, label: str = "") -> Any:
        """A small uniform buffer holding `data`."""
        raise NotImplementedError

    def write(self, buf: Any, offset: int, data: Any) -> None:
        raise NotImplementedError

    def read(self, buf: Any, offset: int, size: int) -> memoryview:
        raise NotImplementedError

    async def read_async(self, buf: Any, offset: int, size: int) -> memoryview:
        """`read` for callers that can await (the browser's mapAsync is asynchronous)."""
        return self.read(buf, offset, size)

    def program(self, dispatches: Sequence[tuple[Any, Any, tuple[int, int, int]]]) -> Any:
        """A recorded dispatch list in the form `run` replays fastest (here: the list)."""
        return dispatches

    def pipeline(self, code: str, constants: dict[str, float] | None = None, label: str = "") -> Any:
        raise NotImplementedError

    def bind(self, pipeline: Any, resources: Sequence[Any]) -> Any:
        """A bind group for group 0: resources[i] is bound at binding i (a buffer, or
        (buffer, offset, size) for a range)."""
        raise NotImplementedError

    def run(self, dispatches: Sequence[tuple[Any, Any, tuple[int, int, int]]],
            before: Sequence[tuple[Any, int, Any, int, int]] = (),
            after: Sequence[tuple[Any, int, Any, int, int]] = (), chunks: int = 1) -> None:
        """Encode (pipeline, bind_group, (x, y, z)) dispatches in one compute pass and submit;
        `before`/`after` are buffer copies (src, src_offset, dst, dst_offset, size) around it."""
        raise NotImplementedError

    def sync(self) -> None:
        """Wait until submitted work has finished."""
        raise NotImplementedError

    def free(self, buf: Any) -> None:
        """Give a buffer's memory back now (not when the garbage collector gets to it)."""
        buf.destroy()


class WgpuDevice(Device):
    """wgpu-py (PyPI `wgpu`): Vulkan/Metal/D3D12 on the host, lavapipe on a bare CPU."""

    def __init__(self, power_preference: str = "high-performance", limits: dict[str, int] | None = None,
                 f16: bool | None = None) -> None:
        """`limits` overrides what is asked for (default: the adapter's own values), e.g.
        WebGPU's guaranteed ones to check that the kernels fit any adapter. `f16`: request
        shader-f16 when the adapter has it (never required); None: yes unless the environment
        sets PYLLM_WEBGPU_F16=0. False runs the packed-u32 kernels on an adapter that has it."""
        try:
            import wgpu  # noqa: PLC0415
        except ImportError as exc:  # pragma: no cover - the dev requirements pin it
            raise DeviceError("the WebGPU backend on the host needs wgpu-py: pip install wgpu") from exc
        self.wgpu = wgpu
        adapter = wgpu.gpu.request_adapter_sync(power_preference=power_preference)
        if adapter is None:
            raise DeviceError("no WebGPU adapter (install a Vulkan driver, e.g. Debian mesa-vulkan-drivers)")
        info = adapter.info
        self.name = f"{info.get('device', '?')} ({info.get('backend_type', '?')}, {info.get('adapter_type', '?')})"
        feats = set(adapter.features)
        alim = adapter.limits
        want = {}
        for key in ("max-storage-buffer-binding-size", "max-buffer-size", "max-storage-buffers-per-shader-stage",
                    "max-compute-workgroup-storage-size", "max-compute-invocations-per-workgroup",
                    "max-compute-workgroup-size-x", "max-compute-workgroups-per-dimension"):
            if key in alim:
                want[key] = alim[key]
        want.update(limits or {})
        if f16 is None:
            f16 = os.environ.get("PYLLM_WEBGPU_F16", "1") != "0"
        self.has_f16 = f16 and "shader-f16" in feats  # the kernels' f16 variants (kernels.py) follow it
        self.has_subgroups = "subgroup" in feats
        self.device = adapter.request_device_sync(required_features=["shader-f16"] if self.has_f16 else [],
                                                  required_limits=want)
        self.limits = dict(self.device.limits)
        self.queue = self.device.queue
        self._usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_DST | wgpu.BufferUsage.COPY_SRC
        self._modules: dict[str, Any] = {}

    def buffer(self, size: int, label: str = "") -> Any:
        size = max(16, (size + 15) // 16 * 16)
        if size > self.limits["max-buffer-size"]:
            raise DeviceError(f"buffer {label!r} of {size} bytes exceeds the adapter's max buffer size "
                              f"{self.limits['max-buffer-size']}")
        return self.device.create_buffer(size=size, usage=self._usage, label=label)

    def uniform(self, data: bytes, label: str = "") -> Any:
        u = self.wgpu.BufferUsage
        buf = self.device.create_buffer(size=max(16, (len(data) + 15) // 16 * 16), usage=u.UNIFORM | u.COPY_DST,
                                        label=label)
        self.queue.write_buffer(buf, 0, bytes(data) + bytes((-len(data)) % 4))
        return buf

    def write(self, buf: Any, offset: int, data: Any) -> None:
        mv = memoryview(data).cast("B")
        pad = (-len(mv)) % 4
        self.queue.write_buffer(buf, offset, bytes(mv) + bytes(pad) if pad else mv)

    def read(self, buf: Any, offset: int, size: int) -> memoryview:
        size4 = (size + 3) // 4 * 4
        return memoryview(self.queue.read_buffer(buf, offset, size4)).cast("B")[:size]

    def pipeline(self, code: str, constants: dict[str, float] | None = None, label: str = "") -> Any:
        mod = self._modules.get(code)
        if mod is None:
            mod = self._modules[code] = self.device.create_shader_module(code=code, label=label)
        stage: dict[str, Any] = {"module": mod, "entry_point": "main"}
        if constants:
            stage["constants"] = dict(constants)
        return self.device.create_compute_pipeline(layout="auto", compute=stage, label=label)

    def bind(self, pipeline: Any, resources: Sequence[Any]) -> Any:
        entries = []
        for i, r in enumerate(resources):
            if isinstance(r, tuple):
                buf, off, size = r
                entries.append({"binding": i, "resource": {"buffer": buf, "offset": off, "size": size}})
            else:
                entries.append({"binding": i, "resource": {"buffer": r, "offset": 0, "size": r.size}})
        return self.device.create_bind_group(layout=pipeline.get_bind_group_layout(0), entries=entries)

    def run(self, dispatches: Sequence[tuple[Any, Any, tuple[int, int, int]]],
            before: Sequence[tuple[Any, int, Any, int, int]] = (),
            after: Sequence[tuple[Any, int, Any, int, int]] = (), chunks: int = 1) -> None:
        """chunks > 1 submits the list in that many passes, so the GPU starts on the first
        while Python encodes the rest (each extra pass costs some tens of microseconds)."""
        n = len(dispatches)
        chunks = max(1, min(chunks, n))
        bounds = [n * i // chunks for i in range(chunks + 1)]
        for c in range(chunks):
            enc = self.device.create_command_encoder()
            if c == 0:
                for cp_ in before:
                    enc.copy_buffer_to_buffer(*cp_)
            cp = enc.begin_compute_pass()
            last = None
            for pipe, bg, (x, y, z) in dispatches[bounds[c]:bounds[c + 1]]:
                if pipe is not last:
                    cp.set_pipeline(pipe)
                    last = pipe
                cp.set_bind_group(0, bg)
                cp.dispatch_workgroups(x, y, z)
            cp.end()
            if c == chunks - 1:
                for cp_ in after:
                    enc.copy_buffer_to_buffer(*cp_)
            self.queue.submit([enc.finish()])

    def sync(self) -> None:
        # reading back a few bytes waits for the queue
        if not hasattr(self, "_sync_buf"):
            self._sync_buf = self.buffer(16, "sync")
        self.queue.read_buffer(self._sync_buf, 0, 4)


_default: Device | None = None


def default_device() -> Device:
    """The process-wide device (compiled pipelines are cached on it)."""
    global _default
    if _default is None:
        import sys  # noqa: PLC0415
        if sys.platform == "emscripten":
            raise DeviceError("in the browser the device is opened asynchronously: "
                              "`await BrowserDevice.open()` and pass it to the runner")
        _default = WgpuDevice()
    return _default


from .browser_device import BrowserDevice  # noqa: E402,F401 - the browser's implementation, re-exported
