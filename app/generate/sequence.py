"""The model state as a token sequence: what the KV cache holds, and how to get it to a
new target with the least work (keep the longest common prefix, roll back the rest)."""
from __future__ import annotations

from typing import Callable

from ..backends.ggml.runner import GGMLRunner


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class Sequence:
    def __init__(self, runner: GGMLRunner) -> None:
        self.runner = runner
        self.tokens: list[int] = []  # exactly the tokens whose K/V the runner holds

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
        return min(common_prefix(self.tokens, target), len(target) - 1)

    def prefill(self, target: list[int], on_chunk: Callable[[int], bool | None] | None = None) -> int:
        """Make the state hold `target`, leaving the logits of its last token; returns the
        number of tokens evaluated. The last token is always evaluated (its logits are
        needed). On a cancel (runner.Cancelled) the chunks done stay in the state."""
        if not target:
            raise ValueError("empty prompt: nothing to generate from")
        keep = self.reusable(target)
        self.runner.truncate(keep)
        del self.tokens[keep:]
        todo = target[keep:]
        try:
            self.runner.eval(todo, on_chunk=on_chunk)
        finally:
            self.tokens = list(target[:self.runner.n_past])
        return len(todo)

    def push(self, token: int) -> None:
        self.runner.eval([token])
        self.tokens.append(token)

    @property
    def logits(self) -> tuple[int, int]:
        """(engine tensor handle, row) of the last evaluated token's logits."""
        last = self.runner.last
        assert last is not None
        return self.runner.logits_tensor(), last.n_outputs - 1

    def reset(self) -> None:
        self.runner.reset()
        self.tokens = []
