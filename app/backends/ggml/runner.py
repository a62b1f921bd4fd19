"""Run a model (app/models) on the engine: weights, KV cache, prefill and decode steps.

Prefill goes in chunks of at most `ubatch` tokens (512, as llama.cpp), decode one token
at a time. Graphs are cached per bucket (n_tokens, n_kv): the KV length visible to a
step is padded to a multiple of 256, so a decode graph is reused for 256 tokens and a
decode step costs a handful of engine calls from Python.
"""
from __future__ import annotations

import array
import ctypes
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ...gguf import GGUFFile, TensorInfo
from ... import snapshot
from ...models import Model, Weights
from ...snapshot import SnapshotError
from .graph import F16, F32, LayerCache, RecurrentState, StepGraph
from .library import MATMUL_WEIGHT, EngineError, Library, load_library

KV_PAD = 256  # llama.cpp pads the visible KV length (and the context) to 256 cells
UBATCH = 512  # llama.cpp's default physical batch

# Types the engine computes with (ggml has CPU kernels for each); others are refused at load.
SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                   "Q6_K", "IQ4_NL", "IQ4_XS")


def _pad(n: int, to: int) -> int:
    return (n + to - 1) // to * to


@dataclass
class StepStats:
    graphs_built: int = 0
    build_ms: float = 0.0
    compute_ms: float = 0.0
    python_ms: float = 0.0  # time in Python around the computes (input filling, bookkeeping)
    steps: int = 0
    extra: dict = field(default_factory=dict)


