"""The op vocabulary (app/ops.py) on WebGPU: each call records dispatches of shaders/*.wgsl.

A `StepRecorder` records one forward pass for a shape bucket (n_tokens new tokens,
n_outputs logits rows) as a list of dispatches. Tensors are virtual while recording;
`finish()` then gives every intermediate a buffer, reusing buffers whose last reader
has run (so a 512-token prefill does not hold every layer's activations at once), and
makes the bind groups. Per step the runner only writes the step's inputs (token ids
and n_past) and replays the list in one compute pass: the KV length is read from the
step's uniform inside the attention kernel, so a decode recording serves every position.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ...ops import Rope
from .gelu_table import gelu_table_buffer

F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 = 0, 1, 2, 3, 6, 7, 8
BF16_AS_F32 = 30  # BF16 in the file, widened to F32 at upload (products round x to bf16, as ggml)
QUANTIZED = (Q4_0, Q5_0, Q8_0)  # products take Q8_0 activations, as ggml's vec_dot_type
WITH_MIN = (Q4_1, Q5_1)  # products take Q8_1 activations (Q8_0 plus d * sum(q) per block); mat-vec only
Q4_K, Q5_K, Q6_K = 12, 13, 14
K_QUANTS = (Q4_K, Q5_K, Q6_K)  # products take Q8_K activations
MAX_GROUPS = 65535
ATTN_CHUNK = 256  # exact decode attention: a context of up to 256 cells is walked in one chunk,
                  # as ggml's one-chunk f16 path does (attention_split's ONE_CHUNK)
FAST_ATTN_CHUNK = 64  # KV cells per workgroup past that, and in fast mode: ~3x faster on an H100 than 256
ARGMAX_GROUPS = 128  # workgroups of argmax.wgsl's first pass (2048+ logits each)
MATMUL_MIN_TOKENS = 32  # from this many tokens on, quantized products may use the tiled matmul.wgsl


def _grid(n_groups: int) -> tuple[int, int, int]:
    """A 1-d count of workgroups as an (x, y) grid within the per-dimension limit."""
    if n_groups <= MAX_GROUPS:
        return (max(1, n_groups), 1, 1)
    return (MAX_GROUPS, (n_groups + MAX_GROUPS - 1) // MAX_GROUPS, 1)


def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


SLICE_ALIGN = 256  # WebGPU's minStorageBufferOffsetAlignment (the default; adapters may allow less)


class Storage:
    """Bytes an op writes; gets a device buffer in StepRecorder.finish(). A slice lives at
    `offset` in its parent's buffer (see `share_buffer`) and is bound as that range."""
    __slots__ = ("nbytes", "buf", "pinned", "last", "label", "parent", "offset")

    def __init__(self, nbytes: int, label: str = "", pinned: bool = False) -> None:
        self.nbytes, self.label, self.pinned = nbytes, label, pinned
        self.buf: Any = None
        self.last = -1
        self.parent: Storage | None = None
        self.offset = 0  # bytes into the parent's buffer

    @property
    def root(self) -> "Storage":
        return self.parent if self.parent is not None else self

    @property
    def word(self) -> int:
        """Where this storage starts in its root's buffer, in 4-byte words."""
        return self.offset // 4

    @property
    def sliceable(self) -> bool:
        """Not yet given a buffer and not a slice already."""
        return self.buf is None and self.parent is None

    def binding(self) -> Any:
        """What a bind group gets: the buffer, or (parent buffer, offset, size) for a slice."""
        if self.parent is None:
            return self.buf
        return (self.parent.buf, self.offset, self.nbytes)

    def span(self) -> tuple[Any, int, int]:
        """(buffer, byte offset, size) of the bytes, to read them back."""
        return self.root.buf, self.offset, self.nbytes


