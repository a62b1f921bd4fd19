"""A Pyodide memory snapshot of the worker's Python, made at build time under Node.

Starting Python is most of the worker's boot: loadPyodide spends ~2-3 s on 2 cores
initialising the interpreter (on V8's baseline wasm code), against ~0.2 s to compile
pyodide.asm.wasm and fetch the stdlib. Pyodide can restore its wasm memory from a
snapshot instead (`loadPyodide({_loadSnapshot})`, experimental but shipped in 314), so
the worker skips the interpreter start and the imports that are already done in it.

What the snapshot holds: Python started, the pure-Python wheels (the app, Jinja2,
MarkupSafe) installed and the modules the worker always needs imported (app.worker, the
GGUF reader, the ggml runner, the tokenizer, generation, chat templates). Only wasm
memory is in it: the files of those wheels (MEMFS lives in JS) and the engine side
module (a wasm instance of its own) are not, so the worker installs all the wheels again
after restoring (it needs the files for the modules imported later, and the engine).
Both come from the same build (the snapshot's key is the hash of the Pyodide dist and of
every wheel in it), so the modules in memory match the files.

A snapshot made under Node restores in Chromium: the interpreter state is the same; the
JS objects Python holds are re-bound by path (globalThis) when restored.

    python3 tools/pyodide_snapshot.py WHEEL...     # prints the snapshot's path
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from wasm_ext.sources import cache_root, file_sha256  # noqa: E402

# imported into the snapshot: everything the worker's boot, a model load and a first reply
# import anyway (stdlib and app); what is not listed is imported from the files as before
IMPORTS = ("ctypes", "hashlib", "asyncio", "json", "struct", "array", "datetime", "unicodedata", "pyodide.ffi",
           # what Pyodide's package loader imports on its first use (the worker installs the engine)
           "email", "encodings.cp437", "importlib.metadata", "tarfile", "zipfile", "site",
           "app.worker", "app.worker.session", "app.worker.jslib", "app.worker.chat_state", "app.worker.gpu", "app.worker.warmup",
           "app.gguf", "app.store.stream", "app.backends.ggml.library", "app.backends.ggml.runner",
           "app.backends.ggml.graph", "app.models", "app.tokenizer", "app.generate", "app.sampling", "app.chat")
KEEP = 8  # snapshots kept in the cache
FORMAT = 1  # bump when what goes into the snapshot changes

_SCRIPT = r"""
import { loadPyodide } from "%(mjs)s";
import fs from "node:fs";
const [out, wheelsJson, code] = process.argv.slice(2);
const py = await loadPyodide({ indexURL: "%(index)s", _makeSnapshot: true });
// the wheels are unpacked by Python, not loadPackage: the package loader's JS state is not
// snapshot-safe (and the worker installs the wheels again anyway)
JSON.parse(wheelsJson).forEach((w, i) => py.FS.writeFile(`/tmp/wheel${i}.whl`, fs.readFileSync(w)));
py.runPython(code);
fs.writeFileSync(out, py.makeMemorySnapshot());
"""

# run in the snapshot before it is taken: the imports, then nothing left that holds JS objects
_PY = """
import importlib, os, site, sys, zipfile
for _i in range(%(n)d):
    with zipfile.ZipFile(f"/tmp/wheel{_i}.whl") as _z:
        _z.extractall(site.getsitepackages()[0])
    os.remove(f"/tmp/wheel{_i}.whl")
importlib.invalidate_caches()
for _name in %(imports)r:
    importlib.import_module(_name)
del _name, _i, _z
"""


def snapshot_key(pyodide_dir: Path, wheels: list[Path]) -> str:
    h = hashlib.sha256(f"format {FORMAT}\n{IMPORTS!r}\n".encode())
    for name in ("pyodide.asm.wasm", "python_stdlib.zip", "pyodide.asm.mjs"):
        h.update(f"{name} {file_sha256(pyodide_dir / name)}\n".encode())
    for w in wheels:
        h.update(f"{w.name} {file_sha256(w)}\n".encode())
    return h.hexdigest()[:16]


def make_snapshot(pyodide_dir: Path, wheels: list[Path], imports: tuple[str, ...] = IMPORTS) -> Path:
    """The gzipped snapshot (cached by key); wheels: the pure-Python wheels to install in it."""
    key = snapshot_key(pyodide_dir, wheels)
    out = cache_root() / "pyodide-snapshots" / f"snapshot-{key}.bin.gz"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pyllm-snap-") as tmp:
        script = Path(tmp) / "snap.mjs"
        script.write_text(_SCRIPT % {"mjs": (pyodide_dir / "pyodide.mjs").as_posix(),
                                     "index": pyodide_dir.as_posix() + "/"})
        raw = Path(tmp) / "snapshot.bin"
        proc = subprocess.run(["node", str(script), str(raw), json.dumps([str(Path(w).resolve()) for w in wheels]),
                               _PY % {"imports": tuple(imports), "n": len(wheels)}], capture_output=True, text=True)
        if proc.returncode != 0 or not raw.exists():
            raise RuntimeError(f"making the Pyodide snapshot failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        tmp_out = out.with_name(out.name + ".tmp")
        with open(raw, "rb") as f, gzip.GzipFile(tmp_out, "wb", compresslevel=6, mtime=0) as g:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                g.write(chunk)
        os.replace(tmp_out, out)
    # keep the newest few (every change of the app makes one, ~7.5 MB each)
    old = sorted(out.parent.glob("snapshot-*.bin.gz"), key=lambda p: p.stat().st_mtime, reverse=True)[KEEP:]
    for p in old:
        p.unlink(missing_ok=True)
    return out


if __name__ == "__main__":
    from tools.pyodide_dist import pyodide_dir
    print(make_snapshot(pyodide_dir(), [Path(a) for a in sys.argv[1:]]))
