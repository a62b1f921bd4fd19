"""WebGPU speed: decode and prefill tok/s of a random Llama-3.2-1B-shaped model (Q4_0 by
default), dispatches per token, achieved GB/s, and where the decode time goes.

    python3 bench/bench_webgpu.py [--shape llama1b|half|tiny|qwen35-0.8b|qwen35-tiny|mamba-790m|...]
                                  [--type Q4_0] [--prompt 512] [--decode 128] [--json OUT.json]
                                  [--check CHECK.npz] [--make-check CHECK.npz --check-arch qwen35]
                                  [--gdn auto|chunked|sequential] [--no-f16]

The model is generated on first use (tools/testmodels.py, cached under $PYLLM_CACHE):
llama1b is 16 layers, n_embd 2048, 32/8 heads of 64, n_ff 8192, vocab 128256, tied
output and rope_freqs like Llama 3.2 1B. Runs on whatever adapter wgpu-py picks
(high-performance): an NVIDIA GPU through its Vulkan driver, or lavapipe on a CPU.

Decode is measured two ways: `sync` reads each token back before feeding it (eval +
argmax per token), `pipelined` feeds the GPU's own argmax to the next step and reads all
ids at the end (runner.generate_greedy), so encoding step t+1 overlaps step t on the GPU.
GB/s counts the bytes a decode step must read: every mat-vec weight, one embedding row
and the visible KV cache (recurrent models: the attention layers' cache, and each recurrent
layer's conv and scan state, read and written). Recurrent models cannot truncate their
state, so the decode variants restart from a snapshot (save_state/load_state). `--check` (a file from `--make-check`, which needs the ggml
engine) compares the adapter's forced-decoding top-1 and logits with ggml's. For qwen35
shapes the prefill is also timed with the other Gated DeltaNet path (`prefill_other_gdn`:
chunked gdn_chunk_*.wgsl vs token-by-token gated_delta.wgsl, each with its delta-rule
dispatches' time from the kernel profile and the cosine of their last logits rows).
"""
from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.backends.webgpu import WebGPURunner, WgpuDevice  # noqa: E402
from app.gguf import read_gguf  # noqa: E402
from app.models import model_for  # noqa: E402


def shapes():
    from tools.testmodels import LLAMA_HALF_B, MAMBA_790M, QWEN35_0_8B, TINY, TINY_RECURRENT, Shape
    return {
        "qwen35-0.8b": QWEN35_0_8B,  # Qwen3.5-0.8B's shapes: 18 Gated DeltaNet + 6 gated attention layers
        "qwen35-tiny": TINY_RECURRENT["qwen35"],
        "mamba-790m": MAMBA_790M,
        "mamba-tiny": TINY_RECURRENT["mamba"],
        "mamba2-tiny": TINY_RECURRENT["mamba2"],
        "llama1b": Shape("llama", n_vocab=128256, n_embd=2048, n_layer=16, n_head=32, n_head_kv=8, head_dim=64,
                         n_ff=8192, tied_output=True, rope_freqs=True),
        "half": LLAMA_HALF_B,
        "tiny": TINY["llama"],
        "tiny-wide": replace(TINY["llama"], n_embd=512, n_ff=1536),
    }


def sync(r: WebGPURunner) -> None:
    r.argmax()  # a 4-byte read waits for the queue


def decode_bytes(r: WebGPURunner, n_kv: int) -> int:
    """Bytes one decode step must read: mat-vec weights, an embedding row, the KV cache
    (and the recurrent layers' states, read and written)."""
    g, hp = r.gguf, r.hp
    total = 0
    for t in g.tensors:
        if r.model.is_matmul_weight(t.name):
            total += t.nbytes
    embd = g.tensor_index["token_embd.weight"]
    if "output.weight" not in g.tensor_index:
        total += embd.nbytes  # tied: the output product reads the whole table
    total += embd.nbytes // embd.shape[1]
    total += 2 * 2 * hp.n_embd_k_gqa * n_kv * sum(c is not None for c in r.caches)
    total += 2 * sum(s.conv_bytes + s.ssm_bytes for s in getattr(r, "states", []) if s is not None)
    return total


