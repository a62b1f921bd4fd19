"""The byte container of a model-state snapshot, shared by every backend.

    magic | u32 version | u32 header length | header (JSON: arch, model, n_past, sections
    [(name, bytes)]) | the sections' bytes | sha256 of everything before it

A backend names its own magic (the ggml and WebGPU states are laid out differently) and
decides what its sections are; this module only packs, and checks the container before a
backend writes anything: magic, version, checksum, header, total size.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

VERSION = 1


class SnapshotError(ValueError):
    """A snapshot that cannot be restored into this runner (the runner is left unchanged)."""


@dataclass
class Snapshot:
    arch: str
    identity: str
    n_past: int
    sections: list[tuple[str, int]]
    data: memoryview
    offset: int  # where the first section's bytes start in `data`

    def parts(self):
        """(name, bytes) of each section, in order."""
        at = self.offset
        for name, n in self.sections:
            yield name, self.data[at:at + n]
            at += n


def pack(magic: bytes, arch: str, identity: str, n_past: int, sections: list[tuple[str, bytes]]) -> bytes:
    header = json.dumps({"arch": arch, "model": identity, "n_past": n_past,
                         "sections": [(name, len(b)) for name, b in sections]}, separators=(",", ":")).encode()
    body = b"".join([magic, struct.pack("<II", VERSION, len(header)), header, *(b for _, b in sections)])
    return body + hashlib.sha256(body).digest()


def unpack(data: bytes, magic: bytes, what: str = "model-state") -> Snapshot:
    data = memoryview(bytes(data))
    head = len(magic) + 8
    if len(data) < head + 32 or bytes(data[:len(magic)]) != magic:
        raise SnapshotError(f"not a {what} snapshot (bad magic or too short)")
    version, header_len = struct.unpack_from("<II", data, len(magic))
    if version != VERSION:
        raise SnapshotError(f"snapshot format version {version} is not supported (this runtime reads "
                            f"version {VERSION})")
    if hashlib.sha256(data[:-32]).digest() != bytes(data[-32:]):
        raise SnapshotError("snapshot checksum mismatch: the data is corrupted or truncated")
    try:
        header = json.loads(bytes(data[head:head + header_len]))
        snap = Snapshot(str(header["arch"]), str(header["model"]), int(header["n_past"]),
                        [(str(name), int(n)) for name, n in header["sections"]], data, head + header_len)
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"snapshot header is malformed: {exc}") from None
    if snap.offset + sum(n for _, n in snap.sections) != len(data) - 32:
        raise SnapshotError("snapshot size does not match its header")
    return snap
