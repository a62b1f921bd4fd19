"""The worker's Python side on the host (native engine): streamed loading in odd chunk
sizes, token events, cancel, prefix reuse across chat turns, and clear errors for
truncated and non-GGUF streams. The same code runs in the browser worker."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from app.gguf import GGUFError  # noqa: E402
from app.worker import WorkerSession  # noqa: E402


def load(session: WorkerSession, path: Path, chunk: int, limit: int | None = None) -> dict:
    """Stream the file (its first `limit` bytes: a download cut short; the announced size
    stays the whole file's, as a Content-Length would)."""
    data = path.read_bytes()
    size = len(data)
    data = data[:limit]
    ms = session.begin_load(path.name, size)
    for i in range(0, len(data), chunk):
        ms.feed(data[i:i + chunk])
    return session.finish_load()


@pytest.fixture(scope="module")
def model() -> Path:
    from tools.testmodels import tiny
    return tiny("llama", "Q4_0")


def greedy_native(path: Path, prompt: list[int], n: int) -> list[int]:
    from app.backends.ggml.runner import GGMLRunner
    from app.gguf import read_gguf
    from app.models import model_for

    r = GGMLRunner(model_for(read_gguf(str(path))), str(path), n_threads=1, n_ctx=512)
    r.eval(prompt)
    out = [r.argmax()]
    for _ in range(n - 1):
        r.eval([out[-1]])
        out.append(r.argmax())
    r.close()
    return out


@pytest.mark.parametrize("chunk", [1 << 20, 65536 + 7, 4093])
def test_streamed_load_generates_like_a_file_load(model: Path, chunk: int) -> None:
    events: list[dict] = []
    s = WorkerSession(events.append)
    info = load(s, model, chunk)
    assert info["arch"] == "llama" and info["type"] == "loaded"
    done = asyncio.run(s.generate(1, [{"role": "user", "content": "abc def"}],
                                  {"raw": True, "max_tokens": 12, "ignore_eos": True}))
    tokens = [e["token"] for e in events if e["type"] == "token" and e["token"] >= 0]
    prompt = s.tokenizer.encode("abc def", add_special=True)
    assert tokens == greedy_native(model, prompt, 12)
    assert done["stats"]["n_gen"] == 12 and done["stopped"] == "length"
    s.unload()


def test_streamed_load_of_a_tied_repacked_head() -> None:
    """A tied output head whose type the engine repacks gets its own repacked copy of
    token_embd, filled from the same streamed bytes as the embedding table."""
    from tools.testmodels import tiny

    path = tiny("qwen2", "Q4_0")  # tied embeddings, Q4_0 is repacked
    events: list[dict] = []
    s = WorkerSession(events.append)
    load(s, path, 65536 + 7)
    asyncio.run(s.generate(1, [{"role": "user", "content": "abc def"}],
                           {"raw": True, "max_tokens": 12, "ignore_eos": True}))
    tokens = [e["token"] for e in events if e["type"] == "token" and e["token"] >= 0]
    assert tokens == greedy_native(path, s.tokenizer.encode("abc def", add_special=True), 12)
    s.unload()


def test_cancel_and_prefix_reuse(model: Path) -> None:
    events: list[dict] = []
    s = WorkerSession(events.append)
    load(s, model, 1 << 20)

    async def run_and_cancel() -> dict:
        task = asyncio.ensure_future(s.generate(7, [{"role": "user", "content": "hello"}],
                                                {"raw": True, "max_tokens": 200, "ignore_eos": True}))
        while not any(e["type"] == "token" for e in events):
            await asyncio.sleep(0)
        s.cancel()
        return await task

    done = asyncio.run(run_and_cancel())
    assert done["stopped"] == "cancelled" and done["stats"]["n_gen"] < 200
    # the next turn shares the prompt prefix: only the new tokens are evaluated
    events.clear()
    again = asyncio.run(s.generate(8, [{"role": "user", "content": "hello"}], {"raw": True, "max_tokens": 2}))
    assert again["stats"]["n_eval"] <= 1
    s.unload()


def test_truncated_and_non_gguf_streams_fail_clearly(model: Path, tmp_path: Path) -> None:
    s = WorkerSession(lambda e: None)
    size = model.stat().st_size
    with pytest.raises(GGUFError, match="truncated"):
        load(s, model, 65536, limit=size * 2 // 3)
    assert s.runner is None
    with pytest.raises(GGUFError, match="truncated"):
        load(s, model, 65536, limit=200)  # cut inside the header
    bad = tmp_path / "page.html"
    bad.write_bytes(b"<!doctype html><html><body>not a model</body></html>" * 10)
    with pytest.raises(GGUFError, match="GGUF"):
        load(s, bad, 100)
    # still usable afterwards
    assert load(s, model, 1 << 20)["arch"] == "llama"
    s.unload()


@pytest.mark.parametrize("arch", ["mamba", "qwen35"])
def test_recurrent_model_regenerates_in_the_worker(arch: str) -> None:
    """The worker generates through app.generate: re-sending the same conversation (the
    page's Regenerate) on a recurrent model reuses a state snapshot instead of failing to
    roll the state back, and gives the same greedy reply."""
    from tools.testmodels import tiny

    path = tiny(arch, "Q8_0")
    events: list[dict] = []
    s = WorkerSession(events.append)
    load(s, path, 1 << 20)
    messages = [{"role": "user", "content": "abc def"}]
    opts = {"raw": True, "max_tokens": 10, "ignore_eos": True}
    first = asyncio.run(s.generate(1, messages, opts))
    again = asyncio.run(s.generate(2, messages, opts))
    assert first["stats"]["n_gen"] == again["stats"]["n_gen"] == 10
    ids = lambda rid: [e["token"] for e in events if e["type"] == "token" and e["id"] == rid and e["token"] >= 0]  # noqa: E731
    assert ids(1) == ids(2)
    assert again["stats"]["n_eval"] < again["stats"]["n_prompt"]  # restarted from a snapshot
    s.unload()