class Rewind:
    """Go back to this point of the sequence: truncate, or a snapshot for a recurrent model."""

    def __init__(self, r: WebGPURunner) -> None:
        self.r, self.n = r, r.n_past
        self.snap = r.save_state() if getattr(r, "is_recurrent", False) else None

    def __call__(self) -> None:
        if self.snap is not None:
            self.r.load_state(self.snap)
        else:
            self.r.truncate(self.n)


def kernel_profile(r: WebGPURunner, reps: int = 20, n_tokens: int = 1) -> dict:
    """Time of each kernel variant of a step's list, replayed alone (CPU encode + GPU)."""
    rec = r.recorder(n_tokens, 1)
    groups: dict[str, list] = {}
    for d, item in zip(rec.disp, rec.run_list):
        key = d.kernel + "".join(f" {k}={int(v)}" for k, v in sorted(d.consts.items()) if v not in (0, False))
        groups.setdefault(key, []).append(item)
    out = {}
    for key, items in groups.items():
        r.device.run(items)
        sync(r)
        t0 = time.perf_counter()
        for _ in range(reps):
            r.device.run(items)
        r.device.sync()
        ms = (time.perf_counter() - t0) / reps * 1e3
        out[key] = {"dispatches": len(items), "ms_per_token": round(ms, 4)}
    return out


def make_check(path: Path, arch: str = "llama", type_name: str = "Q4_0", n: int = 128, prefill: int = 0) -> None:
    # (--check-arch qwen35 / mamba / mamba2 checks a tiny recurrent model)
    """Reference from the ggml engine: tokens, top-1 and logits of forced decoding; with
    `prefill`, the first that many tokens are one step (ggml's prefill kernels: tiled
    attention, gemm orders), and the file says so (the check then does the same)."""
    import numpy as np
    from app.backends.ggml.runner import GGMLRunner
    from tools.testmodels import tiny
    model_file = tiny(arch, type_name)
    m = model_for(read_gguf(str(model_file)))
    g = GGMLRunner(m, model_file, n_ctx=256)
    toks = np.random.default_rng(7).integers(3, m.hp.n_vocab, n)
    logits = []
    if prefill:
        g.eval(toks[:prefill].tolist(), all_logits=True)
        logits = [np.asarray(g.logits(i)) for i in range(prefill)]
    for t in toks[prefill:].tolist():
        g.eval([t])
        logits.append(np.asarray(g.logits()))
    np.savez_compressed(path, tokens=toks, logits=np.stack(logits), model=np.frombuffer(model_file.read_bytes(), np.uint8),
                        prefill=np.array(prefill))


def run_check(path: Path, device, prefill: int = 0) -> dict:
    """Forced decoding against the reference file, in the runner's exact and fast modes;
    `prefill` > 0: the first that many tokens as one prefill step (all logits rows), which
    takes the chunked Gated DeltaNet kernels in fast mode when it is over 32 tokens."""
    return {mode: _check_mode(path, device, mode == "exact", prefill) for mode in ("exact", "fast")}


