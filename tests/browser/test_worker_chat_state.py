"""Saved conversations in the worker's Python side (the same code the page drives): a chat
saved after one turn and restored into a freshly loaded model continues exactly like the
uninterrupted chat (same greedy reply, and only the new turn's tokens are evaluated); a
conversation of another model, a corrupted or truncated one is refused with a clear
message and leaves the session as it was."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app.backends.ggml.runner import SnapshotError  # noqa: E402
from app.worker import WorkerSession  # noqa: E402
from test_worker_session import load  # noqa: E402

OPTS = {"max_tokens": 12, "ignore_eos": True}


def turn(s: WorkerSession, events: list[dict], rid: int, messages: list[dict]) -> tuple[dict, list[int]]:
    done = asyncio.run(s.generate(rid, messages, OPTS))
    return done, [e["token"] for e in events if e["type"] == "token" and e["id"] == rid and e["token"] >= 0]


@pytest.mark.parametrize("arch", ["llama", "mamba"])
def test_restored_chat_continues_exactly(arch: str) -> None:
    from tools.testmodels import tiny

    path = tiny(arch, "Q8_0")
    first = [{"role": "user", "content": "abc def"}]
    ev_a: list[dict] = []
    a = WorkerSession(ev_a.append)
    load(a, path, 1 << 20)
    done1, _ = turn(a, ev_a, 1, first)
    history = first + [{"role": "assistant", "content": done1["text"]}]
    saved = a.save_chat(history)
    second = history + [{"role": "user", "content": "ghi jkl"}]
    done2, tokens2 = turn(a, ev_a, 2, second)
    a.unload()

    ev_b: list[dict] = []
    b = WorkerSession(ev_b.append)
    load(b, path, 1 << 20)
    restored = b.restore_chat(saved)
    assert restored["messages"] == history
    assert ev_b[-1]["type"] == "restored" and restored["n_tokens"] > 0
    done2b, tokens2b = turn(b, ev_b, 2, second)
    assert tokens2b == tokens2
    # the history came from the saved state: only what the second turn adds was evaluated
    assert done2b["stats"]["n_eval"] == done2["stats"]["n_eval"] < done2["stats"]["n_prompt"]
    b.unload()


def test_bad_saved_chats_are_refused_and_change_nothing(tmp_path: Path) -> None:
    from tools.testmodels import tiny

    llama, qwen = tiny("llama", "Q8_0"), tiny("qwen3", "Q8_0")
    other = WorkerSession(lambda e: None)
    load(other, qwen, 1 << 20)
    asyncio.run(other.generate(1, [{"role": "user", "content": "x"}], {"max_tokens": 2}))
    foreign = other.save_chat([{"role": "user", "content": "x"}])
    other.unload()

    events: list[dict] = []
    s = WorkerSession(events.append)
    load(s, llama, 1 << 20)
    msgs = [{"role": "user", "content": "abc"}]
    asyncio.run(s.generate(1, msgs, {"max_tokens": 4, "ignore_eos": True}))
    good = s.save_chat(msgs)
    before = list(s.runner.tokens)
    corrupted = bytearray(good)
    corrupted[len(corrupted) // 2] ^= 0xFF
    cases = [(foreign, "another model"), (bytes(corrupted), "corrupted"), (good[: len(good) - 100], "truncated"),
             (good[:30], "truncated"), (b"<html>not a chat</html>", "not a saved conversation")]
    for data, message in cases:
        with pytest.raises(SnapshotError, match=message):
            s.restore_chat(data)
        assert list(s.runner.tokens) == before
    assert not [e for e in events if e["type"] == "restored"]
    # the session still works and still holds its conversation (the next turn reuses it)
    done = asyncio.run(s.generate(2, msgs + [{"role": "assistant", "content": "x"}], {"max_tokens": 2}))
    assert done["stats"]["n_eval"] < done["stats"]["n_prompt"]
    s.unload()
