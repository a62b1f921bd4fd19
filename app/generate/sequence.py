"""The model state as a token sequence: what the model has seen, and how to get it to a
new target with the least work (keep the longest common prefix, roll back the rest).

Attention state (the KV cache) rolls back to any prefix. A recurrent state (Mamba and
other SSM layers) summarises the whole sequence and cannot: for those models we keep a few
snapshots, each taken just before the last token of a prefill, so a regenerated or edited
turn restarts from the longest one it extends instead of from scratch.
"""
from __future__ import annotations

from typing import Callable

from ..backends.ggml.runner import GGMLRunner

MAX_SNAPSHOTS = 4


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class Sequence:
    def __init__(self, runner: GGMLRunner) -> None:
        self.runner = runner
        self.tokens: list[int] = []  # exactly the tokens the model state holds
        self.recurrent = bool(getattr(runner, "is_recurrent", False))
        self.snapshots: list[tuple[list[int], bytes]] = []  # recurrent models only, newest last

    @property
    def n_ctx(self) -> int:
        return self.runner.kv_size

    def _sync(self) -> None:
        if self.runner.n_past != len(self.tokens):  # the runner was used behind our back
            self.runner.reset()
            self.tokens = []

    def reusable(self, target: list[int]) -> int:
        """How many tokens of `target` the state already holds and a prefill would keep."""
        self._sync()
        keep = min(common_prefix(self.tokens, target), len(target) - 1)
        if not self.recurrent or keep == len(self.tokens):
            return keep
        snap = self._snapshot_for(target)
        return len(snap[0]) if snap is not None else 0

    def _snapshot_for(self, target: list[int]) -> tuple[list[int], bytes] | None:
        """The longest snapshot whose tokens begin `target` (leaving at least one token)."""
        fits = [s for s in self.snapshots if len(s[0]) < len(target) and common_prefix(s[0], target) == len(s[0])]
        return max(fits, key=lambda s: len(s[0]), default=None)

    def prefill(self, target: list[int], on_chunk: Callable[[int], bool | None] | None = None) -> int:
        """Make the state hold `target`, leaving the logits of its last token; returns the
        number of tokens evaluated. The last token is always evaluated (its logits are
        needed). On a cancel (runner.Cancelled) the chunks done stay in the state."""
        if not target:
            raise ValueError("empty prompt: nothing to generate from")
        keep = self.reusable(target)
        if keep < len(self.tokens) and self.recurrent:
            snap = self._snapshot_for(target)
            if keep and snap is not None and len(snap[0]) == keep:
                self.runner.load_state(snap[1])
            else:
                self.runner.reset()
        else:
            self.runner.truncate(keep)
        del self.tokens[keep:]
        todo = target[keep:]
        try:
            if self.recurrent and len(todo) > 1:
                self.runner.eval(todo[:-1], on_chunk=on_chunk)
                self.snapshots = [s for s in self.snapshots if s[0] != target[:-1]][-(MAX_SNAPSHOTS - 1):]
                self.snapshots.append((list(target[:-1]), self.runner.save_state()))
                self.runner.eval(todo[-1:])
            else:
                self.runner.eval(todo, on_chunk=on_chunk)
        finally:
            self.tokens = list(target[:self.runner.n_past])
        return len(todo)

    def push(self, token: int) -> None:
        self.runner.eval([token])
        self.tokens.append(token)

    def sample(self, sampler) -> int:
        """The next token from the last evaluated token's logits: on the runner's device
        when it samples itself (WebGPU: only the token id comes back), else in the engine."""
        own = getattr(self.runner, "sample", None)
        if own is not None:
            return own(sampler, self.tokens)
        logits, row = self.logits
        return sampler.sample(logits, row, self.tokens)

    @property
    def logits(self) -> tuple[int, int]:
        """(engine tensor handle, row) of the last evaluated token's logits."""
        last = self.runner.last
        assert last is not None
        return self.runner.logits_tensor(), last.n_outputs - 1

    def reset(self) -> None:
        self.runner.reset()
        self.tokens = []