def _check_mode(path: Path, device, exact: bool, prefill: int = 0) -> dict:
    import numpy as np
    import tempfile
    ref = np.load(path)
    if "prefill" in ref and int(ref["prefill"]):
        prefill = int(ref["prefill"])  # the reference's own first step
    with tempfile.NamedTemporaryFile(suffix=".gguf", delete=False) as f:
        f.write(ref["model"].tobytes())
    m = model_for(read_gguf(f.name))
    r = WebGPURunner(m, f.name, n_ctx=256, device=device, exact=exact)
    agree, coss, diff = 0, [], 0.0
    tokens = ref["tokens"].tolist()
    if prefill:
        r.eval(tokens[:prefill], all_logits=True)
    for i, t in enumerate(tokens):
        if i >= prefill:
            r.eval([t])
        a, b = ref["logits"][i], np.asarray(r.logits(i if i < prefill else -1))
        coss.append(float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)))
        diff = max(diff, float(np.abs(a - b).max()))
        agree += int(a.argmax()) == (int(b.argmax()) if i < prefill else r.argmax())
    return {"positions": len(coss), "top1_agreement": agree / len(coss), "min_cos": min(coss),
            "max_abs_logit_diff": diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="llama1b")
    ap.add_argument("--type", default="Q4_0")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--check")
    ap.add_argument("--make-check")
    ap.add_argument("--check-arch", default="llama", help="architecture of the --make-check model")
    ap.add_argument("--check-prefill", type=int, default=0,
                    help="--check: evaluate the first N tokens as one prefill (e.g. 70: qwen35's chunked "
                         "delta rule in fast mode), the rest one at a time; --make-check: a reference made so "
                         "(which --check then follows)")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--micro", action="store_true", help="time single kernels first")
    ap.add_argument("--micro-reps", type=int, default=200)
    ap.add_argument("--no-matmul", action="store_true", help="prefill with the 8-token mat-vec, not matmul.wgsl")
    ap.add_argument("--gdn", choices=("auto", "chunked", "sequential"), default="auto",
                    help="Gated DeltaNet prefill (qwen35): the chunked kernels (gdn_chunk_*.wgsl, the fast mode's "
                         "default) or the token-by-token gated_delta.wgsl (exact mode's); the other one is timed too")
    ap.add_argument("--exact", action="store_true",
                    help="time the runner's exact mode (ggml's x86 arithmetic, the default for agreement) "
                         "instead of the fast kernels")
    ap.add_argument("--no-f16", action="store_true",
                    help="do not request shader-f16 (the kernels read f16 data as packed u32 words), to compare "
                         "with the native f16 reads used when the adapter has it")
    args = ap.parse_args()
    if args.make_check:
        make_check(Path(args.make_check), args.check_arch, prefill=args.check_prefill)
        print("wrote", args.make_check)
        return

    res: dict = {}
    dev = WgpuDevice(f16=not args.no_f16)
    res["device"] = dev.name
    res["f16"] = dev.has_f16
    res["limits"] = {k: dev.limits[k] for k in ("max-storage-buffer-binding-size", "max-buffer-size")}
    print("device:", dev.name, "(shader-f16)" if dev.has_f16 else "(no shader-f16)", flush=True)
    if args.micro:
        res["micro"] = micro(dev, args.micro_reps)
        for k, v in res["micro"].items():
            print(f"  {k}: {v}", flush=True)
    if args.check:
        res["check"] = run_check(Path(args.check), dev, args.check_prefill)
        print("check vs ggml:", res["check"], flush=True)

    from tools.testmodels import model_path
    t0 = time.perf_counter()
    path = model_path(shapes()[args.shape], args.type)
    res["generate_s"] = round(time.perf_counter() - t0, 1)
    m = model_for(read_gguf(str(path)))
    t0 = time.perf_counter()
    r = WebGPURunner(m, path, n_ctx=args.prompt + args.decode + 16, device=dev, exact=args.exact)
    r.use_matmul = not args.no_matmul
    if args.gdn != "auto":
        r.gdn_chunked = args.gdn == "chunked"
    res["load_s"] = round(time.perf_counter() - t0, 2)
    res["model"] = {"shape": args.shape, "type": args.type, "weight_bytes": r.weight_bytes,
                    "file_bytes": path.stat().st_size}
    print(f"model {path.name}: {r.weight_bytes / 1e6:.0f} MB of weights, generated in {res['generate_s']} s, "
          f"loaded in {res['load_s']} s", flush=True)

    prompt = [1] + [(i * 7919) % (m.hp.n_vocab - 3) + 3 for i in range(args.prompt - 1)]
    # first runs record the buckets
    t0 = time.perf_counter()
    r.eval(prompt)
    sync(r)
    res["prefill_first_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    r.eval([r.argmax()])
    sync(r)
    res["decode_first_s"] = round(time.perf_counter() - t0, 3)
    res["record_ms_total"] = round(r.stats["record_ms"], 1)

    times = []
    for _ in range(args.reps):
        r.reset()
        t0 = time.perf_counter()
        r.eval(prompt)
        sync(r)
        times.append(time.perf_counter() - t0)
    res["prefill"] = {"tokens": args.prompt, "best_s": round(min(times), 4),
                      "tok_s": round(args.prompt / min(times), 1),
                      "tok_s_median": round(args.prompt / statistics.median(times), 1),
                      "dispatches": r.last.n_dispatches}
    if getattr(m, "arch", "") == "qwen35":
        res["prefill"]["gdn_chunked"] = r.gdn_chunked
    print("prefill:", res["prefill"], flush=True)
    if getattr(m, "arch", "") == "qwen35":  # the other Gated DeltaNet prefill path (recorded afresh)
        res["prefill_other_gdn"] = prefill_other_gdn(r, prompt, args.reps)
        print("prefill with the other Gated DeltaNet kernel:", res["prefill_other_gdn"], flush=True)
    # the other prefill kernel, for comparison (recorded afresh)
    r.use_matmul = not r.use_matmul
    r.buckets.clear()
    r.reset()
    r.eval(prompt)
    sync(r)
    times2 = []
    for _ in range(args.reps):
        r.reset()
        t0 = time.perf_counter()
        r.eval(prompt)
        sync(r)
        times2.append(time.perf_counter() - t0)
    res["prefill_other_kernel"] = {"use_matmul": r.use_matmul, "tok_s": round(args.prompt / min(times2), 1)}
    print("prefill with the other product kernel:", res["prefill_other_kernel"], flush=True)
    r.use_matmul = not r.use_matmul
    r.buckets.clear()
    r.reset()
    r.eval(prompt)
    sync(r)

    # decode, a round trip per token
    r.eval([r.argmax()])
    sync(r)
    n_kv0 = r.n_past
    rewind = Rewind(r)
    t0 = time.perf_counter()
    toks = []
    for _ in range(args.decode):
        t = r.argmax()
        toks.append(t)
        r.eval([t])
    sync(r)
    dt = time.perf_counter() - t0
    n_kv_mid = n_kv0 + args.decode // 2
    nbytes = decode_bytes(r, n_kv_mid)
    res["decode_sync"] = {"tokens": args.decode, "tok_s": round(args.decode / dt, 1),
                          "ms_per_token": round(dt / args.decode * 1e3, 3),
                          "dispatches_per_token": r.last.n_dispatches,
                          "bytes_per_token": nbytes, "GB_s": round(nbytes * args.decode / dt / 1e9, 1)}
    print("decode (sync):", res["decode_sync"], flush=True)

    # decode, a round trip per token, each step in 4 submits (the GPU starts on the first
    # while Python encodes the rest)
    rewind()
    r.submit_chunks = 4
    t0 = time.perf_counter()
    toks4 = []
    t = toks[0]
    for _ in range(args.decode):
        toks4.append(t)
        r.eval([t])
        t = r.argmax()
    dt = time.perf_counter() - t0
    r.submit_chunks = 1
    res["decode_sync_4_submits"] = {"tok_s": round(args.decode / dt, 1), "ms_per_token": round(dt / args.decode * 1e3, 3),
                                    "same_tokens_as_sync": toks4 == toks}
    print("decode (sync, 4 submits a step):", res["decode_sync_4_submits"], flush=True)

    # decode, pipelined (GPU-fed greedy tokens)
    rewind()
    r.eval([toks[0]])
    sync(r)
    t0 = time.perf_counter()
    gen = r.generate_greedy(args.decode - 1)
    dt = time.perf_counter() - t0
    res["decode_pipelined"] = {"tokens": args.decode - 1, "tok_s": round((args.decode - 1) / dt, 1),
                               "ms_per_token": round(dt / (args.decode - 1) * 1e3, 3),
                               "GB_s": round(nbytes * (args.decode - 1) / dt / 1e9, 1),
                               "same_tokens_as_sync": gen[:len(toks) - 2] == toks[2:]}
    print("decode (pipelined):", res["decode_pipelined"], flush=True)

    # decode with the other attention split (64 cells a workgroup: ~3x faster attention on an
    # H100; 256: ggml's one-chunk f16 walk, which exact mode takes)
    chunk = r.attn_chunk
    r.attn_chunk = other = 256 if chunk == 64 else 64
    r.buckets.clear()
    rewind()
    r.eval([toks[0]])
    sync(r)
    t0 = time.perf_counter()
    gen64 = r.generate_greedy(args.decode - 1)
    dt = time.perf_counter() - t0
    rewind()
    t0 = time.perf_counter()
    t = toks[0]
    for _ in range(args.decode):
        r.eval([t])
        t = r.argmax()
    dts = time.perf_counter() - t0
    res["decode_other_attn_chunk"] = {"attn_chunk": other, "pipelined_tok_s": round((args.decode - 1) / dt, 1),
                                      "sync_tok_s": round(args.decode / dts, 1),
                                      "same_tokens": gen64 == gen}
    print(f"decode with attn_chunk={other} (default {chunk}):", res["decode_other_attn_chunk"], flush=True)
    r.attn_chunk = chunk
    r.buckets.clear()
    rewind()
    r.eval([toks[0]])
    sync(r)

    # CPU cost of encoding one decode step (no waiting)
    rec = r.recorder(1, 1)
    sync(r)
    t0 = time.perf_counter()
    for _ in range(20):
        r.device.run(rec.run_list)
    enc = (time.perf_counter() - t0) / 20
    r.device.sync()
    res["encode_ms_per_token"] = round(enc * 1e3, 3)
    res["encode_us_per_dispatch"] = round(enc / len(rec.run_list) * 1e6, 2)
    print(f"encode: {res['encode_ms_per_token']} ms per decode step, {res['encode_us_per_dispatch']} us per dispatch",
          flush=True)
    if not args.no_profile:
        res["decode_profile"] = kernel_profile(r)
        print("decode step, by kernel:")
        for k, v in sorted(res["decode_profile"].items(), key=lambda kv: -kv[1]["ms_per_token"]):
            print(f"  {v['ms_per_token']:8.3f} ms  {v['dispatches']:4d} x  {k}")
        r.reset()
        res["prefill_profile"] = kernel_profile(r, reps=3, n_tokens=args.prompt)
        print(f"prefill step ({args.prompt} tokens), by kernel:")
        for k, v in sorted(res["prefill_profile"].items(), key=lambda kv: -kv[1]["ms_per_token"]):
            print(f"  {v['ms_per_token']:8.3f} ms  {v['dispatches']:4d} x  {k}")
    res["targets"] = {"decode_tok_s": 250, "prefill_tok_s": 3000}
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    print(json.dumps({k: res[k] for k in ("device", "prefill", "prefill_other_gdn", "decode_sync",
                                          "decode_sync_4_submits", "decode_pipelined", "decode_other_attn_chunk")
                      if k in res}))



def prefill_other_gdn(r: WebGPURunner, prompt: list[int], reps: int) -> dict:
    """Prefill tok/s with the other delta-rule path (chunked <-> sequential), the time of its
    delta-rule dispatches alone, and the first logits row's cosine against the default path's."""
    import math
    out = {}
    rows = {}
    for flip in (True, False):
        if flip:
            r.gdn_chunked = not r.gdn_chunked
        r.buckets.clear()
        r.reset()
        r.eval(prompt)
        sync(r)
        rows[r.gdn_chunked] = list(r.logits())
        times = []
        for _ in range(reps):
            r.reset()
            t0 = time.perf_counter()
            r.eval(prompt)
            sync(r)
            times.append(time.perf_counter() - t0)
        prof = kernel_profile(r, reps=3, n_tokens=len(prompt))
        gdn_ms = sum(v["ms_per_token"] for k, v in prof.items()
                     if k.startswith(("gated_delta", "gdn_chunk_")))
        out["chunked" if r.gdn_chunked else "sequential"] = {
            "tok_s": round(len(prompt) / min(times), 1), "delta_rule_ms": round(gdn_ms, 3),
            "dispatches": r.last.n_dispatches}
        if flip:
            r.gdn_chunked = not r.gdn_chunked
    a, b = rows[True], rows[False]
    out["logits_cos_chunked_vs_sequential"] = round(
        sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b)), 7)
    r.buckets.clear()
    r.reset()
    return out


