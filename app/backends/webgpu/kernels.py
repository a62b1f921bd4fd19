"""WGSL sources (shaders/*.wgsl) and the pipelines compiled from them, cached per device."""
from __future__ import annotations

from pathlib import Path
from typing import Any

# storage buffers a kernel may bind: WebGPU's guaranteed maxStorageBuffersPerShaderStage, so
# every adapter runs every kernel (tests/test_webgpu_bindings.py counts them)
MAX_STORAGE_BINDINGS = 8
_SHADER_DIRS = [Path(__file__).resolve().parents[3] / "shaders", Path(__file__).resolve().parent / "shaders"]
_sources: dict[tuple[str, bool, bool], str] = {}
F16 = 1  # ggml's type id of an F16 weight (a mat-vec's TYPE override)
# includes replaced on a device with shader-f16 (WGSL needs `enable f16;` before any f16
# type, even in dead code, so the variant is chosen in the text, not by an override)
F16_SWAPS = {"f16_io": "f16_io_f16"}
F16_WEIGHT_SWAPS = {"w_words": "w_words_f16"}  # and for a kernel reading an F16 weight


def source(name: str, f16: bool = False, f16_weights: bool = False) -> str:
    """The WGSL of shaders/<name>.wgsl, with `//#include other` lines replaced by other.wgsl
    (each file once: a second include of the same file is dropped). `f16`: the shader-f16
    variants of the includes that have one (F16_SWAPS; `f16_weights` also F16_WEIGHT_SWAPS),
    their `enable` directives moved to the top of the module."""
    key = (name, f16, f16 and f16_weights)
    if key not in _sources:
        swaps = {**F16_SWAPS, **(F16_WEIGHT_SWAPS if f16_weights else {})} if f16 else {}
        lines = _expand(name, set(), swaps).split("\n")
        enables = list(dict.fromkeys(ln.strip() for ln in lines if ln.startswith("enable ")))
        _sources[key] = "\n".join(enables + [ln for ln in lines if not ln.startswith("enable ")])
    return _sources[key]


def _expand(name: str, seen: set[str], swaps: dict[str, str]) -> str:
    seen.add(name)
    name = swaps.get(name, name)
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
                out.append(_expand(other, seen, swaps))
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

    @property
    def f16(self) -> bool:
        """Whether the device granted shader-f16 (and it is not turned off): the f16 variants."""
        return bool(getattr(self.device, "has_f16", False))

    def source(self, name: str, **constants: Any) -> str:
        """The WGSL that `get` compiles for these constants on this device."""
        return source(name, self.f16, constants.get("TYPE") == F16)

    def get(self, name: str, **constants: Any) -> Any:
        key = (name, self.f16, tuple(sorted(constants.items())))
        p = self._cache.get(key)
        if p is None:
            consts = {k: (float(v) if not isinstance(v, bool) else float(v)) for k, v in constants.items()}
            p = self._cache[key] = self.device.pipeline(self.source(name, **constants), consts, label=name)
        return p
