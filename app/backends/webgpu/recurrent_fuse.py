"""Peephole fusions over a recurrent model's recorded dispatch list (see recurrent.py).

Each fold checks the data flow (the folded dispatch's output has no other reader) and the
exact parameters it replaces, then moves the work into one kernel: conv bias; Qwen 3.5's
decay, sigmoid beta, q/k L2 norms, gated output norm and Q8_0 into the delta rule; Mamba's
D skip and silu(z) gate into the scan; a Q8_0 quantization into the element-wise pass
feeding it; two head norms of one shape into one dispatch; a fourth product of one input
into matvec_multi.
"""
from __future__ import annotations

import struct
from typing import Any

from .graph import Dispatch, Storage, Weight, _cdiv, _grid, share_buffer

NONE, SILU, SIGMOID, SOFTPLUS = 0, 1, 2, 3  # unary op codes (rec_view.wgsl)
GDN_HEAD, GDN_PW = 96, 1024  # gated_delta.wgsl's uniform: 24 words, then p.w (dt bias, A, norm weight)


class _Flow:
    """Who writes and who reads each storage in a dispatch list."""

    def __init__(self, disp: list[Dispatch]) -> None:
        self.producer: dict[int, int] = {}
        self.readers: dict[int, list[int]] = {}
        for i, d in enumerate(disp):
            if d.out is not None:
                self.producer[id(d.out)] = i
            for r in d.res:
                if isinstance(r, Storage) and r is not d.out:
                    lst = self.readers.setdefault(id(r), [])
                    if not lst or lst[-1] != i:
                        lst.append(i)

    def feeds_only(self, st: Any, j: int) -> int:
        """The dispatch that writes `st` when `st` is read by dispatch j alone, else -1."""
        if not isinstance(st, Storage) or st.pinned or self.readers.get(id(st)) != [j]:
            return -1
        return self.producer.get(id(st), -1)


_IDENTITY = (0, 1, 0)  # ne1, nb1, nb2 of a contiguous read (off 0, ne0 = numel)


def _is_identity(v: tuple[int, ...], numel: int) -> bool:
    return v[0] == 0 and v[1] >= numel and (v[2], v[3]) == (1, 0)


def fuse_recurrent(disp: list[Dispatch]) -> list[Dispatch]:
    """Fold neighbours into the Gated DeltaNet and scan dispatches (see the module docstring);
    returns the shorter list."""
    flow = _Flow(disp)
    drop: set[int] = set()

    def unused(i: int) -> bool:
        return i >= 0 and i not in drop

    for j, d in enumerate(disp):
        if j in drop:  # folded into an earlier dispatch
            continue
        if d.kernel == "gated_delta":
            _fuse_gdn(disp, flow, j, d, drop, unused)
        elif d.kernel == "ssm_scan":
            _fuse_scan(disp, flow, j, d, drop, unused)
        elif d.kernel == "ssm_conv":
            _fuse_conv(disp, flow, j, d, drop, unused)
        elif d.kernel == "rec_eltwise":
            _fuse_eltwise_q8(disp, flow, j, d, drop, unused)
    disp = [d for i, d in enumerate(disp) if i not in drop]
    return _pair_norms(disp)


def _pair_norms(disp: list[Dispatch]) -> list[Dispatch]:
    """Two rec_norm dispatches of one row length and kind, the first's output unread before
    the second: one DUAL dispatch at the second's place."""
    flow = _Flow(disp)
    drop: set[int] = set()
    last: dict[tuple, int] = {}
    for j, d in enumerate(disp):
        if d.kernel != "rec_norm" or d.consts["DUAL"]:
            continue
        u = struct.unpack("<8I2f2I8I", d.params)
        key = (tuple(sorted(d.consts.items())), u[4], u[8], u[9])  # consts, D, eps, post
        i = last.pop(key, -1)
        first = disp[i] if i >= 0 else None
        if first is None or i in drop or any(r < j for r in flow.readers.get(id(first.out), [])):
            last[key] = j
            continue
        f = struct.unpack("<8I2f2I8I", first.params)
        d.consts["DUAL"] = True
        d.params = struct.pack("<8I2f2I8I", *f[0:4], f[4], f[5] + u[5], f[6], f[7], f[8], f[9], f[5], 0,
                               *u[0:4], u[6], u[7], 0, 0)
        d.res[4:7] = d.res[0:3]
        d.res[0:3] = first.res[0:3]
        d.grid = _grid(_cdiv(f[5] + u[5], 8))
        drop.add(i)
    return [d for i, d in enumerate(disp) if i not in drop]


