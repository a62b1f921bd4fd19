"""Run Python code inside real Pyodide (npm core, Node) with our app/ packages and the
pure-Python Jinja2/MarkupSafe wheels installed, no network."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.chat_wheels import chat_wheels  # noqa: E402
from tools.pyodide_dist import pyodide_dir  # noqa: E402
from wasm_ext.relaxed_simd import NODE_WASM_FLAGS  # noqa: E402

APP_DIR = "/work"  # where app/ is placed inside Pyodide's file system


def app_files(*packages: str) -> dict[str, str]:
    """Pyodide path -> host path for app's top-level modules (app/__init__.py, ops.py,
    snapshot.py, ...) and the given app subpackages."""
    files = {f"{APP_DIR}/app/{src.name}": str(src) for src in sorted((ROOT / "app").glob("*.py"))}
    for pkg in packages:
        for src in sorted((ROOT / "app" / pkg).glob("*.py")):
            files[f"{APP_DIR}/app/{pkg}/{src.name}"] = str(src)
    return files


def run_in_pyodide(code: str, files: dict[str, str], timeout: float = 240) -> str:
    """Run `code` (its last expression must be a str) in Pyodide; returns that str."""
    job = {"indexURL": str(pyodide_dir()), "wheels": [str(p) for p in chat_wheels()], "files": files,
           "code": f"import sys\nsys.path.insert(0, {APP_DIR!r})\n" + code}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    try:
        proc = subprocess.run(["node", *NODE_WASM_FLAGS, str(ROOT / "tests" / "pyodide" / "run.mjs"), f.name],
                              capture_output=True, text=True, timeout=timeout)
    finally:
        Path(f.name).unlink()
    if proc.returncode != 0:
        raise RuntimeError(f"pyodide run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout.strip().splitlines()[-1]
