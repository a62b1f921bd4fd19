"""shader-f16: requested when the adapter has it, never required. Kernels that read f16 data
(the KV cache in the attention kernels, F16 weights in the mat-vecs) then load it as native
f16 instead of packed u32 words; the numbers must not change. Each case runs on two devices
of the same adapter, `WgpuDevice(f16=False)` and `WgpuDevice(f16=True)`, and asserts
bit-identical outputs and that the f16 variant was really compiled.

Mesa lavapipe has shader-f16; headless Chromium's SwiftShader does not (the browser tests
cover the packed path there).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from app.backends.webgpu.device import WgpuDevice  # noqa: E402
from app.backends.webgpu.graph import LayerCache  # noqa: E402
from app.backends.webgpu.kernels import source  # noqa: E402
from test_webgpu_kernels import F16, Q4_0, Ctx, quantize  # noqa: E402


@pytest.fixture(scope="module")
def devs():
    on, off = Device(f16=True), Device(f16=False)
    if not on.has_f16:
        pytest.skip(f"the adapter {on.name} has no shader-f16")
    assert not off.has_f16 and not off.device.features
    return on, off


class Device(WgpuDevice):
    """Keeps the WGSL of every pipeline it compiles."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.compiled: list[str] = []

    def pipeline(self, code, constants=None, label=""):
        self.compiled.append(code)
        return super().pipeline(code, constants, label)


def f16_modules(dev) -> list[str]:
    """The pipelines compiled on `dev` whose module uses native f16."""
    return [code for code in dev.compiled if code.startswith("enable f16;")]


def code(wgsl: str) -> str:
    """WGSL without its comments."""
    return "\n".join(line.split("//")[0] for line in wgsl.split("\n"))


def test_sources_choose_the_f16_variant_textually():
    plain = code(source("attention_split"))
    native = code(source("attention_split", f16=True))
    assert "enable f16" not in plain and "f16>" not in plain
    assert native.startswith("enable f16;\n") and native.count("enable f16;") == 1  # hoisted above every declaration
    assert "alias h2 = vec2<f16>;" in native
    # F16 weights: only for TYPE 1 kernels (kernels.Kernels.source), only on an f16 device
    assert "alias wword = u32;" in source("matvec", f16=True)
    assert "alias wword = vec2<f16>;" in source("matvec", f16=True, f16_weights=True)
    assert "enable f16" not in code(source("matvec", f16=False, f16_weights=True))
    assert "enable f16" not in code(source("kv_store", f16=True))  # cache writes stay packed (f16_round's rounding)


def _run_both(devs, run):
    outs = []
    for dev in devs:
        before = len(f16_modules(dev))
        outs.append((run(dev), len(f16_modules(dev)) - before))
    (a, new_on), (b, new_off) = outs
    assert new_off == 0
    return a, b, new_on


@pytest.mark.parametrize("k,n_out,n", [(256, 64, 1), (2080, 96, 3), (4096, 40, 1), (96, 40, 70)])
def test_f16_weight_products_are_bit_identical(devs, k, n_out, n):
    r = np.random.default_rng(k + n)
    w = (r.standard_normal((n_out, k)) / np.sqrt(k)).astype(np.float32)
    x = r.standard_normal((n, k)).astype(np.float32)
    wb = quantize(w, F16)

    def run(dev):
        c = Ctx(dev)
        return c.run(n, lambda rec: rec.linear(c.weight(F16, (k, n_out), wb), rec.input((k, n), x.tobytes())))
    a, b, compiled = _run_both(devs, run)
    assert compiled >= 1 and np.array_equal(a, b)


def test_quantized_products_keep_u32_words(devs):
    k, n_out = 256, 64
    w = np.random.default_rng(1).standard_normal((n_out, k)).astype(np.float32)
    x = np.random.default_rng(2).standard_normal((1, k)).astype(np.float32)
    wb = quantize(w, Q4_0)

    def run(dev):
        c = Ctx(dev)
        return c.run(1, lambda rec: rec.linear(c.weight(Q4_0, (k, n_out), wb), rec.input((k, 1), x.tobytes())))
    a, b, compiled = _run_both(devs, run)
    assert compiled == 0 and np.array_equal(a, b)


