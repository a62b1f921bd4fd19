"""Model tensors into device buffers, tensor by tensor, from bytes that arrive in pieces.

A `WeightSink` owns one tensor's device buffer(s) and takes the tensor's bytes in file
order, in pieces of any size (a file read, or whatever chunks a browser download gives),
so a model never has to sit whole in (wasm) memory on its way to the GPU. It keeps the
GPU's rules: writes start and end on 4-byte boundaries (up to 3 bytes are carried to the
next piece), tensors larger than the storage-binding limit are split into row ranges
(one buffer a part), BF16 is widened to F32 (the whole tensor is gathered first: they are
the exception), and small F32 tensors are kept on the host too (rope frequency factors).
"""
from __future__ import annotations

from typing import Any

from ...gguf import TensorInfo
from .device import Device, DeviceError
from .graph import BF16_AS_F32, F32, Weight

HOST_KEEP = 1 << 20  # keep F32 tensors up to this size on the host too
WRITE_STEP = 1 << 26  # largest single write


class _PartWriter:
    """Sequential writes into one buffer, on 4-byte boundaries."""
    __slots__ = ("dev", "buf", "at", "tail")

    def __init__(self, dev: Device, buf: Any) -> None:
        self.dev, self.buf, self.at, self.tail = dev, buf, 0, b""

    def put(self, mv: memoryview) -> None:
        if self.tail:
            need = 4 - len(self.tail)
            self.tail += bytes(mv[:need])
            mv = mv[need:]
            if len(self.tail) < 4:
                return
            self.dev.write(self.buf, self.at, self.tail)
            self.at += 4
            self.tail = b""
        n4 = len(mv) & ~3
        for off in range(0, n4, WRITE_STEP):
            end = min(off + WRITE_STEP, n4)
            self.dev.write(self.buf, self.at, mv[off:end])
            self.at += end - off
        if len(mv) > n4:
            self.tail = bytes(mv[n4:])

    def close(self) -> None:
        if self.tail:  # the buffer is allocated rounded up, so the padding fits
            self.dev.write(self.buf, self.at, self.tail + bytes(4 - len(self.tail)))
            self.at += 4
            self.tail = b""


class WeightSink:
    """One tensor's place on the device; `feed` its bytes in order, then `close`."""

    def __init__(self, dev: Device, info: TensorInfo, limit: int, source: str = "") -> None:
        self.info, self.dev = info, dev
        self.got = 0
        type_id = info.ggml_type.id
        bf16 = info.type_name == "BF16"
        nbytes = 2 * info.nbytes if bf16 else info.nbytes  # on the device
        if bf16:
            type_id = BF16_AS_F32
        self.keep_host = type_id in (F32, BF16_AS_F32) and nbytes <= HOST_KEEP
        self._gather: bytearray | None = bytearray(info.nbytes) if bf16 or self.keep_host else None
        self._widen = bf16
        n_rows = info.shape[1] if len(info.shape) > 1 else 1
        row_bytes = nbytes // max(1, n_rows)
        parts = None
        if nbytes > limit:  # row ranges that each fit one binding
            if len(info.shape) != 2 or row_bytes > limit:
                raise DeviceError(f"{source}: tensor {info.name} ({nbytes} bytes) exceeds the adapter's "
                                  f"storage-binding limit of {limit} bytes and cannot be split by rows")
            per = limit // row_bytes
            parts = []
            for row0 in range(0, n_rows, per):
                rows = min(per, n_rows - row0)
                parts.append((dev.buffer(rows * row_bytes, f"{info.name}[{row0}:]"), row0, rows))
            buf = None
        else:
            buf = dev.buffer(nbytes, info.name)
        self.weight = Weight(info.name, type_id, tuple(info.shape), buf, None, parts)
        # file byte ranges of each part (device bytes / 2 for widened BF16)
        scale = 2 if bf16 else 1
        spans = [(buf, 0, nbytes)] if parts is None else \
            [(pb, row0 * row_bytes, (row0 + rows) * row_bytes) for pb, row0, rows in parts]
        self._parts = [(_PartWriter(dev, b), a // scale, e // scale) for b, a, e in spans]

    @property
    def nbytes(self) -> int:
        return self.info.nbytes

    @property
    def done(self) -> bool:
        return self.got == self.info.nbytes

    def feed(self, data: Any) -> None:
        """The next bytes of the tensor (bytes-like)."""
        mv = memoryview(data).cast("B")
        n = len(mv)
        if self.got + n > self.info.nbytes:
            raise ValueError(f"{self.info.name}: {self.got + n} bytes fed, the tensor has {self.info.nbytes}")
        if self._gather is not None:
            self._gather[self.got:self.got + n] = mv
        else:
            self._put(mv, self.got)
        self.got += n

    def _put(self, mv: memoryview, pos: int) -> None:
        end = pos + len(mv)
        for writer, a, b in self._parts:
            lo, hi = max(a, pos), min(b, end)
            if lo < hi:
                writer.put(mv[lo - pos:hi - pos])

    def close(self) -> None:
        """All bytes are in: flush (and for gathered tensors, write them now)."""
        if not self.done:
            raise ValueError(f"{self.info.name}: got {self.got} of {self.info.nbytes} bytes")
        if self._gather is not None:
            data = self._gather
            self._gather = None
            if self._widen:  # bf16 bits are the top half of an f32
                wide = bytearray(2 * len(data))
                wide[2::4] = data[0::2]
                wide[3::4] = data[1::2]
                data = wide
                self._parts = [(w, 2 * a, 2 * b) for w, a, b in self._parts]
            if self.keep_host:
                self.weight.host = bytes(data)
            self._put(memoryview(data), 0)
        for writer, _, _ in self._parts:
            writer.close()