def fuse_multi4(disp: list[Dispatch]) -> list[Dispatch]:
    """A three-output matvec_multi and one more plain single-token product of the same input
    (Qwen 3.5's qkv, z, beta | alpha) -> one matvec_multi4."""
    drop: set[int] = set()
    for i, d in enumerate(disp):
        if d.kernel != "matvec_multi" or d.res[7] is None or not isinstance(d.res[7], Storage):
            continue
        u = struct.unpack("<12I", d.params)
        if u[7] == 0:  # fewer than three outputs
            continue
        for j in range(i + 1, len(disp)):
            e = disp[j]
            if e.kernel == "matvec_multi" and e.res[1] is d.res[1]:
                break  # another group of the same input: leave them
            if j in drop or e.kernel != "matvec" or e.res[1] is not d.res[1] or not e.fusable \
                    or e.consts != {"TYPE": d.consts["TYPE"], "TN": 1, "LANES": d.consts["LANES"], "RES": False,
                                    "GLU": 0, "EXACT": d.consts["EXACT"], "FMA_NATIVE": d.consts["FMA_NATIVE"],
                                    "REPACKED": e.consts["REPACKED"], "CHAIN": d.consts["CHAIN"]}:
                continue
            v = struct.unpack("<8I", e.params)
            if v[0] != u[0] or v[7] != 0:
                continue
            n4 = v[1]
            rows = 256 // d.consts["LANES"]
            outs = [d.res[2], d.res[6], d.res[7], e.res[2]]
            if not all(isinstance(o, Storage) and o.sliceable for o in outs):
                continue
            y = share_buffer(outs, "multi4")  # one output binding (WebGPU's 8 storage buffers a stage)
            consts = dict(d.consts, REPACKED=d.consts["REPACKED"] | int(e.consts["REPACKED"]) << 3)  # weight 4's bit
            disp[i] = Dispatch("matvec_multi4", consts,
                               struct.pack("<12I4I", *u[0:9], n4, 0, 0, *(o.word for o in outs)),
                               d.res[0:2] + [y] + d.res[3:6] + [e.res[0]],
                               (_cdiv(u[1] + u[6] + u[7] + n4, rows), 1, 1), y)
            drop.add(j)
            break
    return [d for k, d in enumerate(disp) if k not in drop]


def _fuse_eltwise_q8(disp, flow, j, d, drop, unused) -> None:
    """rec_eltwise -> quantize (Q8_0 for a product): the element-wise pass writes the blocks."""
    rd = flow.readers.get(id(d.out), [])
    if d.out.pinned or not rd or not unused(rd[0]) or disp[rd[0]].kernel != "quantize" \
            or disp[rd[0]].consts.get("SUMS"):  # Q8_1 (Q4_1/Q5_1 products) also needs block sums
        return
    q = disp[rd[0]]
    K, nbk, scales, xs = struct.unpack("<4I", q.params[:16])
    n = struct.unpack("<16I", d.params)[10]
    if q.res[0] is not d.out or xs != K or nbk * 32 != n:
        return
    d.consts["QUANT"] = True
    d.params = d.params[:52] + struct.pack("<3I", scales, 0, 0)
    d.res[4] = q.out
    d.grid = _grid(_cdiv(nbk, 256))
    flow.producer[id(q.out)] = j
    drop.add(rd[0])


def _fuse_conv(disp, flow, j, d, drop, unused) -> None:
    """conv -> add(bias) -> the conv adds the bias (Mamba's conv1d bias)."""
    out = d.out
    rd = flow.readers.get(id(out), [])
    if len(rd) != 1 or out.pinned:
        return
    e = disp[rd[0]]
    if not unused(rd[0]) or e.kernel != "elementwise" or e.consts["OP"] != 0 or e.res[0] is not out:
        return
    n, nb = struct.unpack("<2I", e.params[:8])
    channels = struct.unpack("<8I", d.params)[5]
    if not isinstance(e.res[1], Weight) or nb != channels:
        return
    d.consts["BIAS"] = True
    d.res[6] = e.res[1]
    d.res[3] = d.out = e.out
    flow.producer[id(e.out)] = j
    drop.add(rd[0])


def _host_floats(w: Any, n: int) -> list[float] | None:
    """The n F32 values of a small weight kept on the host (weights.HOST_KEEP), else None."""
    if not isinstance(w, Weight) or w.host is None or len(w.host) != 4 * n:
        return None
    return list(struct.unpack(f"<{n}f", w.host))


