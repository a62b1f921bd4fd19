"""Stopping inside a prompt (runner.set_abort_flag, wasm_ext eng_set_abort_flag): a flag set
from another thread stops a long prefill between graph nodes instead of after the 512-token
chunk, leaves a state the next request continues exactly and never touches decode steps
(what arming it costs: bench/bench_prefill_abort.py). In the browser the page sets this flag in the pthreads
engine's shared memory (web/worker.js "stop-flag"); here a thread plays the page."""
from __future__ import annotations

import asyncio
import ctypes
import threading
import time
from pathlib import Path

import pytest

from app.backends.ggml.runner import Cancelled, GGMLRunner
from app.gguf import read_gguf
from app.models import model_for
from tools.testmodels import tiny

THREADS = 2


def _runner(path: Path, n_ctx: int = 4096) -> GGMLRunner:
    return GGMLRunner(model_for(read_gguf(str(path))), str(path), n_threads=THREADS, n_ctx=n_ctx)


def _prompt(n: int, n_vocab: int) -> list[int]:
    return [2] + [(i * 7919 + 13) % (n_vocab - 10) + 5 for i in range(n - 1)]


def _set_later(flag: ctypes.c_int32, delay: float, when: list[float]) -> threading.Thread:
    def go() -> None:
        time.sleep(delay)
        when.append(time.perf_counter())
        flag.value = 1
    t = threading.Thread(target=go)
    t.start()
    return t


def test_stop_inside_a_long_prompt_is_quick_and_resumable(gemma3_270m: Path) -> None:
    r = _runner(gemma3_270m)
    flag = ctypes.c_int32(0)
    try:
        prompt = _prompt(1024, r.hp.n_vocab)
        # reference: the whole prompt without the flag, then armed (flag 0): same speed
        t0 = time.perf_counter()
        r.eval(prompt)
        plain_s = time.perf_counter() - t0
        ref_logits = r.logits()
        r.reset()
        r.set_abort_flag(ctypes.addressof(flag))
        t0 = time.perf_counter()
        r.eval(prompt)
        armed_s = time.perf_counter() - t0
        assert list(r.logits()) == list(ref_logits)  # the armed flag changes no number
        r.reset()

        # stop a quarter of the way in: it returns within a graph node, not a 512-token chunk
        when: list[float] = []
        setter = _set_later(flag, plain_s / 4, when)
        with pytest.raises(Cancelled) as stopped:
            r.eval(prompt)
        returned = time.perf_counter()
        setter.join()
        latency = returned - when[0]
        chunk_s = plain_s * 512 / len(prompt)
        print(f"\nprefill {len(prompt)} tokens ({THREADS} threads): {plain_s:.2f} s plain, {armed_s:.2f} s with the "
              f"abort flag armed; one 512-token chunk {chunk_s:.2f} s; stop answered in {latency * 1e3:.0f} ms")
        assert latency < chunk_s / 3, (latency, chunk_s)
        # what arming costs is measured by bench/bench_prefill_abort.py (interleaved rounds):
        # single timings on a shared machine are too noisy to assert on
        n_done = r.n_past
        assert n_done == stopped.value.n_done and n_done % 512 == 0 and n_done < len(prompt)

        # decode steps ignore the flag; the next request continues exactly as if the prompt
        # had been sent in these two parts (the chunk boundaries decide the last bits)
        flag.value = 1
        r.eval(prompt[n_done:n_done + 1])  # one token: not interrupted
        flag.value = 0
        r.eval(prompt[n_done + 1:])
        resumed = list(r.logits())
        r.reset()
        r.eval(prompt[:n_done])
        r.eval(prompt[n_done:n_done + 1])
        r.eval(prompt[n_done + 1:])
        assert resumed == list(r.logits())
    finally:
        r.close()


@pytest.mark.parametrize("arch", ["llama", "mamba", "qwen35"])
@pytest.mark.parametrize("how", ["flag", "function"])
def test_a_stopped_prompt_leaves_a_consistent_state(arch: str, how: str) -> None:
    """Stopped in its first graph (by the flag, or by the function the single-threaded
    browser engine calls instead): nothing is kept (a recurrent state was updated part of
    the way, so it starts over); the same prompt then gives the uninterrupted logits."""
    r = _runner(tiny(arch, "Q8_0"), n_ctx=1024)
    flag = ctypes.c_int32(1)
    asked: list[int] = []

    @ctypes.CFUNCTYPE(ctypes.c_int32)
    def stop_requested() -> int:
        asked.append(flag.value)
        return flag.value

    try:
        prompt = _prompt(700, r.hp.n_vocab)
        r.eval(prompt[:100])
        keep = r.n_past
        if how == "flag":
            r.set_abort_flag(ctypes.addressof(flag))
        else:
            r.set_abort_function(ctypes.cast(stop_requested, ctypes.c_void_p).value)
        with pytest.raises(Cancelled):
            r.eval(prompt[100:])
        assert r.n_past == (0 if r.is_recurrent else keep) and len(r.tokens) == r.n_past
        assert how == "flag" or asked == [1]  # asked once, at the first graph node
        flag.value = 0
        r.eval(prompt[r.n_past:])
        assert how == "flag" or len(asked) > 10  # asked between the nodes of the whole prompt
        got = list(r.logits())
        r.set_abort_flag(None)
        r.set_abort_function(None)
        r.reset()
        r.eval(prompt)
        assert got == list(r.logits())
    finally:
        r.close()


def test_worker_stop_flag_ends_a_reply_during_its_prompt(gemma3_270m: Path) -> None:
    """The worker's stop flag (the page's Stop button during "Reading the prompt"): the
    reply ends as cancelled long before the prompt would have been read."""
    from app.worker import WorkerSession

    events: list[dict] = []
    s = WorkerSession(events.append, n_threads=THREADS)
    data = gemma3_270m.read_bytes()
    ms = s.begin_load(gemma3_270m.name, len(data))
    for i in range(0, len(data), 1 << 22):
        ms.feed(data[i:i + (1 << 22)])
    s.finish_load()
    flag = ctypes.c_int32(0)
    s.set_abort_flag(ctypes.addressof(flag))
    s.cancel_probe = lambda: flag.value != 0
    text = " ".join(f"word{i}" for i in range(300))
    try:
        t0 = time.perf_counter()
        full = asyncio.run(s.generate(1, [{"role": "user", "content": text}], {"raw": True, "max_tokens": 1}))
        full_s = time.perf_counter() - t0
        s.reset()
        when: list[float] = []
        setter = _set_later(flag, full_s / 5, when)
        stopped = asyncio.run(s.generate(2, [{"role": "user", "content": text}], {"raw": True, "max_tokens": 50}))
        done = time.perf_counter()
        setter.join()
        assert stopped["stopped"] == "cancelled" and stopped["stats"]["n_gen"] == 0
        assert done - when[0] < full_s / 4, (done - when[0], full_s)
        print(f"\nworker: prompt of {full['stats']['n_prompt']} tokens read in {full_s:.2f} s; "
              f"stop answered in {(done - when[0]) * 1e3:.0f} ms")
    finally:
        s.unload()
