"""Where a Gemma 3 270M token goes in the wasm side module: its mat-muls by weight group.

    python bench/profile_wasm_matmul.py A.so [B.so] [--rounds 3] [--tokens 1] [--reps 10] [--model PATH]
    python bench/profile_wasm_matmul.py --native [--tokens 1]    # the same, host engine (CPython)

Inside Pyodide (Node), with the model's real weights (loaded through GGMLRunner, so
repacked where the engine repacks them), one graph per group holds a mat-mul of every
weight of that group with --tokens activation columns: the output head (the tied Q8_0
embedding), then the layers' weights by type. A group's graph computed once reads its
weights once, as a decode step does, so its time is that group's share of a token (ms).
`step` is one whole decode step (--tokens 1) or prefill chunk of the model itself; `other`
= step - the groups (norms, attention, RoPE, activations, the graph's overhead). With two
modules the runs interleave (A, B, B, A, ...) and B/A is printed per group.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "browser"))

CODE = r"""
import json, time, array, random
import pyllm_engine_wasm
from app.backends.ggml.library import load_library
from app.backends.ggml.runner import GGMLRunner
from app.gguf import read_gguf
from app.models import model_for

lib = load_library(pyllm_engine_wasm.LIBRARY)
g = read_gguf(MODEL)
r = GGMLRunner(model_for(g), MODEL, n_threads=1, n_ctx=max(512, 64 + TOKENS * (2 * REPS + 2)), lib=lib)
types = {t.name: t.type_name for t in g.tensors}
groups = {}
head = r.weights._t.get("output", r.weights._t["token_embd"])
if TOKENS == 1:  # a prompt's chunk computes the logits of its last token only
    groups["head Q8_0" if types["token_embd.weight"] == "Q8_0" else "head"] = [head]
for i, layer in enumerate(r.weights.layers):
    for name, h in layer._t.items():
        t = types.get(f"blk.{i}.{name}.weight")
        if t is None or "norm" in name or lib.eng_tensor_ne(h, 1) == 1:
            continue
        groups.setdefault(f"layers {t}", []).append(h)
rnd = random.Random(1)
res = {}
for key, ws in groups.items():
    gr = lib.check(lib.eng_graph_new(r.eng, 4 * len(ws) + 64), "graph")
    xs = {}
    for w in ws:
        k = int(lib.eng_tensor_ne(w, 0))
        if k not in xs:
            xs[k] = lib.check(lib.eng_input(gr, 0, k, TOKENS, 1, 1), "input")
        lib.check(lib.eng_graph_output(gr, lib.check(lib.eng_mul_mat(gr, w, xs[k]), "mul_mat")), "out")
    lib.check(lib.eng_graph_alloc(gr), "alloc")
    for k, x in xs.items():
        buf = array.array("f", [rnd.uniform(-1, 1) for _ in range(k * TOKENS)])
        lib.eng_tensor_set(x, 0, buf.buffer_info()[0], len(buf) * 4)
    lib.eng_graph_compute(gr)
    times = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        lib.eng_graph_compute(gr)
        times.append((time.perf_counter() - t0) * 1e3)
    res[key] = min(times)
    lib.eng_graph_free(gr)
prompt = [2] + [(i * 7919 + 13) % 20000 + 100 for i in range(63)]
r.eval(prompt)
steps = []
tok = r.argmax()
for i in range(REPS + 1):
    t0 = time.perf_counter()
    r.eval([tok] * TOKENS)
    steps.append((time.perf_counter() - t0) * 1e3)
    tok = r.argmax()
res["step"] = min(steps[1:])
c0, p0 = r.stats.compute_ms, r.stats.python_ms
for i in range(REPS):
    r.eval([tok] * TOKENS)
res["step compute"] = (r.stats.compute_ms - c0) / REPS
res["step python"] = (r.stats.python_ms - p0) / REPS
res["other"] = res["step compute"] - sum(v for k, v in res.items() if not k.startswith("step"))
r.close()
json.dumps(res)
"""


def main() -> None:
    from tools.assets import gemma3_270m_path
    from wasm_support import in_pyodide, run_pyodide

    ap = argparse.ArgumentParser()
    ap.add_argument("modules", nargs="*", type=Path)
    ap.add_argument("--native", action="store_true", help="the host's native engine instead (no Pyodide)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=1, help="activation columns (1: decode)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()
    model = args.model or gemma3_270m_path()
    if args.native:  # the same code in this process, against the host library
        code = CODE.replace("import pyllm_engine_wasm\n", "").replace("load_library(pyllm_engine_wasm.LIBRARY)",
                                                                     "load_library()")
        ns: dict = {}
        exec(f"MODEL = {str(model)!r}\nTOKENS = {args.tokens}\nREPS = {args.reps}\n" + code, ns)
        print(json.dumps({"tokens": args.tokens, "native ms": {k: round(v, 2) for k, v in ns["res"].items()}}, indent=1))
        return
    runs: dict[int, list[dict]] = {i: [] for i in range(len(args.modules))}
    order = list(range(len(args.modules)))
    for rnd in range(args.rounds):
        for which in (order if rnd % 2 == 0 else order[::-1]):
            code = f"MODEL = {in_pyodide(model)!r}\nTOKENS = {args.tokens}\nREPS = {args.reps}\n" + CODE
            res = run_pyodide(code, engine=args.modules[which])
            runs[which].append(res)
            print(f"round {rnd} {'AB'[which]}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()), flush=True)
    med = {w: {k: statistics.median(r[k] for r in runs[w]) for k in runs[w][0]} for w in runs}
    out = {"tokens": args.tokens, "ms": {"AB"[w]: {k: round(v, 2) for k, v in m.items()} for w, m in med.items()}}
    if len(runs) == 2:
        out["B/A time"] = {k: round(med[1][k] / med[0][k], 3) for k in med[0] if med[0][k] > 0}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
