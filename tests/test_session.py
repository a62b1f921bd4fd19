"""Multi-turn chat sessions: state reuse across turns, exactness against from-scratch runs
and llama.cpp, regenerate/edit roll-back, cancellation, and dropping old turns."""
from __future__ import annotations

import pytest

import app
from app.generate import ContextFullError
from app.generate.sequence import common_prefix
from tools.testmodels import tiny


def render(messages, add_generation_prompt=True):
    """A chat format whose turn markers are the test vocabulary's control tokens."""
    out = "<s>" + "".join(f"{m['role']}:{m['content']}</s><s>" for m in messages)
    return out + ("assistant:" if add_generation_prompt else "")


@pytest.fixture(scope="module")
def model_path():
    return tiny("qwen3", "Q4_0")


@pytest.fixture(scope="module")
def llm(model_path):
    m = app.load(model_path, n_ctx=1024, threads=2)
    yield m
    m.close()


def _new_tokens(llm, text: str) -> list[int]:
    return llm.tokenize(text, add_special=False, parse_special=True)


def test_turn_two_prefills_only_new_tokens_and_matches_scratch(llm, model_path, llama_cpp):
    chat = llm.chat(system="be brief", render=render, temperature=0, max_tokens=10)
    r1 = chat.send("hello there")
    r1.read()
    assert r1.stats.cached_tokens == 0 and r1.stats.prefill_tokens == r1.stats.prompt_tokens
    r2 = chat.send("and then?")
    r2.read()
    new = _new_tokens(llm, "</s><s>user:and then?</s><s>assistant:")
    # the reply's last token is evaluated only when the next turn needs it (not after an EOS stop)
    unevaluated = 1 if r1.stop_reason == "length" else 0
    assert r2.prompt_tokens == r1.prompt_tokens + r1.tokens + new
    assert r2.stats.prefill_tokens == len(new) + unevaluated
    assert r2.stats.cached_tokens == r2.stats.prompt_tokens - len(new) - unevaluated

    # the same tokens from scratch: our engine with a fresh state, and llama.cpp
    history = r2.prompt_tokens
    llm.reset()
    scratch = llm.complete(history, temperature=0, max_tokens=10)
    scratch.read()
    assert scratch.stats.cached_tokens == 0
    assert scratch.tokens == r2.tokens
    ref = llama_cpp.eval(model_path, history, len(r2.tokens) + 1, threads=2)
    assert ref.tokens[:len(r2.tokens)] == r2.tokens


def test_regenerate_and_edit_roll_back(llm):
    chat = llm.chat(render=render, temperature=0, max_tokens=6)
    chat.send("first question").read()
    r2 = chat.send("second question")
    r2.read()
    again = chat.regenerate()
    again.read()
    assert again.text == r2.text and again.prompt_tokens == r2.prompt_tokens
    assert again.stats.prefill_tokens == 1  # only the last prompt token, for its logits
    assert [m["role"] for m in chat.messages] == ["user", "assistant", "user", "assistant"]

    edited = chat.edit_last("another question")
    edited.read()
    assert chat.messages[2] == {"role": "user", "content": "another question"}
    assert len(chat.messages) == 4 and chat.messages[3]["content"] == edited.text
    shared = common_prefix(r2.prompt_tokens, edited.prompt_tokens)
    assert edited.stats.cached_tokens == shared and edited.stats.prefill_tokens == len(edited.prompt_tokens) - shared

    # sampled regeneration with a seed is reproducible and leaves one reply in the history
    a = chat.regenerate(temperature=1.0, seed=7)
    a.read()
    b = chat.regenerate(temperature=1.0, seed=7)
    b.read()
    assert a.text == b.text and len(chat.messages) == 4


def test_cancel_keeps_the_session_usable(llm):
    chat = llm.chat(render=render, temperature=0, max_tokens=20)
    chat.send("one").read()
    reply = chat.send("two")
    for _ in reply:
        if len(reply.tokens) >= 2:
            reply.cancel()
    assert reply.stop_reason == "cancelled"
    assert chat.messages[-1] == {"role": "assistant", "content": reply.text}  # a partial reply stays

    before = list(chat.messages)
    cancelled = chat.send("three", cancel=lambda: True)  # cancelled before any token
    assert cancelled.read() == "" and cancelled.stop_reason == "cancelled"
    assert chat.messages == before  # the unanswered message is taken back

    nxt = chat.send("four")
    nxt.read()
    assert nxt.stop_reason in ("length", "eos") and chat.messages[-2]["content"] == "four"