def _fuse_gdn(disp, flow, j, d, drop, unused) -> None:
    u = struct.unpack("<20I2f2I", d.params[:GDN_HEAD])
    pw = list(struct.unpack(f"<{GDN_PW}f", d.params[GDN_HEAD:]))  # small weights riding in the uniform
    q8_word, y_word = 0, 0
    vq, vk = u[0:4], u[4:8]
    S, H, Hk, n = u[12:16]
    nb2q, nb2k, nb2v, scales = u[16:20]
    eps, norm_eps = u[20], u[21]
    # decay: softplus(alpha + dt_bias) * A, from an add and a mul -> G_ALPHA
    i2 = flow.feeds_only(d.res[3], j)
    if unused(i2) and disp[i2].kernel == "rec_eltwise" \
            and disp[i2].consts == {"BIN": 2, "UA": SOFTPLUS, "UB": 0, "QUANT": False}:
        e2 = disp[i2]
        p2 = struct.unpack("<16I", e2.params)
        i1 = flow.feeds_only(e2.res[0], i2)
        if unused(i1) and _is_identity(p2[0:4], p2[10]) and p2[8] == 0 and isinstance(e2.res[1], Weight) \
                and p2[11] == H and p2[12] == 1 and disp[i1].kernel == "elementwise" and disp[i1].consts["OP"] == 0:
            e1 = disp[i1]
            n1, nb1 = struct.unpack("<2I", e1.params[:8])
            dtb, a = _host_floats(e1.res[1], H), _host_floats(e2.res[1], H)
            if isinstance(e1.res[0], Storage) and dtb is not None and a is not None and nb1 == H and n1 == H * n \
                    and 2 * H <= GDN_PW:
                d.consts["G_ALPHA"] = True
                d.res[3] = e1.res[0]
                pw[0:2 * H] = dtb + a
                flow.readers.setdefault(id(e1.res[0]), []).append(j)
                drop.update((i1, i2))
    # q, k L2 norms -> L2
    iq, ik = flow.feeds_only(d.res[0], j), flow.feeds_only(d.res[1], j)
    if unused(iq) and unused(ik) and iq != ik and d.consts["UQK"] == 0 \
            and _is_identity(vq, S * Hk * n) and _is_identity(vk, S * Hk * n):
        nq, nk = disp[iq], disp[ik]
        if nq.kernel == nk.kernel == "rec_norm" and not nq.consts["HAS_W"] and not nk.consts["HAS_W"] \
                and nq.consts["UA"] == nk.consts["UA"] and not nq.consts["DUAL"] and not nk.consts["DUAL"]:
            pq = struct.unpack("<8I2f2I8I", nq.params)
            pk = struct.unpack("<8I2f2I8I", nk.params)
            if pq[4] == pk[4] == S and pq[8] == pk[8] and pq[9] == pk[9] and pq[1] % S == 0 and pk[1] % S == 0:
                d.consts["L2"] = True
                d.consts["UQK"] = nq.consts["UA"]
                vq, vk, nb2q, nb2k, eps = pq[0:4], pk[0:4], pq[6], pk[6], pq[8]
                d.res[0], d.res[1] = nq.res[0], nk.res[0]
                for s_ in (nq.res[0], nk.res[0]):
                    flow.readers.setdefault(id(s_), []).append(j)
                drop.update((iq, ik))
    # RMSNorm(o) * w * silu(z) -> GATE, then its Q8_0 quantization -> QUANT
    rd = flow.readers.get(id(d.out), [])
    if len(rd) == 1 and unused(rd[0]) and not d.out.pinned and disp[rd[0]].kernel in ("rms_norm", "rec_norm"):
        inorm = rd[0]
        dn = disp[inorm]
        if dn.kernel == "rms_norm":
            D, rows, neps, wl = struct.unpack("<2If I", dn.params[:16])
            plain = dn.consts == {"HAS_W": True, "QUANT": False}
        else:
            pn = struct.unpack("<8I2f2I8I", dn.params)
            D, wl, neps = pn[4], pn[7], pn[8]
            plain = dn.consts == {"HAS_W": True, "UA": 0, "DUAL": False} and _is_identity(pn[0:4], S * H * n) \
                and pn[6] == 0 and pn[9] == 1.0
        rd2 = flow.readers.get(id(dn.out), [])
        wn = _host_floats(dn.res[1], S) if 2 * H + S <= GDN_PW else None
        if plain and D == S and wl == S and wn is not None and len(rd2) == 1 and unused(rd2[0]) \
                and not dn.out.pinned:
            ie = rd2[0]
            e = disp[ie]
            pe = struct.unpack("<16I", e.params) if e.kernel == "rec_eltwise" else ()
            if e.kernel == "rec_eltwise" and e.consts == {"BIN": 2, "UA": 0, "UB": SILU, "QUANT": False} \
                    and e.res[0] is dn.out \
                    and isinstance(e.res[1], Storage) and _is_identity(pe[0:4], pe[10]) and pe[8] == 0 \
                    and _is_identity(pe[4:8], pe[10]) and pe[9] == 0 and pe[11] == pe[10] == S * H * n:
                d.consts["GATE"] = True
                norm_eps = neps
                pw[2 * H:2 * H + S] = wn
                d.res[9] = e.res[1]
                d.res[6] = d.out = e.out
                flow.producer[id(e.out)] = j
                flow.readers.setdefault(id(e.res[1]), []).append(j)
                drop.update((inorm, ie))
                rq = flow.readers.get(id(e.out), [])
                if S % 32 == 0 and len(rq) == 1 and unused(rq[0]) and not e.out.pinned \
                        and disp[rq[0]].kernel == "quantize" and not disp[rq[0]].consts.get("SUMS"):
                    qd = disp[rq[0]]
                    K, nbk, qscales, xs = struct.unpack("<4I", qd.params[:16])
                    if K == S * H and xs == K and nbk == n * K // 32 and e.out.sliceable and qd.out.sliceable:
                        d.consts["QUANT"] = True
                        scales = qscales
                        # y and the blocks in one binding (8 storage buffers a stage)
                        d.res[6] = d.out = share_buffer([e.out, qd.out], "gdn_out")
                        q8_word, y_word = qd.out.word, e.out.word
                        flow.producer[id(qd.out)] = j
                        drop.add(rq[0])
    d.params = struct.pack("<20I2f2I", *vq, *vk, *u[8:12], S, H, Hk, n, nb2q, nb2k, nb2v, scales, eps, norm_eps,
                           q8_word, y_word) + struct.pack(f"<{GDN_PW}f", *pw)