def share_buffer(parts: list[Storage], label: str = "") -> Storage:
    """Make `parts` (distinct, sliceable) slices of one new storage, each at an offset
    aligned for binding, so one kernel binding reaches them all (a shader stage may bind
    only 8 storage buffers). Returns the parent: kernels bind it whole and add a part's
    `word` to their indices; other kernels bind the parts as ranges."""
    off = 0
    parent = Storage(0, label or "+".join(p.label for p in parts))
    for st in parts:
        if not st.sliceable:
            raise ValueError(f"storage {st.label!r} cannot become a slice (it has a buffer or is one already)")
        st.parent, st.offset = parent, off
        off += (st.nbytes + SLICE_ALIGN - 1) // SLICE_ALIGN * SLICE_ALIGN
    parent.nbytes = off
    parent.pinned = any(st.pinned for st in parts)  # a part kept for reading back keeps the buffer
    return parent


class T:
    """An activation tensor (f32) in ggml's shape order."""
    __slots__ = ("shape", "st")

    def __init__(self, shape: tuple[int, ...], st: Storage) -> None:
        self.shape, self.st = shape, st

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __repr__(self) -> str:
        return f"T{self.shape}"


@dataclass
class Weight:
    """A model tensor on the device (GGUF bytes as they are, BF16 widened to F32)."""
    name: str
    type: int
    shape: tuple[int, ...]
    buf: Any
    host: bytes | None = None  # small F32 tensors are also kept on the host (rope_freqs)
    parts: list | None = None  # larger than one storage binding: [(buffer, first row, rows)]
    repack: bool = True  # ggml repacks it for mat-muls where it can (a tied output head too): exact mode's sum order

    @property
    def n_rows(self) -> int:
        return self.shape[1] if len(self.shape) > 1 else 1


@dataclass
class LayerCache:
    k: Any  # device buffer [kv_size, n_embd_k_gqa] f16
    v: Any
    n_head_kv: int
    head_dim: int


PARAMS = None  # where a dispatch's uniform parameters go in its binding list


@dataclass
class Dispatch:
    kernel: str
    consts: dict
    params: bytes
    res: list  # in binding order: Storage | Weight | device buffer | PARAMS
    grid: tuple[int, int, int]
    out: Storage | None = None  # the storage it writes (None: it writes a cache)
    fusable: bool = True  # False for one part of a split weight's product


