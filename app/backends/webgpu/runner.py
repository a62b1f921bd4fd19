"""Run a model (app/models) on WebGPU: weights in device buffers, an F16 KV cache, and one
recorded dispatch list per shape bucket replayed per step.

The same interface as app.backends.ggml.runner.GGMLRunner (eval, argmax, logits, reset,
truncate), so generation code and the agreement tests drive either one.
"""
from __future__ import annotations

import array
import math
import struct
import time
from collections import OrderedDict
from typing import Any, Callable, Iterable

from ...gguf import GGUFFile, TensorInfo
from ...models import Model, Weights
from ...ops import Rope
from .device import Device, DeviceError, default_device
from .graph import FAST_ATTN_CHUNK, LayerCache, StepRecorder, Weight
from .kernels import MAX_STORAGE_BINDINGS, Kernels
from .recurrent import RecurrentRecorder
from .recurrent_state import alloc_states, clear_states, load_state, save_state
from .sampler import OK as GPU_OK
from .sampler import GPUSampler
from .sampler import plan as gpu_plan
from .weights import WeightSink

UBATCH = 512
PREFILL_PAD = 64  # steps of 64+ tokens record n_tokens rounded up to this (fewer recordings);
SHORT_PAD = 16    # shorter ones to this, at most 63 (they keep the < 64-row attention path)
SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q5_0", "Q5_1", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K")


class WebGPUError(RuntimeError):
    pass


class ContextFull(WebGPUError):
    pass


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _float_trig() -> tuple[Callable[[float], float], Callable[[float], float]]:
    """The C library's cosf/sinf where ctypes finds them (ggml's rope cache calls those;
    glibc's are not always correctly rounded, so rounding double cos/sin differs from them
    for a few percent of angles), else math.cos/sin rounded to f32."""
    try:
        import ctypes  # noqa: PLC0415
        import ctypes.util  # noqa: PLC0415
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        cosf, sinf = libm.cosf, libm.sinf
        for fn in (cosf, sinf):
            fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
        if abs(cosf(1.0) - math.cos(1.0)) > 1e-6:
            raise OSError("cosf looks wrong")
        return cosf, sinf
    except (OSError, AttributeError, TypeError):
        return math.cos, math.sin


def rope_cache(rope: Rope, n_pos: int, freq_factors: list[float] | None = None) -> array.array:
    """(cos, sin) per (position, pair), computed as ggml's CPU rope cache computes them
    (float theta, theta *= theta_scale per pair, cosf/sinf times attn_factor)."""
    cos, sin = _float_trig()
    if rope.ext_factor != 0.0:
        raise WebGPUError("YaRN rope (ext_factor != 0) is not supported by the WebGPU backend yet")
    nd2 = rope.n_dims // 2
    if rope.sections and rope.multi_mode != 40:
        raise WebGPUError(f"multi-section rope mode {rope.multi_mode} is not supported (only interleaved, 40)")
    theta_scale = _f32(rope.freq_base ** _f32(-2.0 / rope.n_dims))
    out = array.array("f", bytes(8 * n_pos * nd2))
    th = array.array("f", range(n_pos))
    fs, mscale = _f32(rope.freq_scale), rope.attn_factor
    for i in range(nd2):
        ff = freq_factors[i] if freq_factors else 1.0
        te = array.array("f", [v / ff for v in th]) if ff != 1.0 else th
        ti = array.array("f", [fs * v for v in te]) if fs != 1.0 else te
        out[2 * i::2 * nd2] = array.array("f", [cos(v) * mscale for v in ti])
        out[2 * i + 1::2 * nd2] = array.array("f", [sin(v) * mscale for v in ti])
        th = array.array("f", [v * theta_scale for v in th])
    if rope.sections:  # text positions: ggml's interleaved M-RoPE rotates a pair by the position
        s0, s1, s2 = (list(rope.sections) + [0, 0, 0])[:3]  # unless its sector takes the 4th (0) one
        n_sect = sum(rope.sections)
        for i in range(nd2):
            sector = i % n_sect
            if not ((sector % 3 == 1 and sector < 3 * s1) or (sector % 3 == 2 and sector < 3 * s2)
                    or (sector % 3 == 0 and sector < 3 * s0)):
                out[2 * i::2 * nd2] = array.array("f", [mscale] * n_pos)
                out[2 * i + 1::2 * nd2] = array.array("f", [0.0] * n_pos)
    return out


