"""A Pyodide dist for pytest-pyodide (tests/in_pyodide/): the npm core plus the wheels the
tests load with `pyodide.loadPackage`, listed in a rewritten pyodide-lock.json.

Pyodide's own packages live on a CDN these machines cannot reach, so the pure wheels that
pytest-pyodide loads into Pyodide (pytest and its dependencies, tblib) come from PyPI,
pinned by version and sha256; the app and engine wheels are built from this checkout
(scripts/build_web.py). Chrome enforces the lock's sha256, so every entry we add or
replace carries the hash of the file next to it. One dist per checkout (worktrees share
the cache), refreshed in place when the app or the engine changes.

    python3 tools/pyodide_test_dist.py            # prints the dist directory
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools.pyodide_dist import PYODIDE_VERSION, pyodide_dir  # noqa: E402
from wasm_ext.sources import cache_root  # noqa: E402

# (lock name, version, wheel, sha256 of the PyPI wheel, imports, depends)
PINNED_WHEELS = (
    ("pytest", "9.0.2", "pytest-9.0.2-py3-none-any.whl",
     "711ffd45bf766d5264d487b917733b453d917afd2b0ad65223959f59089f875b", ["_pytest", "pytest"],
     ["pluggy", "iniconfig", "packaging", "pygments"]),
    ("pluggy", "1.6.0", "pluggy-1.6.0-py3-none-any.whl",
     "e920276dd6813095e9377c0bc5566d94c932c33b27a3e3945d8389c374dd4746", ["pluggy"], []),
    ("iniconfig", "2.3.0", "iniconfig-2.3.0-py3-none-any.whl",
     "f631c04d2c48c52b84d0d0549c99ff3859c98df65b3101406327ecc7d53fbf12", ["iniconfig"], []),
    ("packaging", "26.1", "packaging-26.1-py3-none-any.whl",
     "5d9c0669c6285e491e0ced2eee587eaf67b670d94a19e94e3984a481aba6802f", ["packaging"], []),
    ("pygments", "2.20.0", "pygments-2.20.0-py3-none-any.whl",
     "81a9e26dd42fd28a23a2d169d86d7ac03b46e2f8b59ed4698fb4785f946d0176", ["pygments"], []),
    ("tblib", "3.2.2", "tblib-3.2.2-py3-none-any.whl",
     "26bdccf339bcce6a88b2b5432c988b266ebbe63a4e593f6b578b1d2e723d2b76", ["tblib"], []),
)
CORE_FILES = ("pyodide.js", "pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "package.json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pinned_wheel(name: str, version: str, filename: str, sha: str) -> Path:
    dest = cache_root() / "pyodide-test-wheels"
    path = dest / filename
    if not path.exists():
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--only-binary=:all:",
                        "--python-version", "3.14", f"{name}=={version}", "-d", str(dest)], check=True)
    if _sha256(path) != sha:
        path.unlink()
        raise RuntimeError(f"{path}: sha256 does not match the pinned {sha}")
    return path


def _place(src: Path, dst: Path) -> None:
    if dst.exists() and dst.stat().st_size == src.stat().st_size and dst.stat().st_mtime >= src.stat().st_mtime:
        return
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _entry(name: str, version: str, wheel: Path, imports: list[str], depends: list[str]) -> dict:
    return {"name": name, "version": version, "file_name": wheel.name, "install_dir": "site",
            "sha256": _sha256(wheel), "package_type": "package", "imports": imports, "depends": depends,
            "unvendored_tests": False, "tool": {}}


def dist_dir() -> Path:
    """Where this checkout's test dist lives (it may not be built yet)."""
    key = hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
    return cache_root() / f"pyodide-test-dist-{PYODIDE_VERSION}-{key}"


def build_test_dist(with_engine: bool = True) -> Path:
    """Build or refresh the dist: core files, pinned wheels, this checkout's app (and
    engine) wheels, and the lock listing them."""
    from scripts.build_web import app_wheel, engine_wheel
    from tools.chat_wheels import chat_wheels

    out = dist_dir()
    out.mkdir(parents=True, exist_ok=True)
    core = pyodide_dir()
    for name in CORE_FILES:
        _place(core / name, out / name)
    lock = json.loads((core / "pyodide-lock.json").read_text())
    packages = lock["packages"]
    for name, version, filename, sha, imports, depends in PINNED_WHEELS:
        wheel = _pinned_wheel(name, version, filename, sha)
        _place(wheel, out / wheel.name)
        packages[name] = _entry(name, version, out / wheel.name, imports, depends)
    for wheel, name, imports, depends in zip(chat_wheels(), ("jinja2", "markupsafe"), (["jinja2"], ["markupsafe"]),
                                             (["markupsafe"], [])):
        _place(wheel, out / wheel.name)
        packages[name] = _entry(name, wheel.name.split("-")[1], out / wheel.name, imports, depends)
    app = app_wheel(out)
    packages["pyllm-browser"] = _entry("pyllm-browser", app.name.split("-")[1], app, ["app"], [])
    if with_engine:
        from wasm_ext.build_wasm import side_module
        eng = engine_wheel(out, side_module())
        packages["pyllm-engine-wasm"] = _entry("pyllm-engine-wasm", eng.name.split("-")[1], eng,
                                               ["pyllm_engine_wasm"], [])
    tmp = out / "pyodide-lock.json.tmp"
    tmp.write_text(json.dumps(lock))
    os.replace(tmp, out / "pyodide-lock.json")
    return out


if __name__ == "__main__":
    print(build_test_dist())
