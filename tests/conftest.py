"""Shared fixtures: the llama.cpp oracle, the engine, and the models tests run on."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "reference"))


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
