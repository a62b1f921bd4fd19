"""Where do the WebGPU and ggml backends part? Runs one prefill step of a model on both
and compares every intermediate tensor the forward pass makes (each op's output, in
call order), printing the max relative error of each.

    python3 tools/webgpu_divergence.py MODEL.gguf [--tokens 70] [--ops 40]
    python3 tools/webgpu_divergence.py tiny:llama:Q4_0

Works by running the model once per op with a proxy `Ops` that makes that op's output
the step's "logits" (fresh runners each time, so the
KV caches start empty). Host only (numpy, wgpu-py, the native engine).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.backends.ggml.runner import GGMLRunner  # noqa: E402
from app.backends.webgpu import WebGPURunner, WgpuDevice  # noqa: E402
from app.gguf import read_gguf  # noqa: E402
from app.models import model_for  # noqa: E402

TENSOR_OPS = ("token_embeddings", "linear", "rms_norm", "add", "mul", "scale", "tanh", "swiglu", "geglu",
              "rope", "attention", "output_rows")


class Tap:
    """Forwards every op to `g`, keeping the output of op number `stop`."""

    def __init__(self, g, stop: int) -> None:
        self.g, self.stop, self.n, self.names, self.kept = g, stop, 0, [], None
        self.rows, self.kept_rows = g.n_tokens, g.n_tokens  # token rows (n_outputs after output_rows)

    def __getattr__(self, name):
        attr = getattr(self.g, name)
        if name not in TENSOR_OPS:
            return attr

        def call(*a, **k):
            out = attr(*a, **k)
            self.names.append(name + (f"({a[0].name})" if name == "linear" and hasattr(a[0], "name") else ""))
            if name == "output_rows":
                self.rows = self.g.n_outputs
            if self.n == self.stop:
                self.kept, self.kept_rows = out, self.rows
            self.n += 1
            return out
        return call


def _flat_gpu(rec, t, n):
    from app.backends.webgpu.graph import T
    return T((t.numel // n, n), t.st)


def _flat_ggml(sg, t, n):
    lib = sg.lib
    ne = [int(lib.eng_tensor_ne(t, d)) for d in range(4)]
    c = lib.check(lib.eng_cont(sg.g, t), "cont")
    return lib.check(lib.eng_reshape(sg.g, c, ne[0] * ne[1] * ne[2] * ne[3] // n, n, 1, 1), "reshape")


def run_to(model, runner_cls, path, stop: int, tokens, flat, **kw):
    orig = model.forward
    names = []

    def forward(g, w):
        tap = Tap(g, stop)
        out = orig(tap, w)
        names[:] = tap.names
        if tap.kept is not None:
            if hasattr(g, "_expand"):  # ggml: still compute the whole pass (cache writes)
                g._expand(out)
            out = flat(g, tap.kept, tap.kept_rows)
        return out
    model.forward = forward
    try:
        r = runner_cls(model, path, n_ctx=256, **kw)
        r.eval(tokens, all_logits=True)
        rows = np.stack([np.asarray(r.logits(i)) for i in range(len(tokens))])
    finally:
        model.forward = orig
    return rows, names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a GGUF path, or tiny:ARCH:TYPE for tools/testmodels.py's tiny models")
    ap.add_argument("--tokens", type=int, default=70)
    ap.add_argument("--ops", type=int, default=0, help="compare the first N ops (default: all)")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    path = a.model
    if path.startswith("tiny:"):
        from tools.testmodels import tiny
        _, arch, t = path.split(":")
        path = str(tiny(arch, t))
    model = model_for(read_gguf(path))
    dev = WgpuDevice()
    tokens = np.random.default_rng(a.seed).integers(3, model.hp.n_vocab, a.tokens).tolist()
    _, names = run_to(model, GGMLRunner, path, 10 ** 9, tokens, _flat_ggml)
    n_ops = min(a.ops or len(names), len(names))
    for i in range(n_ops):
        ref, _ = run_to(model, GGMLRunner, path, i, tokens, _flat_ggml)
        got, _ = run_to(model, WebGPURunner, path, i, tokens, _flat_gpu, device=dev, fuse=False)
        err = np.abs(got - ref)
        rel = float(err.max() / (np.abs(ref).max() + 1e-30))
        frac = float((err > 0).mean())
        print(f"{i:3d} {names[i]:32s} max rel {rel:.3e}  differing {frac:6.1%}  worst pos {int(err.max(1).argmax())}")


if __name__ == "__main__":
    main()
