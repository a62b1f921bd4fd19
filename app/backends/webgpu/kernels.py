"""WGSL sources (shaders/*.wgsl) and the pipelines compiled from them, cached per device."""
from __future__ import annotations

from pathlib import Path
from typing import Any

# storage buffers a kernel may bind: WebGPU's guaranteed maxStorageBuffersPerShaderStage, so
# every adapter runs every kernel (tests/test_webgpu_bindings.py counts them)
MAX_STORAGE_BINDINGS = 8
_SHADER_DIRS = [Path(__file__).resolve().parents[3] / "shaders", Path(__file__).resolve().parent / "shaders"]
_sources: dict[str, str] = {}


def source(name: str) -> str:
    """The WGSL of shaders/<name>.wgsl, with `//#include other` lines replaced by other.wgsl
    (each file once: a second include of the same file is dropped)."""
    if name not in _sources:
        _sources[name] = _expand(name, set())
    return _sources[name]


def _expand(name: str, seen: set[str]) -> str:
    seen.add(name)
    for d in _SHADER_DIRS:
        f = d / f"{name}.wgsl"
        if f.exists():
            text = f.read_text()
            break
    else:
        raise FileNotFoundError(f"shader {name}.wgsl not found in {', '.join(map(str, _SHADER_DIRS))}")
    out = []
    for line in text.split("\n"):
        if line.startswith("//#include "):
            other = line.split()[1]
            if other not in seen:
                out.append(_expand(other, seen))
        else:
            out.append(line)
    return "\n".join(out)


def storage_bindings(name: str) -> int:
    """Storage buffers shaders/<name>.wgsl declares (each shader has one entry point, which
    uses every binding: an override-disabled branch still counts as use)."""
    return sum(1 for line in source(name).split("\n") if "var<storage" in line.split("//")[0])


class Kernels:
    """Pipelines by (shader, override constants), compiled once per device."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self._cache: dict[tuple, Any] = {}

    def get(self, name: str, **constants: Any) -> Any:
        key = (name, tuple(sorted(constants.items())))
        p = self._cache.get(key)
        if p is None:
            consts = {k: (float(v) if not isinstance(v, bool) else float(v)) for k, v in constants.items()}
            p = self._cache[key] = self.device.pipeline(source(name), consts, label=name)
        return p
