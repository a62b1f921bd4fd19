"""The tokenizers inside Pyodide (node and chrome) give llama.cpp's ids on llama.cpp's own
test vectors (models/ggml-vocab-*.gguf.inp/.out from the pinned sources), for a
SentencePiece vocabulary and three byte-level BPE ones with different pre-tokenizers; and
the streaming detokenizer gives back the text."""
from __future__ import annotations

import pytest
from pytest_pyodide import run_in_pyodide

VOCABS = ("llama-spm", "gpt-2", "qwen35", "phi-3")


@run_in_pyodide(packages=["pyllm-browser"])
async def _vectors_in_pyodide(selenium, base_url, vocab, separator):
    from pyodide.http import pyfetch

    from app.gguf import GGUFParser
    from app.tokenizer import Tokenizer

    name = f"ggml-vocab-{vocab}.gguf"

    async def get(suffix):
        return await (await pyfetch(f"{base_url}/testdata/{name}{suffix}")).bytes()

    data, inp, out = await get(""), (await get(".inp")).decode("utf-8"), (await get(".out")).decode("utf-8")
    parser = GGUFParser(name, len(data))
    parser.feed(data)
    tok = Tokenizer.from_metadata(parser.finish().metadata)
    outs = out.split("\n")
    vectors = [(t, [int(x) for x in outs[i].split()]) for i, t in enumerate(inp.split(separator))]
    failures = [(text, tok.encode(text, add_special=False), ids) for text, ids in vectors
                if tok.encode(text, add_special=False) != ids]
    assert not failures, f"{len(failures)} of {len(vectors)} vectors differ, first: {failures[0]!r}"
    # streaming detokenization of every vector gives the same text as the whole decode
    for text, ids in vectors:
        stream = tok.stream()
        pieces = "".join(stream.feed(i) for i in ids) + stream.flush()
        assert pieces == tok.decode(ids), text
    return len(vectors)


@pytest.mark.parametrize("vocab", VOCABS)
def test_tokenizer_in_pyodide_matches_llama_cpp(selenium, vocab):
    from tokenizer_support import VECTOR_SEP

    assert _vectors_in_pyodide(selenium, selenium.base_url, vocab, VECTOR_SEP) > 10
