"""A parsed GGUF header kept next to a stored model, so that loading it again skips the parse.

Parsing a header is one Python step per vocabulary entry: 0.3-0.5 s for a 262k-token
vocabulary under Pyodide, on every load, before the first weight byte can go anywhere.
`pack_header` turns a parsed header into bytes (marshal: lists, dicts and strings load at C
speed, ~0.1 s for the same header); the browser keeps them with the model's stored bytes
(web/model_store.js). `HeaderCheck` then stands in for the parser on the next load: it
holds the stream's header bytes, and only when their digest is the one recorded with the
cached header does that header count; otherwise the held bytes are parsed as usual. A
stale, damaged or foreign cache entry therefore costs the hashing and nothing else.
"""
from __future__ import annotations

import hashlib
import marshal
import sys
from typing import Any

from .ggml_types import GGML_TYPES
from .reader import GGUFFile, TensorInfo

# marshal's format is tied to the Python version: a cache written by another one is ignored
FORMAT = f"pyllm-gguf-header/1 py{sys.version_info[0]}.{sys.version_info[1]} marshal{marshal.version}"


def new_header_hash() -> Any:
    """The running digest of a header's bytes [0, data_offset) (blake2b: ~2x sha256's speed
    in software, and this is a cache key, not an integrity promise to the user)."""
    return hashlib.blake2b(digest_size=32)


def pack_header(gguf: GGUFFile, digest: str) -> bytes:
    tensors = [(t.name, t.ggml_type.id, t.shape, t.offset, t.nbytes) for t in gguf.tensors]
    return marshal.dumps((FORMAT, digest, gguf.version, gguf.metadata, tensors, gguf.alignment, gguf.data_offset))


def unpack_header(blob: bytes, source: str, file_size: int | None = None) -> tuple[str, GGUFFile] | None:
    """(digest, header) from pack_header's bytes, or None for anything else (another format
    version, another Python, damaged bytes)."""
    try:
        fmt, digest, version, metadata, tensors, alignment, data_offset = marshal.loads(blob)
        if fmt != FORMAT:
            return None
        infos = [TensorInfo(name, GGML_TYPES[type_id], tuple(shape), offset, nbytes)
                 for name, type_id, shape, offset, nbytes in tensors]
        if file_size is not None and any(data_offset + t.offset + t.nbytes > file_size for t in infos):
            return None  # the parser words this error (a tensor outside the file)
        return digest, GGUFFile(source, version, metadata, infos, alignment, data_offset, file_size)
    except (ValueError, EOFError, TypeError, KeyError):
        return None


class HeaderCheck:
    """Takes the stream's first bytes in place of a GGUFParser while a cached header is
    on trial: `feed` returns the header once data_offset bytes are in and match the digest,
    `held` is what to parse instead when they do not."""

    def __init__(self, digest: str, gguf: GGUFFile) -> None:
        self.digest, self.gguf = digest, gguf
        self.held = bytearray()

    def feed(self, chunk: bytes | bytearray | memoryview) -> bool | None:
        """True: the header is confirmed; False: more bytes needed; None: refused."""
        self.held += chunk
        n = self.gguf.data_offset
        if len(self.held) < n:
            return False
        h = new_header_hash()
        h.update(memoryview(self.held)[:n])
        return True if h.hexdigest() == self.digest else None