class GGMLRunner:
    """A loaded model on the engine, with one sequence of state (the KV cache)."""

    def __init__(self, model: Model, path: str | None = None, n_threads: int = 1, n_ctx: int = 4096,
                 lib: Library | None = None, loader: Callable[[int, TensorInfo], None] | None = None) -> None:
        self.model, self.hp, self.gguf = model, model.hp, model.gguf
        self.lib = lib or load_library()
        self.check_types(self.gguf)
        self.eng = self.lib.check(self.lib.eng_new(n_threads), "engine")
        self.n_threads = n_threads
        self.kv_size = _pad(max(n_ctx, 1), KV_PAD)
        self.n_past = 0
        self.tokens: list[int] = []  # the sequence's token history (snapshots carry it)
        self.abort_flag = 0  # address of an int32 the engine polls during a prompt (set_abort_flag)
        self.abort_fn = 0  # or a C function (int32_t (*)(void)) it calls (set_abort_function)
        self.graphs: OrderedDict[tuple[int, int, int], StepGraph] = OrderedDict()
        self.max_graphs = 4
        self.stats = StepStats()
        self.last: StepGraph | None = None
        self._load_weights(path, loader)
        self._alloc_cache()
        self._alloc_states()
        self._logits_pool: int | None = None  # holds the logits row a loaded snapshot carries
        self._identity: str | None = None

    # -- loading ------------------------------------------------------------------------------

    @staticmethod
    def check_types(gguf: GGUFFile) -> None:
        bad = sorted({t.type_name for t in gguf.tensors if t.type_name not in SUPPORTED_TYPES})
        if bad:
            names = [t.name for t in gguf.tensors if t.type_name in bad][:3]
            raise EngineError(f"{gguf.source}: tensor type(s) {', '.join(bad)} (e.g. {', '.join(names)}) are not "
                              f"supported by the ggml backend (supported: {', '.join(SUPPORTED_TYPES)})")

    def _load_weights(self, path: str | None, loader: Callable[[int, TensorInfo], None] | None) -> None:
        lib, gguf = self.lib, self.gguf
        self.weight_pool = lib.check(lib.eng_pool_new(self.eng, len(gguf.tensors) + 1), "weight pool")
        handles: dict[str, int] = {}
        sources: list[tuple[str, TensorInfo]] = []  # (handle name, the file tensor it is loaded from)
        for t in gguf.tensors:
            shape = list(t.shape) + [1] * (4 - len(t.shape))
            flags = MATMUL_WEIGHT if self.model.is_matmul_weight(t.name) else 0
            handles[t.name] = lib.check(lib.eng_pool_tensor(self.weight_pool, t.ggml_type.id, *shape, flags),
                                        f"tensor {t.name}")
            sources.append((t.name, t))
        tied = self._tied_output_copy()
        if tied is not None:
            shape = list(tied.shape) + [1] * (4 - len(tied.shape))
            handles["output.weight"] = lib.check(
                lib.eng_pool_tensor(self.weight_pool, tied.ggml_type.id, *shape, MATMUL_WEIGHT), "tied output copy")
            sources.append(("output.weight", tied))
        lib.check(lib.eng_pool_alloc(self.weight_pool), "weights allocation")
        for name, t in sources:
            if loader is not None:
                loader(handles[name], t)
            else:
                lib.check(lib.eng_tensor_load_file(handles[name], str(path).encode(), gguf.data_offset + t.offset,
                                                   t.nbytes), f"loading {name}")
        # tensors named without a .weight suffix (Mamba's ssm_a, ssm_d) read as `.ssm_a` like the rest
        self.weights = Weights({n if n.endswith((".weight", ".bias")) else n + ".weight": h
                                for n, h in handles.items()}, self.hp.n_layer)

    def _tied_output_copy(self) -> TensorInfo | None:
        """The embedding table, when it doubles as the output projection and the engine would
        repack it for mat-muls. The output head then gets its own repacked copy, as llama.cpp
        loads it (a tied `output` is a duplicate of `token_embd`): the embedding lookup needs
        the plain layout, and the head's product over the whole vocabulary (the largest weight
        of a small model) is much slower without the repacked kernels. The wasm engine repacks
        what the x86 build repacks (wasm_ext/build_wasm.py), so it makes the same copy."""
        index = self.gguf.tensor_index
        embd = index.get("token_embd.weight")
        if "output.weight" in index or embd is None or len(embd.shape) < 2:
            return None
        shape = list(embd.shape) + [1] * (4 - len(embd.shape))
        repacks = self.lib.check(self.lib.eng_weight_repacks(self.eng, embd.ggml_type.id, *shape), "repack query")
        return embd if repacks else None

    def _recurrent_shape(self, layer: int) -> tuple[int, int] | None:
        """(conv state, scan state) element counts of a recurrent layer, None for attention."""
        fn = getattr(self.model, "recurrent_state", None)
        return fn(layer) if fn is not None else None

    @property
    def is_recurrent(self) -> bool:
        return any(s is not None for s in self.states)

    def _alloc_cache(self) -> None:
        lib, hp = self.lib, self.hp
        self.cache_pool = lib.check(lib.eng_pool_new(self.eng, 2 * hp.n_layer), "cache pool")
        self.caches: list[LayerCache | None] = []
        for i in range(hp.n_layer):
            if self._recurrent_shape(i) is not None:  # recurrent layers keep a fixed-size state instead
                self.caches.append(None)
                continue
            k = lib.check(lib.eng_pool_tensor(self.cache_pool, F16, hp.n_embd_k_gqa, self.kv_size, 1, 1, 0), "K cache")
            v = lib.check(lib.eng_pool_tensor(self.cache_pool, F16, hp.n_embd_v_gqa, self.kv_size, 1, 1, 0), "V cache")
            self.caches.append(LayerCache(k, v, hp.head_dim_k, hp.head_dim_v, hp.n_head_kv,
                                          self.model.attention_window(i)))
        self.has_kv = any(c is not None for c in self.caches)
        if self.has_kv:
            lib.check(lib.eng_pool_alloc(self.cache_pool), "KV cache allocation")
            lib.eng_pool_clear(self.cache_pool)

    def _alloc_states(self) -> None:
        """Recurrent layers' states: F32, sized by the architecture, independent of n_ctx."""
        lib = self.lib
        shapes = [self._recurrent_shape(i) for i in range(self.hp.n_layer)]
        self.state_pool = lib.check(lib.eng_pool_new(self.eng, 2 * self.hp.n_layer), "state pool")
        self.states: list[RecurrentState | None] = []
        for shape in shapes:
            if shape is None:
                self.states.append(None)
                continue
            conv = lib.check(lib.eng_pool_tensor(self.state_pool, F32, shape[0], 1, 1, 1, 0), "conv state")
            ssm = lib.check(lib.eng_pool_tensor(self.state_pool, F32, shape[1], 1, 1, 1, 0), "scan state")
            self.states.append(RecurrentState(conv, ssm))
        if self.is_recurrent:
            lib.check(lib.eng_pool_alloc(self.state_pool), "recurrent state allocation")
            lib.eng_pool_clear(self.state_pool)

    @property
    def weight_bytes(self) -> int:
        return int(self.lib.eng_pool_bytes(self.weight_pool))

    @property
    def cache_bytes(self) -> int:
        return int(self.lib.eng_pool_bytes(self.cache_pool))

    @property
    def state_bytes(self) -> int:
        """Bytes of the recurrent layers' states (constant in the sequence length)."""
        return int(self.lib.eng_pool_bytes(self.state_pool))

    def set_threads(self, n_threads: int) -> None:
        self.lib.check(self.lib.eng_set_threads(self.eng, n_threads), "threads")
        self.n_threads = n_threads

    def close(self) -> None:
        for sg in self.graphs.values():
            sg.free()
        self.graphs.clear()
        self.lib.eng_pool_free(self.cache_pool)
        self.lib.eng_pool_free(self.state_pool)
        if self._logits_pool is not None:
            self.lib.eng_pool_free(self._logits_pool)
        self.lib.eng_pool_free(self.weight_pool)
        self.lib.eng_free(self.eng)

    def set_abort_flag(self, address: int | None) -> None:
        """While the int32 at `address` (in the engine's memory) is non-zero, a prompt's
        computes stop between graph nodes and eval raises Cancelled: a stop that acts inside
        a 512-token chunk. In the browser the pthreads engine's memory is shared, so the
        page sets it while the worker computes. Decode steps are not interrupted."""
        self.abort_flag = int(address or 0)

    def set_abort_function(self, address: int | None) -> None:
        """The same with a C function `int32_t fn(void)` the engine calls between graph nodes
        (non-zero stops): a JS function in the browser's single-threaded engine, whose
        memory the page cannot write."""
        self.abort_fn = int(address or 0)

    # -- state ------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the sequence (KV cells past n_past are masked, so no clearing is needed;
        recurrent states start from zero)."""
        self.n_past = 0
        self.tokens = []
        if self.is_recurrent:
            self.lib.eng_pool_clear(self.state_pool)

    def truncate(self, n: int) -> None:
        """Roll the sequence back to its first n tokens.

        A recurrent state summarises the whole sequence and cannot be rolled back: models with
        recurrent layers accept only n == n_past (no-op) or n == 0 (reset); restore a snapshot
        (save_state/load_state) to return to an earlier point."""
        if not 0 <= n <= self.n_past:
            raise ValueError(f"cannot truncate a sequence of {self.n_past} tokens to {n}")
        if self.is_recurrent and n not in (0, self.n_past):
            raise ValueError(f"cannot truncate a sequence of {self.n_past} tokens to {n}: architecture "
                             f"{self.hp.arch!r} has recurrent layers whose state cannot be rolled back "
                             f"(only 0 or {self.n_past}); restore a snapshot taken at that point instead")
        if n == 0:
            self.reset()
            return
        self.n_past = n
        del self.tokens[n:]

    # -- steps --------------------------------------------------------------------------------------

    def _graph(self, n_tokens: int, n_kv: int, n_outputs: int) -> StepGraph:
        key = (n_tokens, n_kv, n_outputs)
        sg = self.graphs.get(key)
        if sg is not None:
            self.graphs.move_to_end(key)
            return sg
        t0 = time.perf_counter()
        sg = StepGraph(self.lib, self.eng, self.caches, self.kv_size, n_tokens, n_kv, n_outputs,
                       states=self.states)
        sg.finish(self.model.forward(sg, self.weights))
        self.graphs[key] = sg
        while len(self.graphs) > self.max_graphs:
            _, old = self.graphs.popitem(last=False)
            old.free()
        self.stats.graphs_built += 1
        self.stats.build_ms += (time.perf_counter() - t0) * 1e3
        return sg

    def _step(self, tokens: list[int], all_logits: bool) -> StepGraph:
        n = len(tokens)
        if self.n_past + n > self.kv_size:
            raise ContextFull(f"context full: {self.n_past} + {n} tokens exceed the context of {self.kv_size}")
        t0 = time.perf_counter()
        n_kv = min(self.kv_size, max(KV_PAD, _pad(self.n_past + n, KV_PAD))) if self.has_kv else 0
        n_out = n if all_logits else 1
        sg = self._graph(n, n_kv, n_out)
        lib = self.lib
        ids = array.array("i", tokens)
        lib.check(lib.eng_tensor_set(sg.tokens, 0, ids.buffer_info()[0], 4 * n), "tokens")
        if sg.pos is not None:
            lib.eng_fill_arange(sg.pos, self.n_past, n)
        if sg.pos_multi is not None:
            lib.eng_fill_pos_multi(sg.pos_multi, self.n_past, n)
        if sg.kv_idx is not None:
            lib.eng_fill_arange(sg.kv_idx, self.n_past, n)
        if sg.state_ids is not None:
            lib.eng_fill_arange(sg.state_ids, 0, 1)
        for window, mask in sg.masks.items():
            lib.eng_fill_causal_mask(mask, n_kv, n, self.n_past, window)
        lib.eng_fill_arange(sg.out_ids, 0 if all_logits else n - 1, n_out)
        t1 = time.perf_counter()
        rc = lib.eng_graph_compute(sg.g)
        if rc == ENG_ABORTED:
            raise _ComputeAborted()
        lib.check(rc, "compute")
        t2 = time.perf_counter()
        self.n_past += n
        self.tokens.extend(tokens)
        self.last = sg
        self.stats.steps += 1
        self.stats.compute_ms += (t2 - t1) * 1e3
        self.stats.python_ms += (t1 - t0) * 1e3 + (time.perf_counter() - t2) * 1e3
        return sg

    def eval(self, tokens: Iterable[int], all_logits: bool = False,
             on_chunk: Callable[[int], bool | None] | None = None) -> None:
        """Append tokens to the sequence (prefill in chunks of UBATCH).

        on_chunk(n_done) is called after each chunk; returning False stops early."""
        tokens = list(tokens)
        if not tokens:
            return
        armed = bool(self.abort_flag or self.abort_fn) and len(tokens) > 1
        if armed:
            self.lib.check(self.lib.eng_set_abort_flag(self.eng, self.abort_flag or None), "abort flag")
            self.lib.check(self.lib.eng_set_abort_fn(self.eng, self.abort_fn or None), "abort function")
        try:
            for i in range(0, len(tokens), UBATCH):
                try:
                    self._step(tokens[i:i + UBATCH], all_logits)
                except _ComputeAborted:
                    if self.is_recurrent:  # its states were updated in place part of the way
                        self.reset()
                    raise Cancelled(i) from None
                if on_chunk is not None and on_chunk(min(i + UBATCH, len(tokens))) is False:
                    raise Cancelled(min(i + UBATCH, len(tokens)))
        finally:
            if armed:
                self.lib.eng_set_abort_flag(self.eng, None)
                self.lib.eng_set_abort_fn(self.eng, None)

    def argmax(self) -> int:
        """Greedy token from the last step's last logits row (computed in the engine)."""
        assert self.last is not None and self.last.logits is not None
        return self.lib.check(self.lib.eng_argmax(self.last.logits, self.last.n_outputs - 1), "argmax")

    def logits(self, row: int = -1) -> array.array:
        """A copy of one logits row of the last step (as a float array)."""
        assert self.last is not None and self.last.logits is not None
        n_vocab = int(self.lib.eng_tensor_ne(self.last.logits, 0))
        if row < 0:
            row += self.last.n_outputs
        out = array.array("f", bytes(4 * n_vocab))
        self.lib.check(self.lib.eng_tensor_get(self.last.logits, 4 * n_vocab * row, out.buffer_info()[0],
                                               4 * n_vocab), "logits")
        return out

    def logits_tensor(self) -> int:
        assert self.last is not None and self.last.logits is not None
        return self.last.logits


    # -- snapshots ---------------------------------------------------------------------------------
    #
    # A snapshot is the complete state of the sequence: the token history, the KV cells in use
    # (n_past rows of each attention layer's K and V), every recurrent layer's conv and scan
    # states, and the last logits row (so generation continues without re-evaluating anything).
    #
    #   magic "PYLLMSNAP\0" | u32 format version | u32 header length | header (JSON) |
    #   sections, in header order | sha256 of everything before it
    #
    # The header names the architecture and the model identity (a hash of the tensor table and
    # of some weight bytes), n_past, and each section's name and byte size.

    def model_identity(self) -> str:
        """Hash of the architecture, the tensor table and sample weight bytes (norm, embeddings)."""
        if self._identity is None:
            h = hashlib.sha256(self.hp.arch.encode())
            for t in self.gguf.tensors:
                h.update(f"{t.name}|{t.type_name}|{list(t.shape)}|{t.nbytes};".encode())
            for name, limit in (("output_norm.weight", 1 << 16), ("token_embd.weight", 1 << 16)):
                handle = self.weights._t.get(name.rsplit(".", 1)[0])
                if handle is not None and not self.lib.eng_tensor_is_repacked(handle):
                    n = min(limit, int(self.lib.eng_tensor_nbytes(handle)))
                    h.update(self._read(handle, 0, n))
            self._identity = h.hexdigest()
        return self._identity

    def _read(self, t: int, offset: int, n: int) -> bytes:
        buf = ctypes.create_string_buffer(n)
        if n:
            # an address, not the buffer: the pthreads engine's JsLibrary copies by address
            self.lib.check(self.lib.eng_tensor_get(t, offset, ctypes.addressof(buf), n), "snapshot read")
        return buf.raw

    def _write(self, t: int, offset: int, data: bytes | memoryview) -> None:
        if len(data):
            buf = ctypes.create_string_buffer(bytes(data), len(data))
            self.lib.check(self.lib.eng_tensor_set(t, offset, ctypes.addressof(buf), len(data)), "snapshot write")

    def _sections(self, n_past: int) -> list[tuple[str, int, int]]:
        """(name, tensor, bytes) of every state section for a sequence of n_past tokens."""
        out = []
        for i, c in enumerate(self.caches):
            if c is not None:
                out.append((f"kv.{i}.k", c.k, n_past * 2 * c.head_dim_k * c.n_head_kv))
                out.append((f"kv.{i}.v", c.v, n_past * 2 * c.head_dim_v * c.n_head_kv))
        for i, st in enumerate(self.states):
            if st is not None:
                out.append((f"rs.{i}.conv", st.conv, int(self.lib.eng_tensor_nbytes(st.conv))))
                out.append((f"rs.{i}.ssm", st.ssm, int(self.lib.eng_tensor_nbytes(st.ssm))))
        return out

    def save_state(self) -> bytes:
        """The sequence's complete state as bytes (see load_state)."""
        sections = [("tokens", array.array("i", self.tokens).tobytes())]
        sections += [(name, self._read(t, 0, n)) for name, t, n in self._sections(self.n_past)]
        if self.last is not None and self.last.logits is not None:
            sections.append(("logits", self.logits().tobytes()))
        return snapshot.pack(SNAPSHOT_MAGIC, self.hp.arch, self.model_identity(), self.n_past, sections)

    def load_state(self, data: bytes) -> None:
        """Restore a snapshot from save_state() of this same model (any n_ctx that fits it).

        Everything is checked before anything is written: a snapshot of another model, of
        another format version, a truncated or corrupted one raises SnapshotError and leaves
        the runner as it was."""
        snap = snapshot.unpack(data, SNAPSHOT_MAGIC)
        n_past, sections = snap.n_past, snap.sections
        if snap.arch != self.hp.arch or snap.identity != self.model_identity():
            raise SnapshotError(f"snapshot was taken from a different model ({snap.arch!r}, identity "
                                f"{snap.identity[:12]}) than the one loaded ({self.hp.arch!r}, identity "
                                f"{self.model_identity()[:12]})")
        if not 0 <= n_past <= self.kv_size:
            raise SnapshotError(f"snapshot holds {n_past} tokens, more than this runner's context of "
                                f"{self.kv_size}: load the model with a larger n_ctx")
        out = self.gguf.tensor_index.get("output.weight") or self.gguf.tensor_index.get("token_embd.weight")
        n_vocab = out.shape[1] if out is not None else self.hp.n_vocab
        expected = [("tokens", 4 * n_past)] + [(name, n) for name, _, n in self._sections(n_past)]
        has_logits = len(sections) == len(expected) + 1 and sections[-1][0] == "logits"
        if (sections[:len(expected)] != expected or len(sections) > len(expected) + 1
                or (has_logits and sections[-1][1] % 4) or (has_logits and n_past == 0)):
            raise SnapshotError("snapshot sections do not match this model's state layout")
        if has_logits and sections[-1][1] // 4 != n_vocab:
            raise SnapshotError("snapshot logits row does not match this model's vocabulary")
        # -- valid: write everything --------------------------------------------------------------
        parts = snap.parts()
        tokens = array.array("i")
        tokens.frombytes(next(parts)[1])
        for (_, t, _), (_, part) in zip(self._sections(n_past), parts):
            self._write(t, 0, part)
        self.n_past, self.tokens, self.last = n_past, list(tokens), None
        if has_logits:
            self.last = self._restore_logits(next(parts)[1])

    def _restore_logits(self, row: memoryview) -> "_RestoredLogits":
        n = len(row) // 4
        lib = self.lib
        if self._logits_pool is None or int(lib.eng_tensor_ne(self._logits_tensor, 0)) != n:
            if self._logits_pool is not None:
                lib.eng_pool_free(self._logits_pool)
            self._logits_pool = lib.check(lib.eng_pool_new(self.eng, 1), "logits pool")
            self._logits_tensor = lib.check(lib.eng_pool_tensor(self._logits_pool, F32, n, 1, 1, 1, 0), "logits")
            lib.check(lib.eng_pool_alloc(self._logits_pool), "logits allocation")
        self._write(self._logits_tensor, 0, row)
        return _RestoredLogits(self._logits_tensor)


@dataclass
class _RestoredLogits:
    """Stands in for the last step's graph after load_state: one logits row."""
    logits: int
    n_outputs: int = 1


SNAPSHOT_MAGIC = b"PYLLMSNAP\0"


class ContextFull(RuntimeError):
    pass


ENG_ABORTED = -2  # eng_graph_compute: stopped by the abort flag (wasm_ext/engine.h)


class _ComputeAborted(Exception):
    pass


class Cancelled(Exception):
    def __init__(self, n_done: int) -> None:
        super().__init__(f"cancelled after {n_done} prompt tokens")
        self.n_done = n_done
