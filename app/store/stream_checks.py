"""What every GGUF byte stream shares, whichever memory its tensors go to (the wasm engine:
app/store/stream.py; GPU buffers: app/backends/webgpu/stream.py): the incremental header
parser, the running sha256, the phase clock, and the checks `finish()` makes before a
model may be used (or stored)."""
from __future__ import annotations

import hashlib
import time
from typing import Any

from ..gguf import GGUFError, GGUFFile, GGUFParser
from ..gguf.header_cache import HeaderCheck, new_header_hash, pack_header, unpack_header


class StreamChecks:
    def __init__(self, source: str, file_size: int | None, sha256: str | None, header: bytes | None = None) -> None:
        """header: pack_header's bytes from an earlier load of this model (a guess, checked
        against the stream's own header bytes before it is used)."""
        self.source, self.file_size = source, file_size
        self.expected_sha256 = sha256.lower() if sha256 else None
        self._hash = hashlib.sha256() if sha256 else None  # hashed as the bytes pass
        self.parser = GGUFParser(source, file_size)
        known = unpack_header(header, source, file_size) if header else None
        self._check = HeaderCheck(*known) if known else None
        self._head_hash = new_header_hash()  # of the header's bytes, for header_blob()
        self._head_left = 0  # alignment padding after the tensor table, hashed from later chunks
        self.header_digest: str | None = None
        self.header_from_cache = False
        self.pos = 0  # absolute offset of the next byte
        self.gguf: GGUFFile | None = None
        self.runner: Any = None
        self.t_start = time.perf_counter()  # the load's phases (the worker reports them)
        self.t_header = 0.0
        self.t_runner = 0.0

    def _header_feed(self, data: bytes | memoryview, start: int) -> bool:
        """Bytes [start, start + len(data)) of the stream while the header is incomplete:
        True (and self.gguf set) once it is complete."""
        if self._check is not None:
            confirmed = self._check.feed(data)
            if confirmed is False:
                return False
            check, self._check = self._check, None
            if confirmed:
                self.gguf, self.header_digest, self.header_from_cache = check.gguf, check.digest, True
                return True
            data, start = bytes(check.held), 0  # a stale cached header: parse what was held
        if not self.parser.feed(data):
            self._head_hash.update(data)
            return False
        self.gguf = self.parser.finish()
        n = self.gguf.data_offset
        self._head_hash.update(memoryview(data)[:n - start])
        self._head_left = max(0, n - (start + len(data)))
        self._header_tail(memoryview(b""))
        return True

    def _header_tail(self, data: memoryview) -> None:
        """The next bytes after the header chunk (only the padding still missing is hashed)."""
        if self._head_left:
            k = min(self._head_left, len(data))
            self._head_hash.update(data[:k])
            self._head_left -= k
        if not self._head_left and self.header_digest is None:
            self.header_digest = self._head_hash.hexdigest()

    def header_blob(self) -> bytes | None:
        """This stream's header for the next load of the same bytes (pack_header), once known."""
        if self.gguf is None or self.header_digest is None:
            return None
        return pack_header(self.gguf, self.header_digest)

    @property
    def header_done(self) -> bool:
        return self.gguf is not None

    @property
    def bytes_needed(self) -> int | None:
        """Total bytes this model occupies in its file (known once the header is parsed)."""
        return None if self.gguf is None else self.gguf.data_offset + self.gguf.data_size

    def _check_registered(self, n_registered: int) -> None:
        """Every file tensor must have a destination in the runner."""
        if n_registered != len(self.gguf.tensors):
            raise GGUFError(f"{self.source}: the runner registered {n_registered} of {len(self.gguf.tensors)} tensors")

    def _check_complete(self, missing: list[str]) -> None:
        """End of stream: a GGUFError naming what is missing or wrong (`missing`: the names of
        tensors that did not get all their bytes), else nothing."""
        if self.gguf is None:
            self.parser.finish()  # raises: truncated header
            raise GGUFError(f"{self.source}: incomplete header")
        if missing:
            raise GGUFError(f"{self.source}: truncated file: got {self.pos} bytes, the tensors need "
                            f"{self.bytes_needed} ({len(missing)} tensor(s) incomplete, first {missing[0]})")
        if self.file_size and self.pos != self.file_size:
            raise GGUFError(f"{self.source}: got {self.pos} bytes, expected {self.file_size}: the download is "
                            f"incomplete or not the file the catalogue describes")
        if self._hash is not None and self._hash.hexdigest() != self.expected_sha256:
            raise GGUFError(f"{self.source}: sha256 mismatch: the {self.pos} bytes received hash to "
                            f"{self._hash.hexdigest()}, expected {self.expected_sha256} (a damaged or changed "
                            f"file; it is not kept)")
