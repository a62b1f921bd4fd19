"""What every GGUF byte stream shares, whichever memory its tensors go to (the wasm engine:
app/store/stream.py; GPU buffers: app/backends/webgpu/stream.py): the incremental header
parser, the running sha256, the phase clock, and the checks `finish()` makes before a
model may be used (or stored)."""
from __future__ import annotations

import hashlib
import time
from typing import Any

from ..gguf import GGUFError, GGUFFile, GGUFParser


class StreamChecks:
    def __init__(self, source: str, file_size: int | None, sha256: str | None) -> None:
        self.source, self.file_size = source, file_size
        self.expected_sha256 = sha256.lower() if sha256 else None
        self._hash = hashlib.sha256() if sha256 else None  # hashed as the bytes pass
        self.parser = GGUFParser(source, file_size)
        self.pos = 0  # absolute offset of the next byte
        self.gguf: GGUFFile | None = None
        self.runner: Any = None
        self.t_start = time.perf_counter()  # the load's phases (the worker reports them)
        self.t_header = 0.0
        self.t_runner = 0.0

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
