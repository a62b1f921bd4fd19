"""Streaming detokenizer, detokenize and the Unicode class table."""
from __future__ import annotations

import re

import pytest

from tokenizer_support import corpus, gemma3_path, tokenizer, vocab_dir

from app.tokenizer.unicode_classes import LETTER, MARK, NUMBER, OTHER, PUNCT, SPACE, SYMBOL, representative


def _models():
    return [gemma3_path(), vocab_dir() / "ggml-vocab-qwen2.gguf", vocab_dir() / "ggml-vocab-llama-spm.gguf",
            vocab_dir() / "ggml-vocab-gemma-4.gguf"]


@pytest.mark.parametrize("model", _models(), ids=lambda p: p.name)
def test_stream_equals_one_shot_and_never_splits_a_character(model):
    tok = tokenizer(str(model))
    for text in corpus():
        ids = tok.encode(text, add_special=False, parse_special=True)
        one_shot = tok.decode(ids, special=True)
        stream = tok.stream(special=True)
        chunks = [stream.feed(i) for i in ids] + [stream.flush()]
        assert "".join(chunks) == one_shot
        # Valid UTF-8 in, so a U+FFFD out would mean a character was cut between tokens.
        assert "\ufffd" not in one_shot or "\ufffd" in text
        for c in chunks:
            c.encode("utf-8")  # whole characters only (a lone surrogate would raise)


def test_stream_holds_a_character_split_over_byte_tokens():
    tok = tokenizer(str(gemma3_path()))
    # An emoji that Gemma's vocab lacks falls back to four byte tokens.
    text = "\U0001fae8"
    ids = tok.encode(text, add_special=False)
    assert len(ids) == 4 and all(len(tok.token_to_piece(i)) == 1 for i in ids)
    stream = tok.stream()
    assert [stream.feed(i) for i in ids] == ["", "", "", text]
    assert stream.pending == 0 and stream.flush() == ""


def test_stream_flush_renders_an_unfinished_character():
    tok = tokenizer(str(gemma3_path()))
    ids = tok.encode("\U0001fae8", add_special=False)
    stream = tok.stream()
    assert stream.feed(ids[0]) == "" and stream.pending == 1
    assert stream.flush() == "\ufffd"


def test_special_tokens_hidden_unless_asked():
    tok = tokenizer(str(gemma3_path()))
    ids = tok.encode("<start_of_turn>user\nhi<end_of_turn>", add_special=True, parse_special=True)
    assert tok.decode(ids) == "user\nhi"
    assert tok.decode(ids, special=True) == "<bos><start_of_turn>user\nhi<end_of_turn>"


def test_detokenize_round_trip_and_space_cleanup():
    gemma = tokenizer(str(gemma3_path()))
    for text in corpus():
        if "\u2581" in text:  # SPM renders U+2581 as a space: not a round trip by design
            continue
        ids = gemma.encode(text, add_special=True)
        assert gemma.detokenize(ids, remove_special=True).decode("utf-8", "replace") == text
    gpt2 = tokenizer(str(vocab_dir() / "ggml-vocab-gpt-2.gguf"))  # clean_spaces is on for gpt-2
    ids = gpt2.encode("Hello , world ! It 's a ' quoted ' word .")
    assert gpt2.detokenize(ids) == b"Hello, world! It's a'quoted'word."
    # llama.cpp drops the SPM prefix space only when no BOS was stripped before it
    spm = tokenizer(str(vocab_dir() / "ggml-vocab-llama-spm.gguf"))
    assert spm.detokenize(spm.encode("Hello world", add_special=False)) == b"Hello world"
    assert spm.detokenize(spm.encode("Hello world"), remove_special=True) == b" Hello world"


def _llama_cpp_flag_table():
    """Codepoint ranges and category flags from the sdist's unicode-data.cpp."""
    src = (vocab_dir().parent / "src" / "unicode-data.cpp").read_text()
    body = src[src.index("unicode_ranges_flags"):src.index("unicode_set_whitespace")]
    return [(int(a, 16), int(f, 16)) for a, f in re.findall(r"\{0x([0-9A-F]+), 0x([0-9A-F]+)\}", body)]


def test_unicode_classes_agree_with_llama_cpp():
    """Same class as llama.cpp for every codepoint (its tables are Unicode 15.1; the pinned
    delta covers what this Python's unicodedata assigns differently)."""
    flag_to_rep = {0x02: NUMBER, 0x04: LETTER, 0x10: MARK, 0x20: PUNCT, 0x40: SYMBOL}
    ranges = _llama_cpp_flag_table()
    wrong = []
    for (start, flags), (end, _) in zip(ranges, ranges[1:]):
        want = flag_to_rep.get(flags & 0xFF, OTHER)
        for cp in range(max(start, 128), end):
            rep = representative(cp)
            if rep != want and rep != SPACE:
                wrong.append(hex(cp))
    assert not wrong, f"{len(wrong)} codepoints differ, e.g. {wrong[:10]}"