def test_unfinished_reply_is_settled_by_the_next_send(llm):
    chat = llm.chat(render=render, temperature=0, max_tokens=20)
    first = chat.send("one")
    next(iter(first))  # abandoned after one piece
    second = chat.send("two")
    second.read()
    assert first.stop_reason == "cancelled"
    assert [m["role"] for m in chat.messages] == ["user", "assistant", "user", "assistant"]


def test_context_full_in_a_chat(model_path):
    small = app.load(model_path, n_ctx=256, threads=2)
    try:
        long = " ".join(["abc def"] * 25)
        chat = small.chat(render=render, temperature=0, max_tokens=30)
        with pytest.raises(ContextFullError, match="does not fit the context of 256"):
            for _ in range(6):
                chat.send(long).read()
        dropping = small.chat(render=render, temperature=0, max_tokens=30, on_context_full="drop_oldest")
        for _ in range(6):
            r = dropping.send(long)
            r.read()
            assert r.stop_reason in ("length", "eos")
            assert r.stats.prompt_tokens + len(r.tokens) <= small.n_ctx
        assert dropping.first_kept > 0 and len(dropping.messages) == 12
    finally:
        small.close()


def test_default_template(llm):
    chat = llm.chat(system="You are terse.", temperature=0, max_tokens=5)
    reply = chat.send("hi")
    assert reply.read() == reply.text and reply.stop_reason in ("length", "eos")
    assert chat.messages[0] == {"role": "system", "content": "You are terse."}


def test_gemma3_chat_reuses_state_and_matches_llama_cpp(gemma3_270m, llama_cpp):
    """The real Gemma 3 270M with its (fallback) chat template: turn 2 prefills only the
    turn's new tokens, and its greedy reply is llama.cpp's on the whole history."""
    llm = app.load(gemma3_270m, n_ctx=1024, threads=2)
    try:
        chat = llm.chat(system="Answer briefly.", temperature=0, max_tokens=12)
        r1 = chat.send("What is the capital of France?")
        r1.read()
        r2 = chat.send("And of Italy?")
        r2.read()
    finally:
        llm.close()
    assert r2.prompt_tokens[:len(r1.prompt_tokens) + len(r1.tokens)] == r1.prompt_tokens + r1.tokens
    unevaluated = 1 if r1.stop_reason == "length" else 0
    new = len(r2.prompt_tokens) - len(r1.prompt_tokens) - len(r1.tokens)
    assert 0 < new < 20 and r2.stats.prefill_tokens == new + unevaluated
    ref = llama_cpp.eval(gemma3_270m, r2.prompt_tokens, len(r2.tokens) + 1, threads=2)
    assert ref.tokens[:len(r2.tokens)] == r2.tokens


def test_recurrent_model_chat_uses_a_snapshot(llama_cpp):
    """Mamba's state cannot roll back: turn 2 still extends it, and regenerate restarts from
    the snapshot taken before the prompt's last token instead of from scratch."""
    path = tiny("mamba", "F32")
    llm = app.load(path, n_ctx=512, threads=2)
    try:
        chat = llm.chat(render=render, temperature=0, max_tokens=6)
        r1 = chat.send("hello")
        r1.read()
        r2 = chat.send("more")
        r2.read()
        unevaluated = 1 if r1.stop_reason == "length" else 0
        assert r2.stats.cached_tokens == len(r1.prompt_tokens) + len(r1.tokens) - unevaluated
        again = chat.regenerate()
        again.read()
        assert again.stats.prefill_tokens == 1 and again.tokens == r2.tokens
        edited = chat.edit_last("other")  # restarts from turn 1's snapshot
        edited.read()
        assert edited.stats.cached_tokens == len(r1.prompt_tokens) - 1
        llm.reset()
        scratch = llm.complete(edited.prompt_tokens, temperature=0, max_tokens=6)
        scratch.read()
        assert scratch.tokens == edited.tokens
    finally:
        llm.close()
    ref = llama_cpp.eval(path, r2.prompt_tokens, len(r2.tokens) + 1, threads=2)
    assert ref.tokens[:len(r2.tokens)] == r2.tokens
