"""Generation options: the sampler's settings plus when to stop and how to react.

Every option is checked here, before any model work starts; an unknown name is an error
that suggests the closest known one.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from ..sampling import SAMPLING_OPTIONS, OptionError, SamplingParams

CONTEXT_FULL_MODES = ("error", "drop_oldest")


@dataclass(frozen=True)
class GenerateOptions:
    sampling: SamplingParams = field(default_factory=SamplingParams)
    max_tokens: int = 512
    stop: tuple[str, ...] = ()           # stop strings: matched across tokens, never emitted
    ignore_eos: bool = False             # ban the end-of-generation tokens (as llama.cpp does)
    on_context_full: str = "error"       # or "drop_oldest": drop the oldest turns/tokens and go on
    cancel: Callable[[], bool] | None = None          # polled between tokens and prefill chunks
    on_prefill: Callable[[int, int], Any] | None = None  # progress: (tokens done, tokens to do)


GENERATE_OPTIONS = ("max_tokens", "stop", "ignore_eos", "on_context_full", "cancel", "on_prefill")
ALL_OPTIONS = GENERATE_OPTIONS + SAMPLING_OPTIONS


def _unknown(name: str) -> OptionError:
    close = difflib.get_close_matches(name, ALL_OPTIONS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return OptionError(f"unknown option {name!r}{hint}; options are: {', '.join(ALL_OPTIONS)}")


def check_names(options: dict[str, Any]) -> None:
    for name in options:
        if name not in ALL_OPTIONS:
            raise _unknown(name)


def make_options(**options: Any) -> GenerateOptions:
    """GenerateOptions from keyword arguments (raises OptionError on anything wrong)."""
    check_names(options)
    sampling = SamplingParams(**{k: v for k, v in options.items() if k in SAMPLING_OPTIONS})
    rest = {k: v for k, v in options.items() if k in GENERATE_OPTIONS}

    max_tokens = rest.get("max_tokens", GenerateOptions.max_tokens)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
        raise OptionError(f"max_tokens must be a positive integer; got {max_tokens!r}")

    stop = rest.get("stop", ())
    if stop is None:
        stop = ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) for s in stop):
        raise OptionError(f"stop must be a string or a list of strings; got {stop!r}")
    if any(not s for s in stop):
        raise OptionError("stop strings must not be empty")

    ignore_eos = rest.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise OptionError(f"ignore_eos must be True or False; got {ignore_eos!r}")
    mode = rest.get("on_context_full", "error")
    if mode not in CONTEXT_FULL_MODES:
        raise OptionError(f"on_context_full must be one of {', '.join(CONTEXT_FULL_MODES)}; got {mode!r}")
    for name in ("cancel", "on_prefill"):
        if rest.get(name) is not None and not callable(rest[name]):
            raise OptionError(f"{name} must be callable or None; got {rest[name]!r}")
    return GenerateOptions(sampling, max_tokens, tuple(stop), ignore_eos, mode, rest.get("cancel"),
                           rest.get("on_prefill"))
