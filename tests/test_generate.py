"""The generation loop: stop strings, stop reasons, streaming, cancellation, stats,
context limits, and greedy decoding against llama.cpp."""
from __future__ import annotations

import pytest

import app
from app.generate import ContextFullError
from app.generate.stops import StopMatcher
from tools.testmodels import tiny


@pytest.fixture(scope="module")
def model_path():
    return tiny("llama", "Q8_0")


@pytest.fixture(scope="module")
def llm(model_path):
    m = app.load(model_path, n_ctx=2048, threads=2)
    yield m
    m.close()


# -- stop strings -----------------------------------------------------------------------------------

def _run(matcher: StopMatcher, chunks: list[str]) -> tuple[str, str | None]:
    out = "".join(matcher.feed(c) for c in chunks)
    if matcher.matched is None:
        out += matcher.flush()
    return out, matcher.matched


def test_stop_string_across_chunks_is_never_emitted():
    assert _run(StopMatcher(["END"]), ["abc E", "N", "D tail"]) == ("abc ", "END")
    assert _run(StopMatcher(["\n\nUser:"]), ["hi\n", "\nUs", "er:", "x"]) == ("hi", "\n\nUser:")


def test_text_is_held_only_while_a_match_is_possible():
    m = StopMatcher(["END"])
    assert m.feed("abc E") == "abc "   # "E" might start END
    assert m.feed("x") == "Ex"         # it did not
    assert m.feed("EN") == ""
    assert m.feed("ough") == "ENough"
    assert _run(StopMatcher(["END"]), ["abc EN"]) == ("abc EN", None)  # end of reply: held text is text


def test_earliest_of_several_stops_wins():
    assert _run(StopMatcher(["bar", "o b"]), ["foo bar"]) == ("fo", "o b")
    assert _run(StopMatcher([]), ["a", "b"]) == ("ab", None)


# -- the loop on a real (random-weight) model ---------------------------------------------------------

def test_greedy_completion_matches_llama_cpp(llm, model_path, llama_cpp):
    prompt = llm.tokenize("the quick brown fox")
    ref = llama_cpp.eval(model_path, prompt, 24, threads=2)
    reply = llm.complete(prompt, temperature=0, max_tokens=24)
    reply.read()
    n = len(reply.tokens)
    assert reply.tokens == ref.tokens[:n]
    if reply.stop_reason == "eos":
        assert ref.tokens[n] == reply.stop_token
    else:
        assert reply.stop_reason == "length" and n == 24


def test_stream_pieces_add_up(llm):
    reply = llm.complete("hello", max_tokens=30, seed=5)
    pieces = list(reply)
    assert "".join(p.text for p in pieces) == reply.text == llm.detokenize(reply.tokens)
    assert [t for p in pieces for t in p.token_ids] == reply.tokens
    assert all(a.t_ms <= b.t_ms for a, b in zip(pieces, pieces[1:]))
    assert reply.stop_reason == "length" and len(reply.tokens) == 30 and reply.seed == 5
    s = reply.stats
    assert s.generated_tokens == 30 and s.decode_steps == 29
    assert s.prompt_tokens == len(llm.tokenize("hello")) == s.prefill_tokens + s.cached_tokens
    assert s.prefill_ms > 0 and s.decode_ms > 0 and s.decode_tok_s > 0 and 0 < s.ttft_ms <= s.total_ms


def test_async_stream_is_the_same_stream(llm):
    import asyncio

    async def collect(reply):
        return [p.text async for p in reply.astream()]

    sync = llm.complete("hello", max_tokens=12, seed=8)
    pieces = [p.text for p in sync]
    texts = asyncio.run(collect(llm.complete("hello", max_tokens=12, seed=8)))
    assert texts == pieces and "".join(texts) == sync.text and len(texts) > 3


def test_seeded_replies_repeat(llm):
    a = llm.complete("hello", max_tokens=20, seed=11, temperature=1.0).read()
    b = llm.complete("hello", max_tokens=20, seed=11, temperature=1.0).read()
    c = llm.complete("hello", max_tokens=20, seed=12, temperature=1.0).read()
    assert a == b != c