@pytest.mark.parametrize("n_past,n,hd,softcap,exact", [
    (150, 1, 64, 0.0, True),     # decode: attention_split, one chunk
    (300, 1, 128, 0.0, True),    # decode past 256 cells: split and merged
    (3, 9, 64, 0.0, True),       # a short prefill
    (10, 70, 64, 0.0, True),     # a long prefill: attention_tiled
    (10, 70, 64, 0.0, False),    # fast mode: attention.wgsl
    (40, 70, 256, 30.0, True),   # soft-capping: attention.wgsl
])
def test_attention_over_the_cache_is_bit_identical(devs, n_past, n, hd, softcap, exact):
    n_head, n_head_kv, kv_size = 4, 2, 512
    r = np.random.default_rng(n_past + n + hd)
    e = n_head_kv * hd
    q = r.standard_normal((n, n_head, hd)).astype(np.float32)
    k_all = r.standard_normal((n_past + n, n_head_kv, hd)).astype(np.float32)
    v_all = r.standard_normal((n_past + n, n_head_kv, hd)).astype(np.float32)
    # tiny values too: f16 subnormals in the cache must widen as unpack2x16float widens them
    k_all[: n_past // 2] *= 1e-4

    def run(dev):
        kc, vc = dev.buffer(2 * e * kv_size, "k"), dev.buffer(2 * e * kv_size, "v")
        if n_past:
            dev.write(kc, 0, k_all[:n_past].astype(np.float16).tobytes())
            dev.write(vc, 0, v_all[:n_past].astype(np.float16).tobytes())
        c = Ctx(dev, [LayerCache(kc, vc, n_head_kv, hd)], kv_size)
        c.exact = exact
        c.attn_chunk = 64

        def build(rec):
            qt = rec.input((hd, n_head, n), q.tobytes())
            kt = rec.input((hd, n_head_kv, n), k_all[n_past:].tobytes())
            vt = rec.input((hd, n_head_kv, n), v_all[n_past:].tobytes())
            return rec.attention(0, qt, kt, vt, 1.0 / math.sqrt(hd), softcap=softcap)
        return c.run(n, build, n_past=n_past)
    a, b, compiled = _run_both(devs, run)
    assert compiled >= 1 and np.array_equal(a, b), f"{int((a != b).sum())} of {a.size} values differ"


@pytest.mark.parametrize("arch,type_name", [("llama", "F16"), ("qwen3", "Q4_0"), ("gemma3", "Q4_0")])
def test_models_give_bit_identical_logits(devs, arch, type_name):
    """70-token prefill (tiled attention) then 20 decode steps, f16 on and off."""
    from app.backends.webgpu import WebGPURunner
    from app.gguf import read_gguf
    from app.models import model_for
    from tools.testmodels import tiny
    path = tiny(arch, type_name)
    tokens = np.random.default_rng(7).integers(3, 200, 90).tolist()
    rows = []
    for dev in devs:
        model = model_for(read_gguf(str(path)))
        gpu = WebGPURunner(model, path, n_ctx=256, device=dev)
        gpu.eval(tokens[:70], all_logits=True)
        got = [np.asarray(gpu.logits(i)) for i in range(70)]
        for t in tokens[70:]:
            gpu.eval([t])
            got.append(np.asarray(gpu.logits()))
        rows.append(np.stack(got))
    assert f16_modules(devs[0]) and not f16_modules(devs[1])
    assert np.array_equal(rows[0], rows[1]), f"{int((rows[0] != rows[1]).any(1).sum())} positions differ"


def test_environment_turns_it_off(devs, monkeypatch):
    monkeypatch.setenv("PYLLM_WEBGPU_F16", "0")
    assert not WgpuDevice().has_f16
    monkeypatch.delenv("PYLLM_WEBGPU_F16")
    assert WgpuDevice().has_f16  # the adapter has it (the fixture checked): requested by default
