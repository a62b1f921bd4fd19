"""Tokenizer exactness against llama.cpp: the sdist's test vectors, a 400-string corpus on
Gemma 3 270M and every sdist vocab, token_to_piece of every id, stop ids, refusal of
unsupported types. Expected outputs not in the sdist were produced by llama.cpp itself
(tests/fixtures/tokenizer/build_expected.py)."""
from __future__ import annotations

import json
import time

import pytest

from tokenizer_support import (FIXTURES, PRE_CHECK_VOCAB, corpus, corpus_digest, gemma3_path, ids_digest, metadata,
                               pieces_digest, read_vectors, tokenizer, vector_files, vocab_dir, vocab_files)

from app.tokenizer import SUPPORTED_MODELS, Tokenizer, TokenizerError

REQUIRED_VECTORS = {"llama-bpe", "llama-spm", "qwen2", "qwen35", "gpt-2", "falcon", "deepseek-llm", "deepseek-coder",
                    "starcoder", "refact", "command-r", "mpt", "phi-3", "gemma-4"}
MODES = {"add1_parse0": (True, False), "add0_parse1": (False, True)}


def _name(p) -> str:
    return p.name[len("ggml-vocab-"):-len(".gguf")]


def _supported(p) -> bool:
    return metadata(str(p)).get("tokenizer.ggml.model") in SUPPORTED_MODELS


def test_required_vector_vocabs_are_supported():
    have = {_name(p) for p in vector_files() if _supported(p)}
    assert REQUIRED_VECTORS <= have, f"missing: {REQUIRED_VECTORS - have}"


@pytest.mark.parametrize("vocab", vector_files(), ids=_name)
def test_sdist_vectors(vocab):
    if not _supported(vocab):
        model = metadata(str(vocab))["tokenizer.ggml.model"]
        with pytest.raises(TokenizerError, match=f"tokenizer.ggml.model = '{model}' is not supported"):
            tokenizer(str(vocab))
        return
    tok = tokenizer(str(vocab))
    failures = [(text, tok.encode(text, add_special=False), ids) for text, ids in read_vectors(vocab)
                if tok.encode(text, add_special=False) != ids]
    assert not failures, f"{len(failures)} vectors differ, first: {failures[0]!r}"


@pytest.mark.parametrize("mode", MODES)
def test_gemma3_corpus_matches_llama_cpp(mode):
    expected = json.loads((FIXTURES / "gemma3_corpus_ids.json").read_text())[mode]
    texts = corpus()
    assert len(texts) >= 300 and "" in texts
    tok = tokenizer(str(gemma3_path()))
    add, parse = MODES[mode]
    bad = [(t, tok.encode(t, add, parse), e) for t, e in zip(texts, expected) if tok.encode(t, add, parse) != e]
    assert not bad, f"{len(bad)} strings differ, first: {bad[0]!r}"


def _corpus_vocabs():
    digests = json.loads((FIXTURES / "vocab_corpus.json").read_text())
    return [p for p in vocab_files() if p.name in digests]


@pytest.mark.parametrize("vocab", _corpus_vocabs(), ids=_name)
def test_vocab_corpus_matches_llama_cpp(vocab):
    expected = json.loads((FIXTURES / "vocab_corpus.json").read_text())[vocab.name]
    tok = tokenizer(str(vocab))
    texts = corpus()
    for mode, (add, parse) in MODES.items():
        bad = [t for t, d in zip(texts, expected[mode]) if ids_digest(tok.encode(t, add, parse)) != d]
        assert not bad, f"{mode}: {len(bad)} strings differ, first: {bad[0]!r}"


PRE_EXPECTED = json.loads((FIXTURES / "pre_corpus.json").read_text())


@pytest.mark.parametrize("pre", sorted(PRE_EXPECTED))
def test_every_pre_tokenizer_matches_llama_cpp(pre):
    """Each supported tokenizer.ggml.pre on one BPE vocab, against llama.cpp on the corpus."""
    md = {**metadata(str(vocab_dir() / PRE_CHECK_VOCAB)), "tokenizer.ggml.pre": pre}
    tok = Tokenizer.from_metadata(md)
    texts = corpus()
    for mode, (add, parse) in MODES.items():
        assert corpus_digest([tok.encode(t, add, parse) for t in texts]) == PRE_EXPECTED[pre][mode], mode


def test_pre_tokenizer_table_fully_checked():
    from app.tokenizer import supported_pre_tokenizers
    assert set(supported_pre_tokenizers()) - set(PRE_EXPECTED) == {"gemma4"}  # gemma4: its own vocab file


def _piece_models():
    names = json.loads((FIXTURES / "pieces.json").read_text())
    return [gemma3_path()] + [p for p in vocab_files() if p.name in names]


@pytest.mark.parametrize("model", _piece_models(), ids=lambda p: p.name)
def test_token_to_piece_every_id(model):
    expected = json.loads((FIXTURES / "pieces.json").read_text())[model.name]
    tok = tokenizer(str(model))
    for mode, special in (("special", True), ("plain", False)):
        got = pieces_digest([tok.token_to_piece(i, special) for i in range(tok.n_vocab)])
        assert got == expected[mode], f"token_to_piece(special={special}) differs from llama.cpp"


def test_stop_ids():
    gemma = tokenizer(str(gemma3_path()))
    assert (gemma.bos_id, gemma.eos_id) == (2, 1)
    assert gemma.token_text(gemma.eot_id) == "<end_of_turn>"
    assert {1, gemma.eot_id} <= gemma.stop_ids and gemma.is_stop(gemma.eot_id)
    assert gemma.add_bos and not gemma.add_eos

    vocabs = {_name(p): p for p in vocab_files()}
    qwen = tokenizer(str(vocabs["qwen2"]))
    assert {qwen.token_text(i) for i in qwen.stop_ids} >= {"<|endoftext|>", "<|im_end|>"}
    llama3 = tokenizer(str(vocabs["llama-bpe"]))
    assert llama3.token_text(llama3.eot_id) == "<|eot_id|>" and llama3.eot_id in llama3.stop_ids
    assert llama3.add_bos and llama3.encode("hi")[0] == llama3.bos_id


def test_unsupported_types_are_refused():
    base = dict(metadata(str(next(p for p in vocab_files() if _name(p) == "gpt-2"))))
    for model in ("rwkv", "plamo2", "no_vocab", None):
        with pytest.raises(TokenizerError, match="is not supported; supported: 'llama'"):
            Tokenizer.from_metadata({**base, "tokenizer.ggml.model": model})
    with pytest.raises(TokenizerError, match="tokenizer.ggml.pre = 'no-such-pre' is not supported.*qwen2"):
        Tokenizer.from_metadata({**base, "tokenizer.ggml.pre": "no-such-pre"})
    with pytest.raises(TokenizerError, match="tokenizer.ggml.merges is missing"):
        Tokenizer.from_metadata({k: v for k, v in base.items() if k != "tokenizer.ggml.merges"})
    with pytest.raises(TokenizerError, match="tokenizer.ggml.tokens"):
        Tokenizer.from_metadata({"tokenizer.ggml.model": "gpt2"})


def test_gemma3_vocab_builds_under_a_second():
    md = metadata(str(gemma3_path()))
    t0 = time.perf_counter()
    tok = Tokenizer.from_metadata(md)
    elapsed = time.perf_counter() - t0
    assert tok.n_vocab == 262144
    assert elapsed < 1.0, f"building the 262k vocab took {elapsed:.2f} s"