def test_stop_reasons(llm):
    eos = llm.tokenizer.eos_id
    r = llm.complete("hello", logit_bias={eos: 100.0}, max_tokens=5)
    assert r.read() == "" and r.stop_reason == "eos" and r.stop_token == eos and r.tokens == []
    # a stop string taken from what greedy decoding will say, cut across tokens
    free = llm.complete("hello", temperature=0, max_tokens=12)
    free.read()
    text = free.text
    stop = text[3:6]
    r = llm.complete("hello", temperature=0, max_tokens=12, stop=[stop])
    assert r.read() == text[:text.index(stop)] and r.stop_reason == "stop" and r.stop_string == stop
    # ignore_eos: the end token can never be drawn, even when it is the likeliest
    r = llm.complete("hello", logit_bias={eos: 100.0}, ignore_eos=True, max_tokens=4)
    assert r.read() and r.stop_reason == "length" and eos not in r.tokens


def test_cancel_between_tokens_then_reuse(llm):
    reply = llm.complete("hello", max_tokens=50, seed=1)
    got = []
    for piece in reply:
        got.append(piece)
        if len(reply.tokens) >= 3:
            reply.cancel()
    assert reply.stop_reason == "cancelled" and len(reply.tokens) == 3
    nxt = llm.complete("hello", max_tokens=5, temperature=0)
    assert nxt.read() is not None and nxt.stop_reason == "length"
    assert nxt.stats.cached_tokens == len(llm.tokenize("hello")) - 1


def test_breaking_out_of_the_loop_cancels(llm):
    reply = llm.complete("hello", max_tokens=50, seed=1)
    for _ in reply:
        break
    other = llm.complete("hello", max_tokens=3, temperature=0)  # ends the abandoned reply
    assert reply.done and reply.stop_reason == "cancelled"
    never = llm.complete("hello", max_tokens=3, temperature=0)  # ends `other` before it started
    assert other.done and other.stop_reason == "cancelled" and list(other) == [] and other.read() == ""
    assert never.read() is not None and never.stop_reason == "length"


def test_cancel_during_long_prefill_keeps_finished_batches(llm):
    prompt = [1] + [300 + (i * 7) % 700 for i in range(1299)]  # 1300 tokens: 3 prefill batches
    llm.reset()
    progress = []

    def on_prefill(done, total):
        progress.append((done, total))

    reply = llm.complete(prompt, max_tokens=5, on_prefill=on_prefill, cancel=lambda: len(progress) >= 1)
    assert reply.read() == "" and reply.stop_reason == "cancelled"
    assert progress == [(512, 1300)] and reply.stats.prefill_tokens == 512
    again = llm.complete(prompt, max_tokens=2, temperature=0)
    again.read()
    assert again.stop_reason == "length"
    assert again.stats.cached_tokens == 512 and again.stats.prefill_tokens == 1300 - 512


def test_context_full_is_a_clear_error_by_default(model_path):
    small = app.load(model_path, n_ctx=256, threads=2)
    try:
        with pytest.raises(ContextFullError, match="does not fit the context of 256"):
            small.complete([1] + [400] * 300, max_tokens=4)
        reply = small.complete([1] + [400 + i % 300 for i in range(239)], max_tokens=100, seed=3, temperature=2.0,
                               top_k=0, min_p=0.0, top_p=1.0)
        with pytest.raises(ContextFullError, match="context full") as err:
            reply.read()
        assert err.value.reply is reply and reply.stop_reason == "context_full"
        assert len(reply.tokens) == 256 - 240 + 1
        # drop_oldest: keep the BOS, drop the oldest half, and go on
        reply = small.complete([1] + [400 + i % 300 for i in range(239)], max_tokens=100, seed=3,
                               temperature=2.0, top_k=0, min_p=0.0, top_p=1.0, on_context_full="drop_oldest")
        reply.read()
        assert reply.stop_reason in ("length", "eos") and reply.stats.dropped_tokens > 0
        assert len(reply.tokens) == 100 or reply.stop_reason == "eos"
    finally:
        small.close()
