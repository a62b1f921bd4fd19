"""Sampling parameters: llama.cpp's defaults, checked before any work starts."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any


class OptionError(ValueError):
    """A bad or unknown generation option; the message names it and what is allowed."""


@dataclass(frozen=True)
class SamplingParams:
    """The sampler chain's settings (defaults are llama.cpp's `common_params_sampling`).

    temperature 0 is greedy (exact argmax after logit bias and penalties)."""
    temperature: float = 0.8
    top_k: int = 40              # 0 = off
    top_p: float = 0.95          # 1 = off
    min_p: float = 0.05          # 0 = off
    typical_p: float = 1.0       # 1 = off
    repeat_penalty: float = 1.0  # 1 = off
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    penalty_last_n: int = 64     # window of recent tokens the penalties look at; -1 = whole context
    logit_bias: dict[int, float] = field(default_factory=dict)  # token id -> added logit (-inf bans)
    min_keep: int = 0
    seed: int | None = None      # None = a fresh random seed per reply

    def __post_init__(self) -> None:
        check_sampling(self)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def penalties_on(self) -> bool:
        return self.penalty_last_n != 0 and (self.repeat_penalty != 1.0 or self.frequency_penalty != 0.0
                                             or self.presence_penalty != 0.0)


SAMPLING_OPTIONS = tuple(f.name for f in fields(SamplingParams))


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise OptionError(f"{name} must be a number (got {value!r})")
    return float(value)


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"{name} must be an integer (got {value!r})")
    return value


def check_sampling(p: SamplingParams) -> None:
    t = _number("temperature", p.temperature)
    if t < 0 or math.isinf(t):
        raise OptionError(f"temperature must be >= 0 and finite (0 = greedy); got {p.temperature!r}")
    if _integer("top_k", p.top_k) < 0:
        raise OptionError(f"top_k must be >= 0 (0 = off); got {p.top_k!r}")
    if not 0.0 < _number("top_p", p.top_p) <= 1.0:
        raise OptionError(f"top_p must be in (0, 1] (1 = off); got {p.top_p!r}")
    if not 0.0 <= _number("min_p", p.min_p) <= 1.0:
        raise OptionError(f"min_p must be in [0, 1] (0 = off); got {p.min_p!r}")
    if not 0.0 < _number("typical_p", p.typical_p) <= 1.0:
        raise OptionError(f"typical_p must be in (0, 1] (1 = off); got {p.typical_p!r}")
    r = _number("repeat_penalty", p.repeat_penalty)
    if not 0.0 < r < math.inf:
        raise OptionError(f"repeat_penalty must be > 0 and finite (1 = off); got {p.repeat_penalty!r}")
    for name in ("frequency_penalty", "presence_penalty"):
        if math.isinf(_number(name, getattr(p, name))):
            raise OptionError(f"{name} must be finite (0 = off); got {getattr(p, name)!r}")
    if _integer("penalty_last_n", p.penalty_last_n) < -1:
        raise OptionError(f"penalty_last_n must be >= 0, or -1 for the whole context; got {p.penalty_last_n!r}")
    if _integer("min_keep", p.min_keep) < 0:
        raise OptionError(f"min_keep must be >= 0; got {p.min_keep!r}")
    if p.seed is not None and (_integer("seed", p.seed) < 0 or p.seed >= 2 ** 64):
        raise OptionError(f"seed must be an integer in [0, 2**64) or None; got {p.seed!r}")
    if not isinstance(p.logit_bias, dict):
        raise OptionError(f"logit_bias must be a dict of token id -> bias (got {type(p.logit_bias).__name__})")
    for tid, bias in p.logit_bias.items():
        if _integer("logit_bias token id", tid) < 0:
            raise OptionError(f"logit_bias token id must be >= 0; got {tid!r}")
        b = _number(f"logit_bias[{tid}]", bias)
        if b == math.inf:
            raise OptionError(f"logit_bias[{tid}] must be finite or -inf (a ban); got {bias!r}")


def check_vocab(p: SamplingParams, n_vocab: int) -> None:
    """The checks that need the model: token ids inside the vocabulary."""
    bad = [t for t in p.logit_bias if t >= n_vocab]
    if bad:
        raise OptionError(f"logit_bias token id(s) {bad[:5]} outside the vocabulary of {n_vocab} tokens")
