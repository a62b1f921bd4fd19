"""The sampler inside Pyodide (node and chrome), on the engine's wasm side module loaded
from its wheel the way the page loads it: the same seeds draw exactly the tokens the
native engine draws from the same logits, for every sampler chain."""
from __future__ import annotations

import json

from pytest_pyodide import run_in_pyodide


@run_in_pyodide(packages=["pyllm-browser", "pyllm-engine-wasm"])
def _draws_in_pyodide(selenium, code):
    import os

    import pyllm_engine_wasm

    os.environ["PYLLM_ENGINE_LIB"] = pyllm_engine_wasm.LIBRARY
    scope = {}
    exec(code, scope)
    return scope["json"].dumps(scope["out"])


def test_sampler_in_pyodide_draws_the_native_tokens(selenium):
    from test_sampling_pyodide import CODE, _host

    wasm = json.loads(_draws_in_pyodide(selenium, CODE))
    native = json.loads(_host())
    assert wasm.keys() == native.keys()
    for key in native:
        assert wasm[key] == native[key], key
    assert len(set(native["1000/0"])) > 5  # the draws are really random ones
