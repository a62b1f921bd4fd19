"""Shared fixtures: the llama.cpp oracle, the engine, and the models tests run on."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "reference"))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """pytest-pyodide (tests/in_pyodide/): unless the command line says otherwise, run those
    tests in both runtimes, node and chrome (Debian chromium through Playwright), on the
    dist tools/pyodide_test_dist.py prepares for this checkout."""
    opt = config.option
    if not hasattr(opt, "dist_dir"):  # pytest-pyodide not installed
        return
    from tools.pyodide_test_dist import build_test_dist, dist_dir

    if Path(str(opt.dist_dir)).name == "pyodide":  # the plugin's default
        opt.dist_dir = dist_dir()
        # the test modules ask the lock which packages exist when they are imported: make
        # sure it is there (the engine wheel is added when the tests start)
        if not (opt.dist_dir / "pyodide-lock.json").exists():
            build_test_dist(with_engine=False)
    if opt.runtime == "node":
        opt.runtime = "node,chrome"
    # the engine wheel is the relaxed-SIMD build, which Node 20 runs behind a flag
    from pytest_pyodide.config import get_global_config
    from wasm_ext.relaxed_simd import NODE_WASM_FLAGS

    node = get_global_config().get_flags("node")
    get_global_config().set_flags("node", [*node, *(f for f in NODE_WASM_FLAGS if f not in node)])
    if opt.runner == "selenium":
        opt.runner = "playwright"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under scripts/test.sh (PYLLM_REQUIRE_ALL=1) everything was installed, so a skip means a
    broken setup: report it as a failure rather than let a check silently not run."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("PYLLM_REQUIRE_ALL") == "1":
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under PYLLM_REQUIRE_ALL=1 (the setup should provide this): {reason}"


@pytest.fixture(scope="session")
def reference_binary() -> Path:
    from build import reference_binary as build_reference  # tests/reference/build.py
    return build_reference()


@pytest.fixture(scope="session")
def llama_cpp():
    """The llama.cpp oracle (tests/reference/oracle.py) over the built reference binary."""
    from oracle import Oracle
    from build import reference_binary as build_reference
    return Oracle(build_reference())


@pytest.fixture(scope="session")
def engine_library():
    from app.backends.ggml.library import load_library
    return load_library()


@pytest.fixture(scope="session")
def gemma3_270m() -> Path:
    from tools.assets import gemma3_270m_path
    return gemma3_270m_path()
