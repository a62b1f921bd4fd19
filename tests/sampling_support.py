"""Helpers for the sampler tests: logits tensors in the engine, a numpy reference of the
chain (llama.cpp's semantics, written independently of the C code), PCG32 in Python."""
from __future__ import annotations

import array

import numpy as np


class LogitsTensors:
    """F32 [n_vocab, rows] engine tensors filled from numpy arrays."""

    def __init__(self, lib) -> None:
        self.lib = lib
        self.eng = lib.check(lib.eng_new(1), "engine")
        self.pools: list[int] = []

    def make(self, logits: np.ndarray) -> int:
        lib = self.lib
        rows = np.atleast_2d(np.asarray(logits, dtype=np.float32))
        pool = lib.check(lib.eng_pool_new(self.eng, 1), "pool")
        t = lib.check(lib.eng_pool_tensor(pool, 0, rows.shape[1], rows.shape[0], 1, 1, 0), "tensor")
        lib.check(lib.eng_pool_alloc(pool), "alloc")
        data = array.array("f", rows.tobytes())
        lib.check(lib.eng_tensor_set(t, 0, data.buffer_info()[0], 4 * len(data)), "set")
        self.pools.append(pool)
        return t

    def close(self) -> None:
        for p in self.pools:
            self.lib.eng_pool_free(p)
        self.lib.eng_free(self.eng)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x.astype(np.float64) - np.max(x))
    return e / e.sum()


def reference_distribution(logits: np.ndarray, temperature: float = 0.8, top_k: int = 40, top_p: float = 0.95,
                           min_p: float = 0.05, typical_p: float = 1.0, min_keep: int = 0,
                           bias: dict[int, float] | None = None, recent: list[int] | None = None,
                           repeat: float = 1.0, freq: float = 0.0, present: float = 0.0) -> dict[int, float]:
    """token id -> probability the chain should draw it with."""
    l = np.asarray(logits, dtype=np.float32).copy()
    for t, b in (bias or {}).items():
        l[t] += np.float32(b)
    if recent and not (repeat == 1.0 and freq == 0.0 and present == 0.0):
        ids, counts = np.unique(np.asarray(recent), return_counts=True)
        for t, c in zip(ids, counts):
            l[t] = l[t] * np.float32(repeat) if l[t] <= 0 else l[t] / np.float32(repeat)
            l[t] -= np.float32(c) * np.float32(freq) + np.float32(present)
    if temperature <= 0:
        return {int(np.argmax(l)): 1.0}
    cand = np.lexsort((np.arange(len(l)), -l))  # logit descending, then id
    if 0 < top_k < len(l):
        cand = cand[:top_k]
    if typical_p < 1.0:
        p = _softmax(l[cand])
        nz = p > 0
        ent = -np.sum(p[nz] * np.log(p[nz]))
        score = np.where(nz, np.abs(-np.log(np.where(nz, p, 1.0)) - ent), np.inf)
        order = np.argsort(score, kind="stable")
        cum = np.cumsum(p[order])
        last = len(order)
        for i, c in enumerate(cum):
            if c > typical_p and (min_keep == 0 or i + 1 >= min_keep):
                last = i + 1
                break
        cand = cand[order[:last]]
    if top_p < 1.0:
        cand = cand[np.lexsort((cand, -l[cand]))]
        cum = np.cumsum(_softmax(l[cand]))
        last = next((i + 1 for i, c in enumerate(cum) if c >= top_p and i + 1 >= min_keep), len(cand))
        cand = cand[:last]
    if min_p > 0.0:
        keep = l[cand].astype(np.float64) >= float(np.max(l[cand])) + np.log(min_p)
        cand = cand[keep]
    z = l[cand] / np.float32(temperature)
    return dict(zip(map(int, cand), _softmax(z)))


class Pcg32:
    """PCG32 (XSH-RR 64/32) exactly as wasm_ext/engine_sampler.cpp, with its 53-bit uniform."""
    MASK = (1 << 64) - 1

    def __init__(self, seed: int, seq: int = 0xDA3E39CB94B95BDB) -> None:
        self.state, self.inc = 0, ((seq << 1) | 1) & self.MASK
        self.next()
        self.state = (self.state + seed) & self.MASK
        self.next()

    def next(self) -> int:
        old = self.state
        self.state = (old * 6364136223846793005 + self.inc) & self.MASK
        xorshifted = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rot = old >> 59
        return ((xorshifted >> rot) | (xorshifted << ((32 - rot) & 31))) & 0xFFFFFFFF

    def uniform(self) -> float:
        a, b = self.next() >> 5, self.next() >> 6
        return (a * 67108864.0 + b) / 9007199254740992.0


def chi_square_threshold(df: int, z: float = 3.719) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile at z standard deviations
    (z = 3.719: p = 1e-4, so a correct sampler fails one run in 10,000)."""
    return df * (1 - 2 / (9 * df) + z * (2 / (9 * df)) ** 0.5) ** 3
