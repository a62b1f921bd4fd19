"""Every WGSL kernel fits WebGPU's guaranteed limit of 8 storage buffers a shader stage, so
any adapter runs any model (SwiftShader allows 10, some browsers give exactly 8): counted in
the sources, then proven on a wgpu-py device that asks for exactly 8 (wgpu refuses a
pipeline that binds more), where the recurrent models give the same logits as on the
adapter's own limits. That device also has WebGPU's default 16 KiB of workgroup memory
(adapters often have 32-48). A device below 8 is a clear error at load, before any weight
moves.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.backends.webgpu import DeviceError, WebGPURunner, WgpuDevice  # noqa: E402
from app.backends.webgpu.kernels import MAX_STORAGE_BINDINGS, source, storage_bindings  # noqa: E402
from app.gguf import read_gguf  # noqa: E402
from app.models import model_for  # noqa: E402

KEY = "max-storage-buffers-per-shader-stage"
WG_MEMORY = "max-compute-workgroup-storage-size"
KERNELS = sorted(p.stem for p in (ROOT / "shaders").glob("*.wgsl") if "@compute" in source(p.stem))


def test_every_kernel_declares_at_most_8_storage_buffers():
    assert MAX_STORAGE_BINDINGS == 8  # WebGPU's guaranteed maxStorageBuffersPerShaderStage
    counts = {k: storage_bindings(k) for k in KERNELS}
    assert "gated_delta" in counts and "ssm_scan" in counts and "matvec_multi4" in counts
    assert "gdn_chunk_prep" in counts and "gdn_chunk_scan" in counts
    assert {k: n for k, n in counts.items() if n > MAX_STORAGE_BINDINGS} == {}


@pytest.fixture(scope="module")
def devices():
    return WgpuDevice(), WgpuDevice(limits={KEY: MAX_STORAGE_BINDINGS, WG_MEMORY: 16384})


def _logits(path: Path, device, n_prompt: int = 9, exact: bool = True) -> list[np.ndarray]:
    gpu = WebGPURunner(model_for(read_gguf(str(path))), path, n_ctx=64, device=device, exact=exact)
    out = []
    gpu.eval(list(range(5, 5 + n_prompt)), all_logits=True)  # a prefill (the fused prefill kernels), then decode steps
    out.append(np.asarray(gpu.logits(0)))
    for t in (20, 21):
        gpu.eval([t])
        out.append(np.asarray(gpu.logits()))
    gpu.close()
    return out


@pytest.mark.parametrize("arch", ["qwen35", "mamba", "mamba2", "falcon-mamba"])
def test_recurrent_models_run_within_webgpus_guaranteed_limit(devices, arch):
    """Q4_0: every fusion applies (Q8_0 outputs folded into the delta rule, matvec_multi4)."""
    from tools.testmodels import tiny
    own, eight = devices
    assert eight.limits[KEY] == MAX_STORAGE_BINDINGS
    path = tiny(arch, "Q4_0")
    for a, b in zip(_logits(path, own), _logits(path, eight)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("exact", [True, False])
def test_products_run_within_webgpus_default_workgroup_memory(devices, exact):
    """llama Q4_0 and Q8_0, a 9-token prefill then decode steps: exact mode's chained
    products (terms in the kernels' reduction memory), fast mode's 8-token mat-vecs."""
    from tools.testmodels import tiny
    own, small = devices
    assert small.limits[WG_MEMORY] == 16384
    for type_name in ("Q4_0", "Q8_0"):
        path = tiny("llama", type_name)
        for a, b in zip(_logits(path, own, exact=exact), _logits(path, small, exact=exact)):
            assert np.array_equal(a, b)


def test_chunked_delta_rule_runs_within_webgpus_guaranteed_limit(devices):
    """qwen35 in fast mode with a 40-token prompt: the chunked delta rule (gdn_chunk_prep,
    gdn_chunk_scan and gated_delta's gate tail) on a device limited to 8."""
    from tools.testmodels import tiny
    own, eight = devices
    path = tiny("qwen35", "Q4_0")
    for a, b in zip(_logits(path, own, 40, exact=False), _logits(path, eight, 40, exact=False)):
        assert np.array_equal(a, b)


def test_an_adapter_below_the_kernels_needs_is_refused_at_load():
    from tools.testmodels import tiny
    dev = WgpuDevice(limits={KEY: MAX_STORAGE_BINDINGS - 1})
    path = tiny("llama", "Q4_0")
    fed = []
    with pytest.raises(DeviceError, match=r"bind up to 8 storage buffers a shader stage; this adapter allows 7"):
        WebGPURunner(model_for(read_gguf(str(path))), n_ctx=64, device=dev, loader=fed.append)
    assert fed == []  # refused before any weight was asked for
