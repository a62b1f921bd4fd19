"""Sampling on the GPU (shaders/sample.wgsl): a decode step reads back a token id, not the
logits. The chain and its order are the engine's C sampler's (wasm_ext/engine_sampler.cpp):
logit bias, repetition penalties, top-k, top-p, min-p, temperature, then a draw with the
uniform number r that the C sampler's own PCG32 stream gives (`Sampler.uniform()`), so
the GPU picks what the C sampler would pick from the same logits and the same stream
position (up to f32 against f64 sums: a draw within ~1e-6 of a boundary may differ).

Not on the GPU (the caller samples on the host instead): typical-p, top-k above CAP, and,
found while sampling (status 1), a top-p nucleus or a tie group that the CAP-entry
candidate list cannot hold.
"""
from __future__ import annotations

import math
import struct
from typing import Any

from ...sampling import SamplingParams

CAP = 1024  # candidate list of the kernel (workgroup memory)
GREEDY, SORTED, ID_ORDER = 0, 1, 2
OK, HOST, ALL_BANNED = 0, 1, 2


def plan(params: SamplingParams, n_vocab: int) -> tuple[int, int, bool, bool] | None:
    """(mode, list length, list truncated, top-p over the whole vocabulary) for the kernel,
    or None when this chain must run on the host. Mirrors eng_sampler_sample's branches:
    top-k (k < n) gives a sorted list; k covering the vocabulary sorts everything; top-k
    off leaves id order unless top-p sorts."""
    if params.greedy:
        return GREEDY, 0, False, False
    if params.typical_p < 1.0 or params.min_keep > CAP:
        return None
    k = params.top_k
    if 0 < k < n_vocab:
        return (SORTED, k, False, False) if k <= CAP else None
    if k > 0 or params.top_p < 1.0:  # every token a candidate, sorted
        m = min(n_vocab, CAP)
        return SORTED, m, m < n_vocab, True
    return ID_ORDER, 0, False, False


def edits(params: SamplingParams, history: list[int] | None, window: int) -> list[tuple[int, float, int]]:
    """(token id, logit bias, count in the penalty window) for every token the bias or the
    penalties touch (the host knows the history; the GPU applies them to the row)."""
    counts: dict[int, int] = {}
    if window and history and params.penalties_on:
        for t in history[-window:]:
            counts[t] = counts.get(t, 0) + 1
    ids = sorted(set(params.logit_bias) | set(counts))
    return [(t, float(params.logit_bias.get(t, 0.0)), counts.get(t, 0)) for t in ids]


class GPUSampler:
    """The sampling dispatch for one device; buffers grow with the vocabulary and edits."""

    def __init__(self, device: Any, kernels: Any) -> None:
        self.device, self.kernels = device, kernels
        self.pipe = kernels.get("sample")
        self.out = device.buffer(16, "sample_out")
        self.vals: Any = None
        self.edit_buf: Any = None
        self.edit_cap = 0
        self._binds: dict[tuple, Any] = {}

    def _ensure(self, n_vocab: int, n_edits: int) -> None:
        if self.vals is None or self.vals.size < 4 * n_vocab:
            self.vals = self.device.buffer(4 * n_vocab, "sample_vals")
            self._binds.clear()
        if self.edit_buf is None or self.edit_cap < max(1, n_edits):
            self.edit_cap = max(64, 2 * n_edits)
            self.edit_buf = self.device.buffer(16 * self.edit_cap, "sample_edits")
            self._binds.clear()

    def sample(self, logits: Any, offset: int, n_vocab: int, params: SamplingParams, r: float,
               history: list[int] | None = None, window: int = 0) -> tuple[int, int]:
        """(token, status) for the logits row at float `offset` of buffer `logits`."""
        how = plan(params, n_vocab)
        if how is None:
            return 0, HOST
        mode, m, truncated, full_sum = how
        ed = edits(params, history, window)
        self._ensure(n_vocab, len(ed))
        dev = self.device
        if ed:
            dev.write(self.edit_buf, 0, b"".join(struct.pack("<IfII", t, b, c, 0) for t, b, c in ed))
        ln_min_p = math.log(params.min_p) if params.min_p > 0 else 0.0
        temp = params.temperature if params.temperature > 0 else 1.0
        uni = struct.pack("<8I8f", n_vocab, offset, len(ed), mode, m, params.min_keep, int(truncated),
                          int(full_sum), params.top_p, ln_min_p, temp, r, params.repeat_penalty,
                          params.frequency_penalty, params.presence_penalty, 0.0)
        uni = uni[:-4] + struct.pack("<I", int(params.min_p > 0))
        key = (id(logits), id(self.vals), id(self.edit_buf))
        cached = self._binds.get(key)
        if cached is None:
            ubuf = dev.uniform(uni, "sample_params")
            bind = dev.bind(self.pipe, [logits, self.edit_buf, self.vals, self.out, ubuf])
            cached = self._binds[key] = (ubuf, bind, logits)
        else:
            dev.write(cached[0], 0, uni)
        dev.run([(self.pipe, cached[1], (1, 1, 1))])
        token, status = struct.unpack("<2I", dev.read(self.out, 0, 8))
        return token, status
