"""Headless Chromium with a WebGPU adapter (SwiftShader, `--enable-unsafe-webgpu`) and a page
that runs Python in a Pyodide worker (tests/browser/webgpu_harness/harness.html): the app wheel, the
engine side module and web/webgpu_device.js, as in the app's worker.

The site is web/ (built by scripts/build_web.py) plus the harness files and the test
models, linked into one temporary directory and served from 127.0.0.1 with COOP/COEP.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent.parent
HARNESS = Path(__file__).resolve().parent / "webgpu_harness"
CHROMIUM = os.environ.get("PYLLM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--enable-unsafe-webgpu"]


def missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install playwright)"
    return None


def make_site(files: dict[str, Path]) -> Path:
    """A temp dir: web/'s entries and the harness files linked in, plus `files` (name -> path).
    Build web/ first (scripts/build_web.py: build_site(with_model=True), as the page tests do,
    so runs of both never rewrite each other's web/build.json)."""
    site = Path(tempfile.mkdtemp(prefix="pyllm-webgpu-site-"))
    for src in list((ROOT / "web").iterdir()) + list(HARNESS.iterdir()):
        if src.name != "build.json":
            (site / src.name).symlink_to(src)
    # the app's build facts without its bundled model (the page would load it at once)
    build = json.loads((ROOT / "web" / "build.json").read_text())
    build["models"] = []
    (site / "build.json").write_text(json.dumps(build))
    for name, path in files.items():
        (site / name).symlink_to(path)
    return site


def launch(playwright: Any, *extra: str) -> Any:
    """Headless Chromium with the WebGPU adapter (extra: more command-line switches)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + list(extra))


@contextmanager
def served_site(files: dict[str, Path]) -> Iterator[tuple[str, Path]]:
    """web/ built (scripts/build_web.py), the harness and `files` in a temp site, served from
    127.0.0.1 with COOP/COEP: (its URL, its directory) while the block runs."""
    from scripts.build_web import build_site
    from scripts.serve import serve_in_thread

    build_site(with_model=True)
    site = make_site(files)
    httpd, url = serve_in_thread(0, site)
    try:
        yield url, site
    finally:
        httpd.shutdown()
        httpd.server_close()
        cleanup(site)


class Harness:
    """The harness page: `run(code)` runs Python in its worker and returns the last
    expression's value (a JSON string there, decoded here)."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def run(self, code: str, timeout_ms: int = 600_000) -> Any:
        self.page.set_default_timeout(timeout_ms)
        return json.loads(self.page.evaluate("code => window.runPy(code)", code))


def open_harness(browser: Any, url: str) -> Harness:
    page = browser.new_page()
    logs: list[str] = []
    page.on("console", lambda m: logs.append(m.text))
    page.goto(url + "harness.html")
    page.wait_for_function("window.harness.ready === true || window.harness.error !== null", timeout=180_000)
    err = page.evaluate("window.harness.error")
    if err:
        raise RuntimeError(f"harness worker failed to start: {err}; console: {logs[-5:]}")
    h = Harness(page)
    h.logs = logs  # type: ignore[attr-defined]
    return h


def cleanup(site: Path) -> None:
    shutil.rmtree(site, ignore_errors=True)
