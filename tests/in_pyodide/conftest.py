"""pytest-pyodide for the in-Pyodide unit tests: the dist is tools/pyodide_test_dist.py's
(npm core + pinned pytest/tblib wheels + this checkout's app and engine wheels), served
with the test data next to it; Chrome is Debian's chromium driven by Playwright (it
cannot download its own browsers here). tests/conftest.py picks the runtimes (node and
chrome) and the runner (playwright) when the command line does not."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tokenizer_support, test_sampling_pyodide
CHROMIUM = os.environ.get("PYLLM_CHROMIUM", "/usr/bin/chromium")


def _stage_test_data(dist: Path) -> None:
    """Files the tests fetch over HTTP (pyfetch works in both runtimes): tiny models and
    llama.cpp's vocabularies with their tokenizer test vectors."""
    from tools.testmodels import tiny
    from wasm_ext.sources import llama_cpp_dir

    data = dist / "testdata"
    data.mkdir(exist_ok=True)
    files = [tiny(arch, t) for arch, t in (("llama", "Q4_K"), ("qwen35", "Q8_0"), ("mamba", "Q4_0"))]
    for vocab in ("llama-spm", "gpt-2", "qwen35", "phi-3"):
        base = llama_cpp_dir() / "models" / f"ggml-vocab-{vocab}.gguf"
        files += [base, Path(str(base) + ".inp"), Path(str(base) + ".out")]
    for src in files:
        dst = data / src.name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, dst)


@pytest.fixture(scope="session")
def web_server_main(request):
    from pytest_pyodide.server import spawn_web_server
    from tools.pyodide_test_dist import build_test_dist

    dist = build_test_dist()
    assert Path(request.config.option.dist_dir) == dist, "tests/conftest.py points --dist-dir here"
    _stage_test_data(dist)
    with spawn_web_server(dist) as server:
        yield server


@pytest.fixture(scope="module")
def playwright_browsers(request):
    from pytest_pyodide.config import get_global_config
    from pytest_pyodide.hook import pytest_wrapper

    if request.config.option.runner.lower() != "playwright" or "chrome" not in pytest_wrapper.pyodide_runtimes:
        yield {}
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", *get_global_config().get_flags("chrome")])
        try:
            yield {"chrome": browser}
        finally:
            browser.close()
