"""Sampling on the GPU in the browser: headless Chromium (Tint compiles sample.wgsl, the
SwiftShader adapter runs it) inside the harness's Pyodide worker, against the wasm engine's
C sampler on the same logits with the same settings and the same PCG32 stream position.

- decode steps of a tiny llama: each step's token comes back from the GPU sampler (8 bytes,
  counted by the runner's `gpu_samples`) and equals the C sampler's token over the logits
  row read back, for greedy, llama.cpp's defaults, top-k, a full-vocabulary nucleus, min-p
  and plain temperature (id order), penalties with logit bias;
- random rows of a 40000-token vocabulary through GPUSampler (radix select over several
  passes, ties at the top, id-order chunks);
- app.generate's loop on the WebGPU runner: the same replies as sampling on the host, and
  greedy as the wasm engine's ggml.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import webgpu_support as ws  # noqa: E402
from wasm_support import tools_missing  # noqa: E402

_why = tools_missing() or ws.missing()
pytestmark = [pytest.mark.skipif(_why is not None, reason=str(_why)), pytest.mark.slow]

FAST = "--enable-dawn-features=disable_workgroup_init"  # (see test_webgpu_browser.py)
MODEL = ("llama", "F32")

DECODE = [
    dict(temperature=0.0),                                       # greedy
    dict(),                                                      # llama.cpp's defaults: k 40, p .95, min-p .05, t .8
    dict(top_k=5, top_p=1.0, min_p=0.0, temperature=1.5),
    dict(top_k=0, top_p=0.8, min_p=0.0, temperature=1.2),        # nucleus over the whole vocabulary
    dict(top_k=0, top_p=1.0, min_p=0.02, temperature=1.5),       # min-p alone: id order
    dict(top_k=0, top_p=1.0, min_p=0.0, temperature=2.0),        # every token, id order
    dict(top_k=64, temperature=1.5, logit_bias={3: 5.0, 10: float("-inf")}, repeat_penalty=1.3,
         frequency_penalty=0.2, presence_penalty=0.1, penalty_last_n=16),
]
ROWS = [
    dict(temperature=0.0),
    dict(),
    dict(top_k=200, top_p=0.9, min_p=0.0, temperature=1.3),
    dict(top_k=0, top_p=1.0, min_p=0.1, temperature=1.0),
    dict(top_k=0, top_p=1.0, min_p=0.0, temperature=1.0),
    dict(top_k=40, top_p=0.5, min_p=0.2, temperature=2.0, min_keep=3),
]
GENERATE = [dict(temperature=0.0), dict(seed=11), dict(seed=3, top_k=0, top_p=1.0, min_p=0.0, temperature=1.5,
                                                        repeat_penalty=1.2)]
N_STEPS, N_VOCAB_ROWS, N_ROWS, N_GEN = 10, 40000, 6, 12
PROMPT = [1, 50, 60, 70, 80]

CODE = """
import json
from math import inf  # (the settings below are their repr(), which spells -inf so)
from app.backends.webgpu import BrowserDevice
dev = await BrowserDevice.open()
gpu, path = await load(dev, %r)
out = {"adapter": dev.name,
       "decode": decode_steps(gpu, %r, %r, %d),
       "rows": synthetic_rows(dev, gpu.kernels, %r, %d, %d),
       "generate": generation_api(gpu, path, %r, %r, %d)}
gpu.close()
json.dumps(out)
"""


@pytest.fixture(scope="module")
def result():
    from playwright.sync_api import sync_playwright

    from tools.testmodels import tiny
    name = "%s-%s.gguf" % MODEL
    code = (HERE / "webgpu_sampling_runner.py").read_text() + CODE % (
        name, DECODE, PROMPT, N_STEPS, ROWS, N_VOCAB_ROWS, N_ROWS, GENERATE, PROMPT, N_GEN)
    with ws.served_site({name: tiny(*MODEL)}) as (url, _), sync_playwright() as p:
        b = ws.launch(p, FAST)
        try:
            return ws.open_harness(b, url).run(code)
        finally:
            b.close()


def test_decode_steps_sample_on_the_gpu_as_the_c_sampler_does(result):
    assert "swiftshader" in result["adapter"]
    for r in result["decode"]:
        opts = DECODE[r["setting"]]
        assert r["on_gpu"] == N_STEPS, (opts, r)  # every token came back from sample.wgsl
        assert r["got"] == r["want"], (opts, r)
        if opts.get("temperature", 0.8) > 0 and opts.get("top_k") != 1:
            assert len(set(r["got"])) > 2, (opts, r)  # it drew, not a greedy loop
    print(f"\n{len(DECODE)} settings x {N_STEPS} decode steps sampled on the GPU in Chromium, as the C sampler: "
          f"{[r['got'] for r in result['decode']]}")


def test_large_vocabulary_rows_sample_on_the_gpu_as_the_c_sampler_does(result):
    not_top = 0
    for r in result["rows"]:
        opts = ROWS[r["setting"]]
        assert r["status"] == ["ok"] * N_ROWS, (opts, r["status"])
        assert r["got"] == r["want"], (opts, r)
        if opts.get("temperature", 0.8) == 0.0:
            assert r["got"] == r["top"]
        else:
            not_top += sum(g != t for g, t in zip(r["got"], r["top"]))
    assert not_top > 0  # the sampled settings drew, not always the top token


def test_generation_loop_samples_on_the_gpu(result):
    for opts, r in zip(GENERATE, result["generate"]):
        gpu_reply, host_reply = r["replies"][:2]
        assert len(gpu_reply) == N_GEN and gpu_reply == host_reply, (opts, r)
        assert r["gpu_samples"] == [N_GEN, 0], (opts, r)
        if opts.get("temperature") == 0.0:
            assert r["replies"][2] == gpu_reply, (opts, r)  # the wasm engine's ggml, greedy