def micro(dev, reps: int = 200) -> dict:
    """Kernels alone, `reps` dispatches in one pass: attention_split variants at 640 cells
    (Llama-1B heads) and Q4_0 mat-vecs of the 1B's shapes, GPU time per dispatch."""
    import array
    import random
    from app.backends.webgpu.graph import LayerCache, StepRecorder, Weight
    from app.backends.webgpu.kernels import Kernels

    class Ctx:
        def __init__(self, **kw):
            self.device, self.kernels, self.kv_size = dev, Kernels(dev), 1024
            self.__dict__.update(kw)

    def timed(rec, out) -> float:
        rec.keep(out)
        rec.finish(out)
        dev.write(rec.step_buf, 0, struct.pack("<4I", 640, 1, 0, 0))
        lst = [x for x in rec.run_list if x is not rec.run_list[-1]]  # without the argmax
        one = [lst[-1]]
        dev.run(one * 5)
        dev.sync()
        t0 = time.perf_counter()
        dev.run(one * reps)
        dev.sync()
        return (time.perf_counter() - t0) / reps * 1e6

    res = {}
    rnd = random.Random(0)
    hd, nh, nkv = 64, 32, 8
    kc, vc = dev.buffer(2 * nkv * hd * 1024), dev.buffer(2 * nkv * hd * 1024)
    vals = array.array("f", [rnd.uniform(-1, 1) for _ in range(nkv * hd * 1024)])
    halves = array.array("H", [struct.unpack("<H", struct.pack("<e", v))[0] for v in vals])
    dev.write(kc, 0, halves)
    dev.write(vc, 0, halves)
    for chunk in (256, 64):
        for exact in (True, False):
            ctx = Ctx(caches=[LayerCache(kc, vc, nkv, hd)], attn_chunk=chunk, attn_exact=exact)
            rec = StepRecorder(ctx, 1, 1)
            q = rec.input((hd, nh, 1), array.array("f", [rnd.uniform(-1, 1) for _ in range(hd * nh)]))
            k = rec.input((hd, nkv, 1), array.array("f", vals[:hd * nkv]))
            out = rec.attention(0, q, k, k, 0.125)
            # time the split kernel (the list: kv_store, split, combine)
            rec.keep(out)
            rec.finish(out)
            dev.write(rec.step_buf, 0, struct.pack("<4I", 640, 1, 0, 0))
            split = [rec.run_list[1]]
            dev.run(split * 5)
            dev.sync()
            t0 = time.perf_counter()
            dev.run(split * reps)
            dev.sync()
            res[f"attention_split chunk={chunk} exact={exact} us"] = round((time.perf_counter() - t0) / reps * 1e6, 2)
    for rows, k in ((128256, 2048), (8192, 2048), (2048, 8192), (2048, 2048)):
        nb = k // 32
        if rows * nb * 18 > dev.limits["max-storage-buffer-binding-size"]:
            continue
        w = dev.buffer(rows * nb * 18)
        chunk = bytes(rnd.getrandbits(8) for _ in range(1 << 16))
        for off in range(0, rows * nb * 18, 1 << 16):
            dev.write(w, off, chunk[:min(1 << 16, rows * nb * 18 - off)])
        W = Weight("w", 2, (k, rows), w)
        for n in (1, 512):
            if n == 512 and rows == 128256:
                continue
            for mm in ((True, False) if n > 1 else (False,)):
                ctx = Ctx(caches=[], use_matmul=mm)
                rec = StepRecorder(ctx, n, n)
                x = rec.input((k, n), array.array("f", [rnd.uniform(-1, 1) for _ in range(k)] * n))
                us = timed(rec, rec.linear(W, x))
                key = f"{'matmul' if mm else 'matvec'} Q4_0 {rows}x{k} n={n}"
                res[key + " us"] = round(us, 2)
                res[key + " GB/s"] = round(rows * nb * 18 / us / 1e3, 1)
                if n > 1:
                    res[key + " TOPS"] = round(2 * rows * k * n / us / 1e6, 2)
    return res


if __name__ == "__main__":
    main()
