"""Models the runtime cannot run are refused at load time with a message naming what is wrong
and what is supported; nothing half-loads."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.backends.ggml.library import EngineError
from app.backends.ggml.runner import SUPPORTED_TYPES, GGMLRunner
from app.gguf import GGUFError, read_gguf
from app.models import ARCHITECTURES, ModelError, model_for
from tools.testmodels import TINY, _tensors, _vocab, gguf, tiny


def _write(path, arch: str, tensors, extra_kv=None):
    s = TINY["llama"]
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(256)
    w.add_embedding_length(s.n_embd)
    w.add_block_count(s.n_layer)
    w.add_feed_forward_length(s.n_ff)
    w.add_head_count(s.n_head)
    w.add_head_count_kv(s.n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    tokens, scores, types = _vocab(s.n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    for name, arr, raw in tensors:
        w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _llama_tensors(replace: dict | None = None):
    out = []
    for name, arr in _tensors(TINY["llama"], 0):
        if replace and name in replace:
            out.append((name, *replace[name]))
        else:
            out.append((name, arr, None))
    return out


def test_unsupported_architecture_is_refused_with_the_supported_list(tmp_path):
    path = _write(tmp_path / "m.gguf", "rwkv7", _llama_tensors())
    with pytest.raises(ModelError) as e:
        model_for(read_gguf(str(path)))
    msg = str(e.value)
    assert "unsupported architecture 'rwkv7'" in msg
    for arch in ARCHITECTURES:
        assert arch in msg


def test_unsupported_tensor_type_is_refused_at_load(tmp_path):
    # IQ2_XXS: 256 values in 66 bytes per block; ggml can store it but it's not on our list
    raw = np.zeros((512, 66), dtype=np.uint8)
    path = _write(tmp_path / "m.gguf", "llama",
                  _llama_tensors({"blk.0.ffn_up.weight": (raw, gguf.GGMLQuantizationType.IQ2_XXS)}))
    model = model_for(read_gguf(str(path)))
    with pytest.raises(EngineError) as e:
        GGMLRunner(model, str(path))
    msg = str(e.value)
    assert "IQ2_XXS" in msg and "blk.0.ffn_up.weight" in msg
    for t in SUPPORTED_TYPES:
        assert t in msg


def test_missing_tensor_is_named(tmp_path):
    tensors = [t for t in _llama_tensors() if t[0] != "blk.1.ffn_down.weight"]
    path = _write(tmp_path / "m.gguf", "llama", tensors)
    with pytest.raises(ModelError, match=r"needs tensors blk\.1\.ffn_down\.weight"):
        model_for(read_gguf(str(path)))


def test_missing_hyperparameter_is_named(tmp_path):
    src = tiny("qwen3", "Q8_0")
    g = read_gguf(str(src))
    md = dict(g.metadata)
    del md["qwen3.block_count"]
    g.metadata = md
    with pytest.raises(ModelError, match=r"missing metadata 'qwen3\.block_count'"):
        model_for(g)


def test_truncated_download_is_refused_before_loading(tmp_path):
    src = tiny("llama", "Q4_0")
    data = src.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) - 1000])
    with pytest.raises(GGUFError, match="lies outside the file"):
        read_gguf(str(cut))


def test_not_a_gguf_file(tmp_path):
    bad = tmp_path / "page.gguf"
    bad.write_bytes(b"<!doctype html><title>404</title>" + b"\0" * 64)
    with pytest.raises(GGUFError, match="not a GGUF file"):
        read_gguf(str(bad))


def test_engine_reports_a_short_file_instead_of_reading_garbage(tmp_path):
    src = tiny("llama", "F16")
    copy = tmp_path / "m.gguf"
    shutil.copy(src, copy)
    model = model_for(read_gguf(str(copy)))  # header read while the file was whole
    with open(copy, "r+b") as f:
        f.truncate(copy.stat().st_size - 4096)
    with pytest.raises(EngineError, match="short read"):
        GGMLRunner(model, str(copy))