class StepRecorder:
    """Implements app.ops.Ops by recording dispatches; `run_list` is what a step replays."""

    def __init__(self, ctx: Any, n_tokens: int, n_outputs: int) -> None:
        self.ctx, self.dev = ctx, ctx.device
        self.n_tokens, self.n_outputs = n_tokens, n_outputs
        self.disp: list[Dispatch] = []
        self.step_buf = self.dev.uniform(struct.pack("<4I", 0, n_tokens, 0, 0), "step")
        self.tokens = self.dev.buffer(4 * n_tokens, "tokens")
        self.out_ids = self.dev.buffer(4 * n_outputs, "out_ids")
        self._q8: dict[int, Storage] = {}
        self.logits: T | None = None
        self.argmax_buf = self.dev.buffer(16 + 8 * ARGMAX_GROUPS, "argmax")  # the id, then argmax.wgsl's partials
        self.dummy = self.dev.buffer(16, "dummy")
        self.fuse = getattr(ctx, "fuse", True)
        self.exact = getattr(ctx, "exact", True)  # reproduce ggml's x86 arithmetic where the kernels can
        self.gelu_tab = gelu_table_buffer(self.dev) if self.exact else None  # ggml's geglu table (None: no engine)
        self.gelu_exact = self.gelu_tab is not None
        self.gelu_tab = self.gelu_tab or self.dummy
        self.run_list: list = []
        self.program: Any = None
        self.n_buffers = 0
        self.act_bytes = 0

    # -- recording helpers ----------------------------------------------------------------------

    def _new(self, shape: tuple[int, ...], label: str = "") -> T:
        n = 1
        for d in shape:
            n *= d
        return T(shape, Storage(4 * n, label))

    def _add(self, kernel: str, consts: dict, params: bytes, res: list, grid, extra=()) -> None:
        """Bindings: res..., the params uniform, extra...; the storage written is res[-1]."""
        out = res[-1] if isinstance(res[-1], Storage) else None
        self.disp.append(Dispatch(kernel, dict(consts), params, list(res) + [PARAMS] + list(extra), grid, out))

    # -- the op vocabulary ------------------------------------------------------------------------

    def token_embeddings(self, table: Weight) -> T:
        d = table.shape[0]
        y = self._new((d, self.n_tokens), "embd")
        tid = F32 if table.type == BF16_AS_F32 else table.type
        for buf, row0, rows in table.parts or [(table, 0, 0xFFFFFFFF)]:
            self._add("get_rows", {"TYPE": tid}, struct.pack("<8I", d, self.n_tokens, 0, 0, row0, row0 + rows, 0, 0),
                      [buf, self.tokens, y.st], _grid(_cdiv(d * self.n_tokens, 256)))
        return y

    def _quantized(self, x: T, sums: bool = False) -> Storage:
        """x as Q8_0 blocks: qs words [n][K/4], scales [n][K/32] at word n*K/4; with `sums`
        (Q8_1) also d * sum(q) [n][K/32] at word n*K/4 + n*K/32."""
        key = ("q81", id(x.st)) if sums else id(x.st)
        q = self._q8.get(key)
        if q is None:
            k, n = x.shape[0], x.numel // x.shape[0]
            nb = n * k // 32
            q = Storage(n * k + 4 * nb * (2 if sums else 1), "q8")
            self._add("quantize", {"SUMS": sums}, struct.pack("<8I", k, nb, n * k // 4, k, n * k // 4 + nb, 0, 0, 0),
                      [x.st, q], _grid(_cdiv(nb, 64)))
            self._q8[key] = q
        return q

    def _quantized_k(self, x: T) -> tuple[Storage, int, int]:
        key = ("k", id(x.st))
        got = self._q8.get(key)
        if got is None:
            k, n = x.shape[0], x.numel // x.shape[0]
            nb = n * k // 256
            d_off, bs_off = n * k // 4, n * k // 4 + nb
            q = Storage(4 * (bs_off + nb * 16), "q8k")
            self._add("quantize_k", {}, struct.pack("<8I", k, nb, d_off, bs_off, k, 0, 0, 0), [x.st, q], _grid(nb))
            got = self._q8[key] = (q, d_off, bs_off)
        return got

    def linear(self, w: Weight, x: T, bias: T | Weight | None = None) -> T:
        k, n_out = w.shape[0], w.n_rows
        if x.shape[0] != k:
            raise ValueError(f"linear {w.name}: input rows {x.shape[0]} != weight rows {k}")
        n = x.numel // k
        y = self._new((n_out, n), w.name)
        bsums = 0
        if w.type in K_QUANTS:
            if k % 256:
                raise ValueError(f"{w.name}: row length {k} is not a multiple of 256")
            xs, scales, bsums = self._quantized_k(x)
            xstride = k // 4
        elif w.type in QUANTIZED or w.type in WITH_MIN:
            if k % 32:
                raise ValueError(f"{w.name}: row length {k} is not a multiple of 32")
            xs, xstride, scales = self._quantized(x, w.type in WITH_MIN), k // 4, n * k // 4
            if w.type in WITH_MIN:
                bsums = scales + n * k // 32  # the sums' word offset rides in the bsums slot
        elif w.type in (F32, F16, BF16_AS_F32):
            xs, xstride, scales = x.st, k, 0
        else:
            raise ValueError(f"{w.name}: type {w.type} has no WebGPU mat-vec kernel")
        parts = w.parts or [(w, 0, n_out)]
        # ggml's x86 sum orders (matvec_lib's row_dots_exact)
        exact = self.exact and (w.type in QUANTIZED or w.type in K_QUANTS)
        # exact Q4_0/Q4_K that ggml repacks: one fma chain an output (Q4_K: two), which the
        # mat-vec's chain_dot(_k) (32 lanes: `chain`) and, for Q4_0, the tiled matmul follow
        repacked = exact and w.type in (Q4_0, Q4_K) and n_out % 8 == 0 and w.repack
        chain = exact and w.type in (Q4_0, Q4_K)
        if (w.type in QUANTIZED or w.type in K_QUANTS) and n >= MATMUL_MIN_TOKENS \
                and (not exact or (w.type == Q4_0 and repacked)) \
                and getattr(self.ctx, "use_matmul", True):
            for buf, row0, rows in parts:
                if _cdiv(rows, 64) > MAX_GROUPS or _cdiv(n, 64) > MAX_GROUPS:
                    raise ValueError(f"{w.name}: {rows} rows x {n} tokens exceed one dispatch")
                self._add("matmul", {"TYPE": w.type, "RES": False, "GLU": 0, "EXACT": exact,
                                     "FMA_NATIVE": self.dev.fused_fma},
                          struct.pack("<8I", k, rows, xstride, scales, n_out, n, bsums, row0),
                          [buf, xs, y.st], (_cdiv(rows, 64), _cdiv(n, 64), 1), extra=[xs, buf, self.gelu_tab])
                self.disp[-1].fusable = w.parts is None
            if bias is not None:
                y = self.add(y, bias)
            return y
        tn = 1 if n == 1 or exact else 8  # exact: one token per workgroup row (8-token blocks lose the fma emulation on lavapipe)
        # threads per row: about two blocks (64 values) each, so long rows get more threads
        lanes = 32
        while lanes < 256 and k // (64 * lanes) >= 2 and tn == 1:
            lanes *= 2
        if exact:
            lanes = 32 if chain else 8  # else one lane per word of a block, as ggml's 8-float accumulators
        per_wg = 256 // lanes
        for buf, row0, rows in parts:
            if _cdiv(rows, per_wg) > MAX_GROUPS or _cdiv(n, tn) > MAX_GROUPS:
                raise ValueError(f"{w.name}: {rows} rows x {n} tokens exceed one dispatch")
            self._add("matvec", {"TYPE": w.type, "TN": tn, "LANES": lanes, "RES": False, "GLU": 0,
                                 "EXACT": exact, "FMA_NATIVE": self.dev.fused_fma, "REPACKED": repacked,
                                 "CHAIN": chain},
                      struct.pack("<8I", k, rows, xstride, scales, n_out, n, bsums, row0),
                      [buf, xs, y.st], (_cdiv(rows, per_wg), _cdiv(n, tn), 1), extra=[xs, buf, self.gelu_tab])
            self.disp[-1].fusable = w.parts is None
        if bias is not None:
            y = self.add(y, bias)
        return y

    def rms_norm(self, x: T, weight: Weight | None, eps: float) -> T:
        d = x.shape[0]
        rows = x.numel // d
        y = self._new(x.shape, "norm")
        wl = weight.shape[0] if weight is not None else d
        self._add("rms_norm", {"HAS_W": weight is not None, "QUANT": False},
                  struct.pack("<2If5I", d, rows, eps, wl, 0, 0, 0, 0),
                  [x.st, weight if weight is not None else x.st, y.st], _grid(rows), extra=[self.dummy])
        return y

    def _eltwise(self, op: int, a: T, b: Any = None, s: float = 0.0) -> T:
        y = self._new(a.shape, "elt")
        if b is None:
            bres, nb = a.st, a.numel
        elif isinstance(b, Weight):
            bres, nb = b, b.shape[0] * b.n_rows
        else:
            bres, nb = b.st, b.numel
        if a.numel % nb:
            raise ValueError(f"cannot broadcast {nb} elements over {a.shape}")
        consts = {"OP": op, "EXACT": self.exact, "FMA_NATIVE": self.dev.fused_fma} if op == 4 else {"OP": op}
        if op == 5:
            consts = {"OP": op, "EXACT": self.gelu_exact}
        self._add("elementwise", consts, struct.pack("<2If I", a.numel, nb, s, 0), [a.st, bres, y.st],
                  _grid(_cdiv(a.numel, 256)), extra=[self.gelu_tab])
        return y

    @staticmethod
    def _numel(t: Any) -> int:
        return t.numel if isinstance(t, T) else t.shape[0] * t.n_rows

    def add(self, a: Any, b: Any) -> T:
        if isinstance(a, Weight) or self._numel(b) > self._numel(a):
            a, b = b, a
        return self._eltwise(0, a, b)

    def mul(self, a: Any, b: Any) -> T:
        if isinstance(a, Weight) or self._numel(b) > self._numel(a):
            a, b = b, a
        return self._eltwise(1, a, b)

    def scale(self, x: T, s: float) -> T:
        return self._eltwise(2, x, None, s)

    def tanh(self, x: T) -> T:
        return self._eltwise(3, x)

    def swiglu(self, gate: T, up: T) -> T:
        return self._eltwise(4, gate, up)

    def geglu(self, gate: T, up: T) -> T:
        return self._eltwise(5, gate, up)

    def heads(self, x: T, head_dim: int) -> T:
        d = x.shape[0]
        return T((head_dim, d // head_dim, x.numel // d), x.st)

    def rope(self, x: T, rope: Rope, freq_factors: Weight | None = None) -> T:
        hd, nh, n = x.shape
        if rope.n_dims > hd or rope.n_dims % 2:
            raise ValueError(f"rope n_dims {rope.n_dims} does not fit head_dim {hd}")
        table = self.ctx.rope_table(rope, freq_factors)
        y = self._new(x.shape, "rope")
        self._add("rope", {"NEOX": rope.neox, "FMA_NATIVE": self.dev.fused_fma}, struct.pack("<4I", hd, nh, n, rope.n_dims), [x.st, table, y.st],
                  _grid(_cdiv(hd // 2 * nh * n, 64)), extra=[self.step_buf])
        return y

    def attention(self, layer: int, q: T, k: T, v: T, scale: float, window: int = 0, softcap: float = 0.0) -> T:
        c = self.ctx.caches[layer]
        hd, nh, n = q.shape
        if hd > 256 or hd % 2:
            raise ValueError(f"head_dim {hd} is not supported by the WebGPU attention kernel (even, <= 256)")
        if k.shape != (c.head_dim, c.n_head_kv, n) or v.shape != k.shape:
            raise ValueError(f"attention layer {layer}: k {k.shape} / v {v.shape} do not match the cache")
        e = c.n_head_kv * c.head_dim
        self._add("kv_store", {}, struct.pack("<4I", e, n, 0, 0), [k.st, v.st, c.k, c.v],
                  _grid(_cdiv(e // 2 * n, 64)), extra=[self.step_buf])
        y = self._new((hd * nh, n), "attn")
        if n < 64:  # decode and short steps: split over the KV length, then merge
            chunk = getattr(self.ctx, "attn_chunk", ATTN_CHUNK)
            n_split = _cdiv(self.ctx.kv_size, chunk)
            part = Storage(4 * n * nh * n_split * (2 + hd), "attn_part")
            exact_attn = getattr(self.ctx, "attn_exact", True)
            one_chunk = ATTN_CHUNK if self.exact and exact_attn and chunk < ATTN_CHUNK else 0
            self._add("attention_split", {"CHUNK": chunk, "EXACT": exact_attn, "ONE_CHUNK": one_chunk,
                                          "FMA_NATIVE": self.dev.fused_fma},
                      struct.pack("<4I2f6I", hd, nh, c.n_head_kv, n, scale, softcap, window, n_split, 0, 0, 0, 0),
                      [q.st, c.k, c.v, part], (nh, n_split, n), extra=[self.step_buf])
            self._add("attention_combine", {"QUANT": False}, struct.pack("<4I", hd, nh, n_split, 0),
                      [part, y.st], (nh, n, 1), extra=[self.dummy])
        elif self.exact and softcap == 0.0:  # ggml's tiled path, reproduced
            self._add("attention_tiled", {"FMA_NATIVE": self.dev.fused_fma},
                      struct.pack("<4I2f6I", hd, nh, c.n_head_kv, n, scale, softcap, window, 0, 0, 0, 0, 0),
                      [q.st, c.k, c.v, y.st], (nh, n, 1), extra=[self.step_buf])
        else:
            self._add("attention", {"Q_F16": False},
                      struct.pack("<4I2f2I", hd, nh, c.n_head_kv, n, scale, softcap, window, 0),
                      [q.st, c.k, c.v, y.st], (nh, n, 1), extra=[self.step_buf])
        return y

    def output_rows(self, x: T) -> T:
        if self.n_outputs == self.n_tokens:
            return x
        d = x.numel // self.n_tokens
        first = self.n_tokens - self.n_outputs
        # which rows: the last ones, unless the runner rewrites them per step (padded prefill)
        self.dev.write(self.out_ids, 0, struct.pack(f"<{self.n_outputs}I", *range(first, self.n_tokens)))
        y = self._new((d, self.n_outputs), "out_rows")
        self._add("get_rows", {"TYPE": F32}, struct.pack("<8I", d, self.n_outputs, 0, 0, 0, 0xFFFFFFFF, 0, 0),
                  [x.st, self.out_ids, y.st],
                  _grid(_cdiv(d * self.n_outputs, 256)))
        return y

    # -- direct inputs (kernel tests, tools) -------------------------------------------------------

    def input(self, shape: tuple[int, ...], data: Any) -> T:
        """A pinned f32 tensor holding `data` (bytes or a float array) now."""
        t = self._new(shape, "input")
        t.st.pinned = True
        t.st.buf = self.dev.buffer(t.st.nbytes, "input")
        self.dev.write(t.st.buf, 0, data)
        return t

    def keep(self, t: T) -> T:
        """Keep `t`'s buffer alive (not reused) so it can be read after a run."""
        t.st.pinned = t.st.root.pinned = True
        return t

    def read(self, t: T) -> bytes:
        return bytes(self.dev.read(*t.st.span()))

    # -- finishing: buffers, bind groups ---------------------------------------------------------

    def finish(self, logits: T) -> None:
        self.logits = logits
        logits.st.pinned = logits.st.root.pinned = True
        vocab = logits.shape[0]
        groups = max(1, min(ARGMAX_GROUPS, _cdiv(vocab, 2048)))
        for partial, grid in ((True, groups), (False, 1)):
            self._add("argmax", {"PARTIAL": partial}, struct.pack("<4I", vocab, vocab * (self.n_outputs - 1), groups, 0),
                      [logits.st, self.argmax_buf], (grid, 1, 1))
        if self.fuse:
            self._fuse()
        self._lower()
        # liveness: last dispatch that touches each storage (a slice keeps its parent alive)
        for i, d in enumerate(self.disp):
            for r in d.res:
                if isinstance(r, Storage):
                    r.root.last = i
        free: dict[int, list] = {}
        for i, d in enumerate(self.disp):
            for r in d.res:
                if isinstance(r, Storage) and r.root.buf is None:
                    r = r.root
                    pool = free.get(r.nbytes)
                    if pool:
                        r.buf = pool.pop()
                    else:
                        r.buf = self.dev.buffer(r.nbytes, r.label)
                        self.n_buffers += 1
                        self.act_bytes += r.nbytes
            for r in d.res:
                if isinstance(r, Storage) and r.root.last == i and not r.root.pinned:
                    free.setdefault(r.root.nbytes, []).append(r.root.buf)
                    r.root.last = -2  # released once
        kern = self.ctx.kernels
        run = []
        for d in self.disp:
            pipe = kern.get(d.kernel, **d.consts)
            res = []
            for r in d.res:
                if r is PARAMS:
                    res.append(self.dev.uniform(d.params, d.kernel))
                else:
                    res.append(r.binding() if isinstance(r, Storage) else r.buf if isinstance(r, Weight) else r)
            run.append((pipe, self.dev.bind(pipe, res), d.grid))
        self.run_list = run
        self.program = self.dev.program(run)  # what the device replays (the browser keeps it on the JS side)

    def _lower(self) -> None:
        """After the fusions: replace a recorded dispatch by the kernels that compute it for
        this step's shape (recurrent.py: the chunked delta rule); none here."""

    def _fuse(self) -> None:
        """Peephole fusions over the recorded list, where the data flow allows them:
        rms_norm -> quantize; matvec -> add (residual); matvec(gate), matvec(up) -> glu."""
        disp = self.disp
        producer: dict[int, int] = {}
        readers: dict[int, list[int]] = {}

        def index() -> None:
            producer.clear()
            readers.clear()
            for i, d in enumerate(disp):
                if d.out is not None:
                    producer[id(d.out)] = i
                for r in d.res:
                    if isinstance(r, Storage) and r is not d.out:
                        lst = readers.setdefault(id(r), [])
                        if not lst or lst[-1] != i:
                            lst.append(i)

        def only_reader(st: Storage, j: int) -> bool:
            return not st.pinned and readers.get(id(st)) == [j]

        index()
        drop: set[int] = set()
        for j, d in enumerate(disp):
            if d.kernel == "quantize" and not d.consts["SUMS"]:
                i = producer.get(id(d.res[0]), -1)
                k, nb, scales, _ = struct.unpack("<4I", d.params[:16])
                if i >= 0 and disp[i].kernel == "rms_norm" and not disp[i].consts["QUANT"]:
                    dn = disp[i]
                    if struct.unpack("<2I", dn.params[:8])[0] == k:
                        dn.consts["QUANT"] = True
                        dn.params = dn.params[:16] + struct.pack("<4I", scales, 0, 0, 0)
                        dn.res[-1] = d.out  # the Q binding
                        producer[id(d.out)] = i
                        drop.add(j)
                elif i >= 0 and disp[i].kernel == "attention_combine" and not disp[i].consts["QUANT"]:
                    dn = disp[i]
                    hd, nh = struct.unpack("<2I", dn.params[:8])
                    if hd * nh == k and hd % 32 == 0:
                        dn.consts["QUANT"] = True
                        dn.params = dn.params[:12] + struct.pack("<I", scales)
                        dn.res[-1] = d.out
                        producer[id(d.out)] = i
                        drop.add(j)
            elif d.kernel == "elementwise" and d.consts["OP"] in (0, 4, 5):
                a, b = d.res[0], d.res[1]
                n, nb = struct.unpack("<2I", d.params[:8])
                if n != nb or not isinstance(a, Storage) or not isinstance(b, Storage):
                    continue
                if d.consts["OP"] == 0:  # residual add into the product that feeds it
                    for s_, other in ((a, b), (b, a)):
                        i = producer.get(id(s_), -1)
                        if i < 0 or i in drop or disp[i].kernel not in ("matvec", "matmul") or not disp[i].fusable \
                                or disp[i].consts["RES"] \
                                or disp[i].consts["GLU"] or not only_reader(s_, j):
                            continue
                        if producer.get(id(other), -1) >= i:
                            continue
                        m = disp[i]
                        m.consts["RES"] = True
                        m.res[2] = m.out = d.out
                        m.res[4] = other
                        producer[id(d.out)] = i
                        readers.setdefault(id(other), []).append(i)
                        drop.add(j)
                        break
                else:  # act(gate) * up from two products of the same input
                    i1, i2 = producer.get(id(a), -1), producer.get(id(b), -1)
                    if min(i1, i2) < 0 or i1 in drop or i2 in drop:
                        continue
                    g, u = disp[i1], disp[i2]
                    if g.kernel not in ("matvec", "matmul") or u.kernel != g.kernel or g.consts != u.consts \
                            or not (g.fusable and u.fusable) \
                            or g.consts["RES"] or g.consts["GLU"] or g.res[1] is not u.res[1] \
                            or g.params != u.params or g.res[0].type != u.res[0].type:
                        continue
                    if not (only_reader(a, j) and only_reader(b, j)):
                        continue
                    if d.consts["OP"] == 5 and g.consts.get("EXACT") and not self.gelu_exact:
                        continue  # exact products read gelu from ggml's table, which needs the engine
                    g.consts["GLU"] = 1 if d.consts["OP"] == 4 else 2
                    g.res[2] = g.out = d.out
                    g.res[5] = u.res[0]
                    producer[id(d.out)] = i1
                    drop.update((i2, j))
            elif d.kernel == "kv_store":  # rope(q), rope(k), kv_store -> rope_store
                self._fuse_rope_store(j, d, producer, only_reader, drop)
        if drop:
            self.disp = [d for i, d in enumerate(disp) if i not in drop]
        self._fuse_multi()

    def _fuse_multi(self) -> None:
        """Up to three plain single-token products of one input (q, k, v) -> matvec_multi."""
        disp = self.disp
        groups: dict[tuple, list[int]] = {}
        members: dict[int, list[int]] = {}
        for i, d in enumerate(disp):
            if d.kernel != "matvec" or d.consts["TN"] != 1 or d.consts["RES"] or d.consts["GLU"] or not d.fusable \
                    or struct.unpack("<I", d.params[20:24])[0] != 1:  # one token (exact products use TN 1 for more)
                continue
            k = struct.unpack("<I", d.params[:4])[0]
            key = (id(d.res[1]), d.consts["TYPE"], d.consts["LANES"], d.consts["CHAIN"], k)
            g = groups.get(key)
            if g is None or len(g) == 3:
                g = groups[key] = [i]
                members[i] = g
            else:
                g.append(i)
        drop: set[int] = set()
        for first, g in members.items():
            if len(g) < 2:
                continue
            ds = [disp[i] for i in g]
            ns = [struct.unpack("<2I", d.params[:8])[1] for d in ds] + [0]
            d0 = ds[0]
            k, _, xstride, scales = struct.unpack("<4I", d0.params[:16])
            bsums = struct.unpack("<I", d0.params[24:28])[0]
            w3 = ds[2].res[0] if len(ds) == 3 else d0.res[0]
            y3 = ds[2].res[2] if len(ds) == 3 else self.dummy
            rows = 256 // d0.consts["LANES"]
            disp[first] = Dispatch("matvec_multi", {"TYPE": d0.consts["TYPE"], "LANES": d0.consts["LANES"],
                                                    "EXACT": d0.consts["EXACT"], "FMA_NATIVE": d0.consts["FMA_NATIVE"],
                                                    "CHAIN": d0.consts["CHAIN"],
                                                    "REPACKED": sum(int(d.consts["REPACKED"]) << i for i, d in enumerate(ds))},
                                   struct.pack("<12I", k, ns[0], xstride, scales, ns[0], 1, ns[1], ns[2], bsums, 0, 0, 0),
                                   [d0.res[0], d0.res[1], d0.res[2], PARAMS, ds[1].res[0], w3, ds[1].res[2], y3],
                                   (_cdiv(sum(ns), rows), 1, 1), d0.out)
            drop.update(g[1:])
        if drop:
            self.disp = [d for i, d in enumerate(disp) if i not in drop]

    def _fuse_rope_store(self, j: int, d: Dispatch, producer: dict, only_reader, drop: set) -> None:
        disp = self.disp
        kst, vst, kc, vc = d.res[:4]
        a = next((i for i in range(j + 1, len(disp)) if disp[i].kernel in ("attention", "attention_split")
                  and disp[i].res[1] is kc), -1)
        if a < 0:
            return
        ik, iq = producer.get(id(kst), -1), producer.get(id(disp[a].res[0]), -1)
        if min(ik, iq) < 0 or ik in drop or iq in drop:
            return
        rk, rq = disp[ik], disp[iq]
        if rk.kernel != "rope" or rq.kernel != "rope" or rk.consts != rq.consts or rk.res[1] is not rq.res[1]:
            return
        if not (only_reader(rk.out, j) and only_reader(rq.out, a)):
            return
        hd, nh, n, n_dims = struct.unpack("<4I", rq.params)
        hd_k, nkv, _, n_dims_k = struct.unpack("<4I", rk.params)
        if hd_k != hd or n_dims_k != n_dims:
            return
        fused = Dispatch("rope_store", dict(rq.consts), struct.pack("<8I", hd, nh, nkv, n, n_dims, 0, 0, 0),
                         [rq.res[0], rk.res[0], vst, rq.res[1], rq.out, kc, vc, PARAMS, self.step_buf],
                         _grid(_cdiv(hd // 2 * (nh + nkv) * n, 64)), rq.out)
        disp[j] = fused
        producer[id(rq.out)] = j
        drop.update((ik, iq))

    @property
    def n_dispatches(self) -> int:
        return len(self.run_list)