_kernels: dict[int, Kernels] = {}


class WebGPURunner:
    """A loaded model on a WebGPU device, with one sequence of state (the KV cache)."""

    def __init__(self, model: Model, path: str | None = None, n_ctx: int = 4096, device: Device | None = None,
                 reader: Callable[[TensorInfo], bytes] | None = None, fuse: bool = True,
                 max_binding: int | None = None, exact: bool = True,
                 loader: Callable[[WeightSink], None] | None = None, lib: Any = None) -> None:
        self.max_binding = max_binding  # split tensors above this (default: the adapter's limit)
        self.fuse = fuse  # peephole fusions in the recorded dispatch lists (graph.StepRecorder._fuse)
        self.submit_chunks = 1  # >1: a step goes to the GPU in that many passes (overlaps encoding)
        # KV cells per decode-attention workgroup (set before recording). Exact mode still walks a
        # context of up to 256 cells in one chunk as ggml's f16 path does (ONE_CHUNK); split 4x
        # finer past that, decode attention is ~3x faster on an H100 (bench_webgpu.py's
        # attn_chunk=256 row)
        self.attn_chunk = FAST_ATTN_CHUNK
        self.use_matmul = True  # tiled matmul.wgsl for quantized products of 32+ tokens
        # ggml's x86 arithmetic where the kernels reproduce it (Q4_0/Q5_0/Q8_0 sum orders, which
        # skip matmul.wgsl; swiglu's exp): False takes the faster kernels (set before recording)
        self.exact = exact
        # Gated DeltaNet prefill of more than one chunk in the chunkwise-parallel form
        # (gdn_chunk_*.wgsl); exact mode keeps ggml's token-by-token order (gated_delta.wgsl).
        # Set before recording (recorded buckets keep the path they were recorded with)
        self.gdn_chunked = not exact
        self.model, self.hp, self.gguf = model, model.hp, model.gguf
        self.device = device or default_device()
        self.kernels = _kernels.setdefault(id(self.device), Kernels(self.device))
        self.check_types(self.gguf)
        self._check_limits()
        self.kv_size = max(n_ctx, 1)
        self.n_past = 0
        self.buckets: OrderedDict[tuple[int, int], StepRecorder] = OrderedDict()
        self.max_buckets = 8
        self.last: StepRecorder | None = None
        self._ropes: dict[tuple, Any] = {}
        self.stats = {"recorded": 0, "record_ms": 0.0, "steps": 0, "submit_ms": 0.0, "gpu_samples": 0}
        self._sampler: GPUSampler | None = None
        self._host_row: tuple[int, int] | None = None
        self.lib = lib  # the ggml engine of the host-side sampler (app.generate); None: the default
        self.n_threads = 1
        self._load_weights(path, reader, loader)
        self._alloc_cache()
        self.states = alloc_states(self.model, self.device)  # recurrent layers' conv/scan states
        self.is_recurrent = any(s is not None for s in self.states)

    def _check_limits(self) -> None:
        """At load, before any weight reaches the GPU (so the browser's auto choice can still
        take the wasm engine): the kernels' storage bindings against the adapter's limit
        (WebGPU guarantees 8, so only a non-conforming adapter fails here)."""
        have = self.device.limits.get("max-storage-buffers-per-shader-stage", MAX_STORAGE_BINDINGS)
        if have < MAX_STORAGE_BINDINGS:
            raise DeviceError(f"{self.gguf.source}: the WebGPU kernels bind up to {MAX_STORAGE_BINDINGS} storage "
                              f"buffers a shader stage; this adapter allows {have}")

    @staticmethod
    def check_types(gguf: GGUFFile) -> None:
        bad = sorted({t.type_name for t in gguf.tensors if t.type_name not in SUPPORTED_TYPES})
        if bad:
            names = [t.name for t in gguf.tensors if t.type_name in bad][:3]
            raise WebGPUError(f"{gguf.source}: tensor type(s) {', '.join(bad)} (e.g. {', '.join(names)}) are not "
                              f"supported by the WebGPU backend yet (supported: {', '.join(SUPPORTED_TYPES)})")

    def _load_weights(self, path: str | None, reader: Callable[[TensorInfo], bytes] | None,
                      loader: Callable[[WeightSink], None] | None) -> None:
        """Every tensor gets a WeightSink; its bytes come from `path`, from `reader(info)`, or
        (streaming) later from whoever `loader(sink)` hands the sinks to."""
        dev, gguf = self.device, self.gguf
        limit = dev.limits.get("max-storage-buffer-binding-size", 1 << 27)
        if self.max_binding:
            limit = min(limit, self.max_binding)
        sinks = [WeightSink(dev, t, limit, str(gguf.source)) for t in gguf.tensors]
        # tensors named without a .weight suffix (Mamba's ssm_a, ssm_d) read as `.ssm_a` like the rest
        self.weights = Weights({n if (n := s.weight.name).endswith((".weight", ".bias")) else n + ".weight": s.weight
                                for s in sinks}, self.hp.n_layer)
        self.weights_list = [s.weight for s in sinks]
        self.weight_bytes = sum(t.nbytes for t in gguf.tensors)
        if loader is not None:
            for s in sinks:
                loader(s)
            return
        f = open(path, "rb") if reader is None else None
        try:
            for s in sinks:
                t = s.info
                if reader is not None:
                    data = reader(t)
                else:
                    f.seek(gguf.data_offset + t.offset)
                    data = f.read(t.nbytes)
                if len(data) != t.nbytes:
                    raise WebGPUError(f"{gguf.source}: tensor {t.name} is truncated")
                s.feed(data)
                s.close()
        finally:
            if f is not None:
                f.close()

    def _alloc_cache(self) -> None:
        hp, dev = self.hp, self.device
        if hp.head_dim_k != hp.head_dim_v:
            raise WebGPUError("different K and V head sizes are not supported by the WebGPU backend yet")
        self.caches = []
        fn = getattr(self.model, "recurrent_state", None)
        for i in range(hp.n_layer):
            if fn is not None and fn(i) is not None:  # a recurrent layer keeps a fixed-size state instead
                self.caches.append(None)
                continue
            k = dev.buffer(2 * hp.n_embd_k_gqa * self.kv_size, f"k{i}")
            v = dev.buffer(2 * hp.n_embd_v_gqa * self.kv_size, f"v{i}")
            self.caches.append(LayerCache(k, v, hp.n_head_kv, hp.head_dim_k))
        self.cache_bytes = 4 * hp.n_embd_k_gqa * self.kv_size * sum(c is not None for c in self.caches)

    def rope_table(self, rope: Rope, freq_factors: Weight | None) -> Any:
        key = (rope, None if freq_factors is None else freq_factors.name)
        buf = self._ropes.get(key)
        if buf is None:
            ff = None
            if freq_factors is not None:
                if freq_factors.host is None:
                    raise WebGPUError(f"{freq_factors.name}: rope frequency factors must be F32")
                ff = array.array("f", freq_factors.host).tolist()
            table = rope_cache(rope, self.kv_size, ff)
            buf = self._ropes[key] = self.device.buffer(4 * len(table), "rope")
            self.device.write(buf, 0, table)
        return buf

    # -- state ------------------------------------------------------------------------------------

    def reset(self) -> None:
        self.n_past = 0
        if self.is_recurrent:
            clear_states(self.device, self.states, self.kernels)

    def truncate(self, n: int) -> None:
        """Roll back to the first n tokens; a recurrent state cannot roll back (only n == 0
        or n_past, as GGMLRunner): restore a snapshot (save_state/load_state) instead."""
        if not 0 <= n <= self.n_past:
            raise ValueError(f"cannot truncate a sequence of {self.n_past} tokens to {n}")
        if self.is_recurrent and n not in (0, self.n_past):
            raise ValueError(f"cannot truncate a sequence of {self.n_past} tokens to {n}: architecture "
                             f"{self.hp.arch!r} has recurrent layers whose state cannot be rolled back "
                             f"(only 0 or {self.n_past}); restore a snapshot taken at that point instead")
        if n == 0:
            self.reset()
        self.n_past = n

    def save_state(self) -> bytes:
        """The sequence state (n_past, KV cells in use, recurrent states) as bytes."""
        return save_state(self)

    def load_state(self, data: bytes) -> None:
        """Restore a save_state() snapshot of this model (the logits are not restored: evaluate
        a token next, as app.generate's Sequence does)."""
        load_state(self, data)

    def set_abort_flag(self, address: int | None) -> None:
        """The ggml engine polls an abort flag inside a long prompt's compute; a WebGPU step is
        one queued submission that cannot be interrupted, so cancels take effect between the
        512-token steps (eval's on_chunk), as they already do."""
        self.abort_flag = address or 0

    def set_abort_function(self, address: int | None) -> None:
        """As set_abort_flag: nothing to poll inside a submitted WebGPU step."""
        self.abort_fn = address or 0

    def model_identity(self) -> str:
        """Hash of the architecture and the tensor table (what snapshots are tied to; weight
        bytes are not hashed: reading them back from the GPU is asynchronous in a browser)."""
        from .recurrent_state import _model_id  # noqa: PLC0415
        return _model_id(self)

    def close(self) -> None:
        """Free the model's GPU memory now (a browser may not collect it before the next load)."""
        self.buckets.clear()
        self.last = None
        dev = self.device
        for w in getattr(self, "weights_list", []):
            for buf in [w.buf] + [p[0] for p in (w.parts or [])]:
                if buf is not None:
                    dev.free(buf)
        for c in getattr(self, "caches", []):
            if c is not None:  # None: a recurrent layer (its state is not a cache)
                dev.free(c.k)
                dev.free(c.v)
        for buf in self._ropes.values():
            dev.free(buf)
        self._ropes.clear()
        self.caches = []
        self.weights_list = []

    # -- steps --------------------------------------------------------------------------------------

    def recorder(self, n_tokens: int, n_outputs: int) -> StepRecorder:
        key = (n_tokens, n_outputs)
        rec = self.buckets.get(key)
        if rec is not None:
            self.buckets.move_to_end(key)
            return rec
        t0 = time.perf_counter()
        rec = (RecurrentRecorder if self.is_recurrent else StepRecorder)(self, n_tokens, n_outputs)
        rec.finish(self.model.forward(rec, self.weights))
        self.buckets[key] = rec
        while len(self.buckets) > self.max_buckets:
            self.buckets.popitem(last=False)
        self.stats["recorded"] += 1
        self.stats["record_ms"] += (time.perf_counter() - t0) * 1e3
        return rec

    def _step(self, tokens: list[int], all_logits: bool) -> StepRecorder:
        n = len(tokens)
        if self.n_past + n > self.kv_size:
            raise ContextFull(f"context full: {self.n_past} + {n} tokens exceed the context of {self.kv_size}")
        # a prompt of any length reuses the recording of its length rounded up: padded rows
        # come last, only write cache cells past this step (overwritten before any later step
        # reads them) and are not returned; all_logits steps keep their exact length
        n_rec = n
        if n > 1 and not all_logits:
            n_rec = min(-(-n // SHORT_PAD) * SHORT_PAD, 63) if n < 64 else -(-n // PREFILL_PAD) * PREFILL_PAD
            n_rec = max(n, min(n_rec, self.kv_size - self.n_past))
        rec = self.recorder(n_rec, n if all_logits else 1)
        t0 = time.perf_counter()
        dev = self.device
        dev.write(rec.step_buf, 0, struct.pack("<4I", self.n_past, n, 0, 0))
        ids = array.array("I", tokens)
        if n_rec > n:
            ids.extend([0] * (n_rec - n))
            dev.write(rec.out_ids, 0, struct.pack("<I", n - 1))
        elif not all_logits and n_rec > 1:
            dev.write(rec.out_ids, 0, struct.pack("<I", n - 1))
        dev.write(rec.tokens, 0, ids)
        dev.run(rec.program, chunks=self.submit_chunks)
        self.n_past += n
        self.last = rec
        self.stats["steps"] += 1
        self.stats["submit_ms"] += (time.perf_counter() - t0) * 1e3
        return rec

    def eval(self, tokens: Iterable[int], all_logits: bool = False,
             on_chunk: Callable[[int], bool | None] | None = None) -> None:
        tokens = list(tokens)
        for i in range(0, len(tokens), UBATCH):
            self._step(tokens[i:i + UBATCH], all_logits)
            if on_chunk is not None and on_chunk(min(i + UBATCH, len(tokens))) is False:
                break

    def generate_greedy(self, n: int, first: int | None = None) -> list[int]:
        """n greedy tokens without a round trip per token: each step's embedding reads the
        previous step's GPU argmax (a buffer copy ahead of the pass), the ids collect in a
        device buffer read once at the end, so encoding step t+1 overlaps the GPU running
        step t. `first` is the token to feed first (default: the last step's argmax)."""
        if n <= 0:
            return []
        if self.n_past + n > self.kv_size:
            raise ContextFull(f"context full: {self.n_past} + {n} tokens exceed the context of {self.kv_size}")
        rec = self.recorder(1, 1)
        dev = self.device
        ids = dev.buffer(4 * n, "generated")
        if first is not None:
            dev.write(rec.tokens, 0, struct.pack("<I", first))
            before: list = []
        else:
            assert self.last is not None, "nothing evaluated yet: pass `first`"
            before = [(self.last.argmax_buf, 0, rec.tokens, 0, 4)]
        t0 = time.perf_counter()
        for i in range(n):
            dev.write(rec.step_buf, 0, struct.pack("<4I", self.n_past, 1, 0, 0))
            dev.run(rec.program, before, [(rec.argmax_buf, 0, ids, 4 * i, 4)])
            before = [(rec.argmax_buf, 0, rec.tokens, 0, 4)]
            self.n_past += 1
            self.last = rec
        out = array.array("I")
        out.frombytes(bytes(dev.read(ids, 0, 4 * n)))
        self.stats["steps"] += n
        self.stats["submit_ms"] += (time.perf_counter() - t0) * 1e3
        return out.tolist()

    def sample(self, sampler: Any, history: list[int] | None = None) -> int:
        """A token from the last step's last logits row with `sampler`'s settings (an
        app.sampling.Sampler), chosen on the GPU: 8 bytes come back, not the logits. The
        draw uses the next uniform of the sampler's own stream, so the token is the one
        its C chain would pick. Chains the kernel lacks (typical-p) and rows whose top-p
        nucleus outgrows the kernel's candidate list are sampled on the host (then the
        stream has advanced one draw more than the C sampler alone would have)."""
        rec = self.last
        assert rec is not None and rec.logits is not None
        params = sampler.params
        vocab = rec.logits.shape[0]
        if gpu_plan(params, vocab) is not None:
            if self._sampler is None:
                self._sampler = GPUSampler(self.device, self.kernels)
            r = 0.0 if params.greedy else sampler.uniform()
            token, status = self._sampler.sample(rec.logits.st.buf, vocab * (rec.n_outputs - 1), vocab, params, r,
                                                 history, sampler.penalty_window)
            self.stats["gpu_samples"] = self.stats.get("gpu_samples", 0) + (status == GPU_OK)
            if status == GPU_OK:
                return token
        return sampler.sample(self._host_logits(sampler.lib), 0, history)

    def _host_logits(self, lib: Any) -> int:
        """The last logits row copied into an engine tensor (for the host sampler)."""
        row = self.logits()
        if self._host_row is None or self._host_row[0] != len(row):
            eng = lib.check(lib.eng_new(1), "engine")
            pool = lib.check(lib.eng_pool_new(eng, 1), "pool")
            t = lib.check(lib.eng_pool_tensor(pool, 0, float(len(row)), 1.0, 1.0, 1.0, 0), "logits tensor")
            lib.check(lib.eng_pool_alloc(pool), "logits tensor")
            self._host_row = (len(row), t)
        ptr, n = row.buffer_info()
        lib.check(lib.eng_tensor_set(self._host_row[1], 0.0, ptr, float(4 * n)), "logits")
        return self._host_row[1]

    def argmax(self) -> int:
        """Greedy token of the last step's last logits row, computed on the GPU (4 bytes back)."""
        assert self.last is not None
        return struct.unpack("<I", self.device.read(self.last.argmax_buf, 0, 4))[0]

    async def argmax_async(self) -> int:
        """`argmax` awaiting the read-back (the browser without JS Promise Integration)."""
        assert self.last is not None
        return struct.unpack("<I", await self.device.read_async(self.last.argmax_buf, 0, 4))[0]

    def _logits_span(self, row: int) -> tuple[Any, int, int]:
        rec = self.last
        assert rec is not None and rec.logits is not None, "nothing evaluated yet"
        vocab = rec.logits.shape[0]
        if row < 0:
            row += rec.n_outputs
        return rec.logits.st.buf, 4 * vocab * row, 4 * vocab

    def logits(self, row: int = -1) -> array.array:
        out = array.array("f")
        out.frombytes(bytes(self.device.read(*self._logits_span(row))))
        return out

    async def logits_async(self, row: int = -1) -> array.array:
        out = array.array("f")
        out.frombytes(bytes(await self.device.read_async(*self._logits_span(row))))
        return out
