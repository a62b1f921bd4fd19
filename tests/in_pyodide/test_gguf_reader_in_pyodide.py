"""The GGUF reader inside Pyodide (node and chrome): the header of real files, fed in odd
chunk sizes, reads exactly as the host reader reads it (which tests/test_gguf_reader.py
checks against gguf-py); damaged files give the same clear errors."""
from __future__ import annotations

import hashlib
import json

import pytest
from pytest_pyodide import run_in_pyodide

from app.gguf import read_gguf

FILES = ("tiny-llama", "tiny-qwen35", "tiny-mamba", "ggml-vocab-llama-spm.gguf", "ggml-vocab-qwen35.gguf")


def _summary(g) -> list:
    meta = json.dumps(g.metadata, sort_keys=True, default=repr)
    tensors = json.dumps([(t.name, t.type_name, list(t.shape), t.offset, t.nbytes) for t in g.tensors])
    return [g.version, g.alignment, g.data_offset, len(g.tensors), hashlib.sha256((meta + tensors).encode()).hexdigest()]


def _host_files() -> dict[str, str]:
    from tools.testmodels import tiny
    from wasm_ext.sources import llama_cpp_dir

    out = {}
    for arch, t in (("llama", "Q4_K"), ("qwen35", "Q8_0"), ("mamba", "Q4_0")):
        out[f"tiny-{arch}"] = str(tiny(arch, t))
    for name in FILES[3:]:
        out[name] = str(llama_cpp_dir() / "models" / name)
    return out


@run_in_pyodide(packages=["pyllm-browser"])
async def _read_in_pyodide(selenium, base_url, name, expected):
    import hashlib
    import json

    from pyodide.http import pyfetch

    from app.gguf import GGUFError, GGUFParser

    data = await (await pyfetch(f"{base_url}/testdata/{name}")).bytes()
    parser = GGUFParser(name, len(data))
    step, pos = 1, 0
    while pos < len(data) and not parser.feed(data[pos:pos + step]):  # 1, 3, 9, ... byte chunks
        pos += step
        step = min(step * 3, 1 << 20)
    g = parser.finish()
    meta = json.dumps(g.metadata, sort_keys=True, default=repr)
    tensors = json.dumps([(t.name, t.type_name, list(t.shape), t.offset, t.nbytes) for t in g.tensors])
    got = [g.version, g.alignment, g.data_offset, len(g.tensors),
           hashlib.sha256((meta + tensors).encode()).hexdigest()]
    assert got == expected, (got, expected)

    errors = []
    for bad in (data[: g.data_offset // 2], b"<!doctype html><html>not a model</html>" * 4):
        p = GGUFParser("bad.gguf", len(bad))
        try:
            p.feed(bad)
            p.finish()
        except GGUFError as e:
            errors.append(str(e))
    return errors


@pytest.mark.parametrize("name", FILES)
def test_reader_in_pyodide_matches_the_host(selenium, name):
    host_path = _host_files()[name]
    expected = _summary(read_gguf(host_path))
    url_name = host_path.rsplit("/", 1)[1]
    errors = _read_in_pyodide(selenium, selenium.base_url, url_name, expected)
    assert len(errors) == 2
    assert "truncated" in errors[0] and "bad.gguf" in errors[0], errors
    assert "GGUF" in errors[1], errors
