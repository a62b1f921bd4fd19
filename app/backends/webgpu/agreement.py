"""Does the WebGPU backend compute what the ggml backend computes, on this model?

Forced decoding: both runners read the same token sequence (a prefill of `n_prefill`
tokens with every position's logits, then one token a step), and each position's logits
are compared: top-1 agreement and cosine. Pure Python (no numpy): it runs in the browser
worker as the app's diagnostics action and in the tests. The WebGPU side is read with
`await` (mapAsync), so it needs no JS Promise Integration.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Agreement:
    positions: int
    top1: float              # share of positions whose greedy token agrees
    min_cos: float           # lowest cosine of the logits over the positions
    mean_cos: float
    min_cos_at: int
    # (position, ggml token, WebGPU token, ggml's logit margin between the two)
    disagreements: list[tuple[int, int, int, float]] = field(default_factory=list)
    ms: float = 0.0
    decode_ms: float = 0.0   # of which the single-token steps (both backends, GPU read-backs)

    @property
    def near_ties_only(self) -> bool:
        """Every disagreement is a near-tie in ggml's own logits (margin < 0.05)."""
        return all(d[3] < 0.05 for d in self.disagreements)

    def passes(self, top1: float = 0.99, cos: float = 0.999) -> bool:
        return self.top1 >= top1 and self.min_cos >= cos

    def as_dict(self) -> dict:
        d = asdict(self)
        d["near_ties_only"] = self.near_ties_only
        return d


def _argmax(row: Any) -> int:
    best, bi = -math.inf, 0
    for i, v in enumerate(row):
        if v > best:
            best, bi = v, i
    return bi


def _cos(a: Any, b: Any) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def probe_tokens(n: int, n_vocab: int, seed: int = 7) -> list[int]:
    """A fixed pseudo-random token sequence (ids 3.. skip the usual control tokens)."""
    rng = random.Random(seed)
    return [rng.randrange(min(3, n_vocab - 1), n_vocab) for _ in range(n)]


async def forced_decoding(ref: Any, gpu: Any, tokens: list[int], n_prefill: int) -> Agreement:
    """ref: a GGMLRunner; gpu: a WebGPURunner; both are reset first and left holding `tokens`."""
    import time  # noqa: PLC0415
    t0 = time.perf_counter()
    n_prefill = max(1, min(n_prefill, len(tokens)))
    for r in (ref, gpu):
        r.reset()
        r.eval(tokens[:n_prefill], all_logits=True)
    pairs = []
    for i in range(n_prefill):
        pairs.append((ref.logits(i), await gpu.logits_async(i)))
    t1 = time.perf_counter()
    for t in tokens[n_prefill:]:
        ref.eval([t])
        gpu.eval([t])
        pairs.append((ref.logits(), await gpu.logits_async()))
    decode_ms = (time.perf_counter() - t1) * 1e3
    coss, agree, dis = [], 0, []
    for pos, (a, b) in enumerate(pairs):
        ta, tb = _argmax(a), _argmax(b)
        coss.append(_cos(a, b))
        if ta == tb:
            agree += 1
        else:
            dis.append((pos, ta, tb, float(a[ta] - a[tb])))
    worst = min(range(len(coss)), key=coss.__getitem__)
    return Agreement(len(pairs), agree / len(pairs), coss[worst], sum(coss) / len(coss), worst, dis,
                     (time.perf_counter() - t0) * 1e3, decode_ms)
