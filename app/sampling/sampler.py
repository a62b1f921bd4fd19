"""The engine's sampler (wasm_ext/engine_sampler.cpp) behind a small Python object.

Per token Python makes one call: the vocabulary-wide work (bias, penalties, top-k, ...,
the draw) runs in C on the logits tensor the model step left in the engine.
"""
from __future__ import annotations

import array
import os

from ..backends.ggml.library import Library, load_library
from .params import SamplingParams

_MASK32 = 0xFFFFFFFF


def _i32(u: int) -> int:
    """An unsigned 32-bit pattern as the signed int32 ctypes passes."""
    return u - (1 << 32) if u & 0x80000000 else u


def fresh_seed() -> int:
    return int.from_bytes(os.urandom(8), "little")


class Sampler:
    def __init__(self, lib: Library | None = None) -> None:
        self.lib = lib or load_library()
        self.handle = self.lib.check(self.lib.eng_sampler_new(), "sampler")
        self.params = SamplingParams()
        self.seed_used: int | None = None
        self._window = 64

    def configure(self, params: SamplingParams, n_ctx: int = 0) -> None:
        """Load the chain's settings; reseeds when params.seed is given (else leaves the stream)."""
        lib, h = self.lib, self.handle
        lib.check(lib.eng_sampler_set_chain(h, params.top_k, params.typical_p, params.top_p, params.min_p,
                                            params.temperature, params.min_keep), "sampler settings")
        lib.check(lib.eng_sampler_set_penalties(h, params.repeat_penalty, params.frequency_penalty,
                                                params.presence_penalty), "sampler penalties")
        ids = array.array("i", params.logit_bias.keys())
        vals = array.array("f", (float(b) for b in params.logit_bias.values()))
        lib.check(lib.eng_sampler_set_bias(h, ids.buffer_info()[0] if ids else None,
                                           vals.buffer_info()[0] if vals else None, len(ids)), "logit bias")
        self._window = 0 if not params.penalties_on else (n_ctx if params.penalty_last_n == -1
                                                          else params.penalty_last_n)
        self.params = params
        if params.seed is not None:
            self.seed(params.seed)

    @property
    def penalty_window(self) -> int:
        """How many of the latest tokens the penalties look at (0: penalties off)."""
        return self._window

    def seed(self, seed: int) -> None:
        self.lib.check(self.lib.eng_sampler_seed(self.handle, _i32((seed >> 32) & _MASK32), _i32(seed & _MASK32)),
                       "seed")
        self.seed_used = seed

    def sample(self, logits: int, row: int, history: list[int] | None = None) -> int:
        """A token from row `row` of the engine tensor `logits`; `history` is the sequence so
        far (its last penalty_last_n ids feed the penalties)."""
        if self._window and history:
            recent = array.array("i", history[-self._window:])
            ptr, n = recent.buffer_info()
        else:
            ptr, n = None, 0
        return self.lib.check(self.lib.eng_sampler_sample(self.handle, logits, row, ptr, n), "sampling")

    def candidates(self) -> list[tuple[int, float]]:
        """(id, probability) of the candidates the last draw chose from, in draw order."""
        limit = self.lib.check(self.lib.eng_sampler_candidates(self.handle, None, None, 1 << 30), "candidates")
        ids, probs = array.array("i", bytes(4 * limit)), array.array("f", bytes(4 * limit))
        n = self.lib.check(self.lib.eng_sampler_candidates(self.handle, ids.buffer_info()[0],
                                                           probs.buffer_info()[0], limit), "candidates")
        return list(zip(ids[:n], probs[:n]))

    def uniform(self) -> float:
        return float(self.lib.eng_sampler_uniform(self.handle))

    def close(self) -> None:
        if self.handle >= 0:
            self.lib.eng_sampler_free(self.handle)
            self.handle = -1

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