def _fuse_scan(disp, flow, j, d, drop, unused) -> None:
    """scan -> + D x -> * silu(z): SKIP and GATE (Mamba's y + D x, then swiglu(z, y))."""
    u = struct.unpack("<28I", d.params)
    vx, hd, nh, n = u[0:4], u[17], u[18], u[20]
    numel = hd * nh * n
    rd = flow.readers.get(id(d.out), [])
    if len(rd) != 1 or d.out.pinned or not unused(rd[0]):
        return
    a = disp[rd[0]]  # y + (x * D): an add of the scan output and a mul rec_eltwise
    if a.kernel not in ("elementwise", "rec_eltwise") or (a.kernel == "elementwise" and a.consts["OP"] != 0) \
            or (a.kernel == "rec_eltwise" and a.consts != {"BIN": 1, "UA": 0, "UB": 0, "QUANT": False}):
        return
    other = a.res[1] if a.res[0] is d.out else a.res[0]
    im = flow.feeds_only(other, rd[0])
    if not unused(im) or disp[im].kernel != "rec_eltwise" or disp[im].consts.get("BIN") != 2 \
            or disp[im].consts["UB"] != 0 or not isinstance(disp[im].res[1], Weight):
        return
    m = disp[im]
    pm = struct.unpack("<16I", m.params)
    # the mul must read x exactly as the scan does, and D one value a head
    if m.res[0] is not d.res[0] or tuple(pm[0:4]) != tuple(vx) or pm[8] != u[21] or m.consts["UA"] != d.consts["UX"] \
            or pm[10] != numel or pm[11] != nh or pm[12] != hd:
        return
    d.consts["SKIP"] = True
    d.res[8] = m.res[1]
    d.res[5] = d.out = a.out
    flow.producer[id(a.out)] = j
    drop.update((im, rd[0]))
    # swiglu(z, y): a rec_eltwise mul with UA silu reading z, y as b
    rg = flow.readers.get(id(d.out), [])
    if len(rg) != 1 or d.out.pinned or not unused(rg[0]):
        return
    g = disp[rg[0]]
    if g.kernel != "rec_eltwise" or g.consts != {"BIN": 2, "UA": SILU, "UB": 0, "QUANT": False} \
            or g.res[1] is not d.out:
        return
    pg = struct.unpack("<16I", g.params)
    if not _is_identity(pg[4:8], numel) or pg[9] != 0 or pg[10] != numel or pg[11] != numel or pg[12] != 1:
        return
    d.consts["GATE"] = True
    d.res[9] = g.res[0]
    d.res[5] = d.out = g.out
    flow.producer[id(g.out)] = j
    flow.readers.setdefault(id(g.res[0]), []).append(j)
    drop.add(rg[0])
    d.params = struct.pack("<28I", *u[0:12], *pg[0:4], *u[16:24], pg[8], 0, 0, 0)
