"""Pure-Python wheels of Jinja2 and MarkupSafe for Pyodide (the chat templates need them).

Pyodide's own packages live on a CDN the app cannot rely on, so we ship these two:
Jinja2's universal wheel as published, and a MarkupSafe wheel assembled from its sdist
without the `_speedups` C extension (MarkupSafe falls back to its `_native` module).
Both downloads are pinned by version and sha256; the result is written to the cache.

    python3 tools/chat_wheels.py      # prints the two wheel paths
"""
from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from wasm_ext.sources import cache_root  # noqa: E402

JINJA2 = ("jinja2", "3.1.6", "jinja2-3.1.6-py3-none-any.whl",
          "85ece4451f492d0c13c5dd7c13a64681a86afae63a5f347908daf103ce6d2f67")
MARKUPSAFE = ("markupsafe", "3.0.3", "markupsafe-3.0.3.tar.gz",
              "722695808f4b6457b320fdc131280796bdceb04ab50fe1795cd540799ebe1698")
MARKUPSAFE_WHEEL = "markupsafe-3.0.3-py3-none-any.whl"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _download(name: str, version: str, filename: str, sha: str, dest: Path, binary: bool) -> Path:
    path = dest / filename
    if not path.exists():
        dest.mkdir(parents=True, exist_ok=True)
        how = ["--only-binary=:all:", "--python-version", "3.14"] if binary else ["--no-binary=:all:"]
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", *how,
                        f"{name}=={version}", "-d", str(dest)], check=True)
    if _sha256(path) != sha:
        path.unlink()
        raise RuntimeError(f"{path}: sha256 does not match the pinned {sha}")
    return path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _pure_markupsafe(sdist: Path, out: Path) -> Path:
    """Wheel of MarkupSafe's Python sources only (no _speedups.c), tagged py3-none-any."""
    root = "markupsafe-3.0.3/"
    files: dict[str, bytes] = {}
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if member.name.startswith(root + "src/markupsafe/") and member.isfile() \
                    and not member.name.endswith(".c"):
                files["markupsafe/" + member.name.rsplit("/", 1)[1]] = tar.extractfile(member).read()
        metadata = tar.extractfile(root + "PKG-INFO").read()
        license_text = tar.extractfile(root + "LICENSE.txt").read()
    info = "markupsafe-3.0.3.dist-info/"
    files[info + "METADATA"] = metadata
    files[info + "licenses/LICENSE.txt"] = license_text
    files[info + "WHEEL"] = b"Wheel-Version: 1.0\nGenerator: pyllm chat_wheels\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[info + "top_level.txt"] = b"markupsafe\n"
    record = [_record_line(n, d) for n, d in sorted(files.items())] + [info + "RECORD,,"]
    files[info + "RECORD"] = ("\n".join(record) + "\n").encode()
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info_ = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
            info_.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info_, files[name])
    tmp.replace(out)
    return out


def chat_wheels() -> list[Path]:
    """[jinja2 wheel, pure markupsafe wheel], built once into the cache."""
    dest = cache_root() / "wheels-chat"
    jinja = _download(*JINJA2, dest, binary=True)
    wheel = dest / MARKUPSAFE_WHEEL
    if not wheel.exists():
        _pure_markupsafe(_download(*MARKUPSAFE, dest, binary=False), wheel)
    return [jinja, wheel]


if __name__ == "__main__":
    for p in chat_wheels():
        print(p)
