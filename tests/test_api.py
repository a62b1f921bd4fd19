"""The public API (app.load, LLM, chat, complete) and the CLI's chat/complete modes:
surface, argument checking before any work, and end-to-end runs."""
from __future__ import annotations

import io
import math
import subprocess
import sys

import pytest

import app
from app.cli import main
from app.generate import OptionError
from tools.testmodels import tiny


@pytest.fixture(scope="module")
def model_path():
    return str(tiny("gemma3", "Q8_0"))


@pytest.fixture(scope="module")
def llm(model_path):
    m = app.load(model_path, n_ctx=512, threads=2)
    yield m
    m.close()


BAD = [
    (dict(temperature=-0.1), "temperature must be >= 0"),
    (dict(temperature=math.nan), "temperature must be a number"),
    (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
    (dict(top_p=1.5), r"top_p must be in \(0, 1\]"),
    (dict(max_tokens=0), "max_tokens must be a positive integer"),
    (dict(max_tokens=-3), "max_tokens must be a positive integer"),
    (dict(top_k=-1), "top_k must be >= 0"),
    (dict(min_p=2.0), r"min_p must be in \[0, 1\]"),
    (dict(repeat_penalty=0.0), "repeat_penalty must be > 0"),
    (dict(seed=-5), "seed must be an integer"),
    (dict(stop=[""]), "stop strings must not be empty"),
    (dict(logit_bias={5000: 1.0}), "outside the vocabulary of 1024"),
    (dict(on_context_full="wrap"), "on_context_full must be one of"),
    (dict(temprature=0.5), "unknown option 'temprature' \\(did you mean 'temperature'\\?\\)"),
    (dict(bogus=1), "unknown option 'bogus'"),
]


@pytest.mark.parametrize("options,message", BAD, ids=[m for _, m in BAD])
def test_bad_arguments_fail_before_any_work(llm, options, message):
    steps = llm.runner.stats.steps
    with pytest.raises(OptionError, match=message):
        llm.complete("hello", **options)
    chat = llm.chat()
    with pytest.raises(OptionError, match=message):
        chat.send("hello", **options)
    assert chat.messages == []
    with pytest.raises(OptionError, match=message):
        llm.chat(**options)
    assert llm.runner.stats.steps == steps  # nothing was evaluated


def test_api_surface(llm):
    ids = llm.tokenize("hello world")
    assert ids[0] == llm.tokenizer.bos_id and llm.detokenize(ids[1:]).strip() == "hello world"
    assert llm.n_vocab == 1024 and llm.n_ctx == 512
    chat = llm.chat(system="short answers", temperature=0, max_tokens=6)
    reply = chat.send("hi")
    pieces = [p.text for p in reply]
    assert "".join(pieces) == reply.text and reply.stop_reason in ("length", "eos")
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant"]
    text = llm.complete("once upon", max_tokens=8, seed=1).read()
    assert isinstance(text, str)
    assert app.Reply is type(reply) and app.ChatSession is type(chat)
    with pytest.raises(OptionError, match="by URL"):
        app.load("https://example.com/model.gguf")


def test_import_app_stays_light():
    code = "import sys, app.gguf; print('app.generate' in sys.modules, 'ctypes' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_cli_complete(model_path, capsys):
    assert main(["complete", "--model", model_path, "--prompt", "hello", "-n", "6", "--seed", "4",
                 "--temperature", "0.9"]) == 0
    out, err = capsys.readouterr()
    assert out and "[length | prompt" in err and "seed 4" in err
    assert main(["complete", "--model", model_path, "--prompt", "hello", "--top-p", "0"]) == 2
    assert "top_p must be in (0, 1]" in capsys.readouterr().err


def test_cli_chat_reads_turns_and_commands(model_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\nand more\n/regen\n/undo\n/quit\n"))
    assert main(["chat", "--model", model_path, "--system", "be brief", "-n", "5", "--temperature", "0"]) == 0
    out, err = capsys.readouterr()
    lines = [l for l in err.splitlines() if l.startswith("[")]
    assert len(lines) == 3  # two replies and a regeneration, each with its stats line
    assert "(0 cached" in lines[0] and "(0 cached" not in lines[1]


def test_llm_around_an_existing_runner(model_path):
    """What the browser worker does: build the runner itself (streamed weights), then use
    the same chat API on it."""
    from app.backends.ggml.runner import GGMLRunner
    from app.generate import LLM
    from app.gguf import read_gguf
    from app.models import model_for

    runner = GGMLRunner(model_for(read_gguf(model_path)), model_path, n_threads=1, n_ctx=256)
    llm = LLM(runner)
    try:
        reference = app.load(model_path, n_ctx=256, threads=1)
        try:
            want = reference.complete("hello", temperature=0, max_tokens=6)
            want.read()
        finally:
            reference.close()
        got = llm.complete("hello", temperature=0, max_tokens=6)
        assert got.read() == want.text and got.tokens == want.tokens
        assert llm.chat(temperature=0, max_tokens=3).send("hi").read() is not None
    finally:
        llm.close()
