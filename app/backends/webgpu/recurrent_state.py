"""Recurrent layers' state on WebGPU: per-layer conv and scan buffers, and snapshots.

Each recurrent layer keeps its conv and scan state in two persistent device buffers
(`LayerState`, ggml's layouts). The runner zeroes them on reset (rec_zero.wgsl) and
saves/loads them with the KV cells in use (save_state/load_state), which is what
app.generate's Sequence needs to regenerate a turn of a recurrent model.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from ... import snapshot
from ...snapshot import SnapshotError
from .graph import _cdiv, _grid


@dataclass
class LayerState:
    """A recurrent layer's persistent state (F32, ggml's layouts)."""
    conv: Any  # device buffer [channels][d_conv - 1]: the last inputs of the causal conv
    ssm: Any  # device buffer: Mamba's h [heads][head_dim][d_state] or DeltaNet's S [H][S][S]
    conv_bytes: int
    ssm_bytes: int


def alloc_states(model: Any, dev: Any) -> list[LayerState | None]:
    """One LayerState per recurrent layer (None for attention layers), zero-filled."""
    fn = getattr(model, "recurrent_state", None)
    out: list[LayerState | None] = []
    for i in range(model.hp.n_layer):
        shape = fn(i) if fn is not None else None
        if shape is None:
            out.append(None)
            continue
        conv_n, ssm_n = shape
        out.append(LayerState(dev.buffer(4 * conv_n, f"conv{i}"), dev.buffer(4 * ssm_n, f"ssm{i}"),
                              4 * conv_n, 4 * ssm_n))
    return out


def clear_states(dev: Any, states: list[LayerState | None], kernels: Any) -> None:
    """Zero every state buffer with one pass of rec_zero.wgsl (no upload of zeros)."""
    pipe = kernels.get("rec_zero")
    run = []
    for st in states:
        if st is None:
            continue
        for buf, nbytes in ((st.conv, st.conv_bytes), (st.ssm, st.ssm_bytes)):
            n = nbytes // 4
            run.append((pipe, dev.bind(pipe, [buf, dev.uniform(struct.pack("<4I", n, 0, 0, 0), "zero")]),
                        _grid(_cdiv(n, 256))))
    if run:
        dev.run(run)


# -- snapshots (container: app/snapshot.py) -------------------------------------------------------
# sections: KV cells in use per attention layer, conv and scan state per recurrent layer

SNAPSHOT_MAGIC = b"PYLLMGPU\0"


def _model_id(runner: Any) -> str:
    h = hashlib.sha256(runner.hp.arch.encode())
    for t in runner.gguf.tensors:
        h.update(f"{t.name}|{t.type_name}|{list(t.shape)}|{t.nbytes};".encode())
    return h.hexdigest()


def _sections(runner: Any, n_past: int) -> list[tuple[str, Any, int]]:
    hp, out = runner.hp, []
    for i, c in enumerate(runner.caches):
        if c is not None:
            out.append((f"kv.{i}.k", c.k, 2 * hp.n_embd_k_gqa * n_past))
            out.append((f"kv.{i}.v", c.v, 2 * hp.n_embd_v_gqa * n_past))
    for i, st in enumerate(runner.states):
        if st is not None:
            out.append((f"rs.{i}.conv", st.conv, st.conv_bytes))
            out.append((f"rs.{i}.ssm", st.ssm, st.ssm_bytes))
    return out


def save_state(runner: Any) -> bytes:
    sections = [(name, bytes(runner.device.read(buf, 0, n)) if n else b"")
                for name, buf, n in _sections(runner, runner.n_past)]
    return snapshot.pack(SNAPSHOT_MAGIC, runner.hp.arch, _model_id(runner), runner.n_past, sections)


def load_state(runner: Any, data: bytes) -> None:
    """Everything is checked before anything is written (SnapshotError otherwise)."""
    snap = snapshot.unpack(data, SNAPSHOT_MAGIC, "WebGPU model-state")
    n_past = snap.n_past
    if snap.arch != runner.hp.arch or snap.identity != _model_id(runner):
        raise SnapshotError(f"snapshot was taken from a different model ({snap.arch!r}) than the one loaded "
                            f"({runner.hp.arch!r})")
    if not 0 <= n_past <= runner.kv_size:
        raise SnapshotError(f"snapshot holds {n_past} tokens, more than this runner's context of {runner.kv_size}")
    expected = _sections(runner, n_past)
    if snap.sections != [(name, n) for name, _, n in expected]:
        raise SnapshotError("snapshot sections do not match this model's state layout")
    for (_, buf, n), (_, part) in zip(expected, snap.parts()):
        if n:
            runner.device.write(buf, 0, part)
    runner.n_past, runner.last = n_past, None
