"""Snapshots (GGMLRunner.save_state / load_state) for every architecture: a fresh runner that
loads a snapshot continues with exactly the tokens of an uninterrupted run; snapshots of
another model, corrupted or truncated ones fail with a clear error and change nothing."""
from __future__ import annotations

import pytest

from app.backends.ggml.runner import GGMLRunner, SnapshotError
from app.gguf import read_gguf
from app.models import model_for
from tools.testmodels import TINY, TINY_RECURRENT, model_path, tiny

ARCHS = sorted(TINY) + sorted(a for a in TINY_RECURRENT if a != "falcon-mamba")
THREADS = 2


def _runner(arch: str, type_name: str = "Q8_0", n_ctx: int = 256, **changes) -> GGMLRunner:
    path = tiny(arch, type_name, **changes)
    return GGMLRunner(model_for(read_gguf(str(path))), str(path), n_threads=THREADS, n_ctx=n_ctx)


def _prompt(n: int, n_vocab: int) -> list[int]:
    return [1] + [(i * 7919 + 13) % n_vocab for i in range(n - 1)]


def _greedy(r: GGMLRunner, n: int) -> list[int]:
    out = [r.argmax()]
    while len(out) < n:
        r.eval([out[-1]])
        out.append(r.argmax())
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_snapshot_continues_like_an_uninterrupted_run(arch):
    a = _runner(arch)
    try:
        prompt = _prompt(40, a.hp.n_vocab)
        a.eval(prompt)
        head = _greedy(a, 8)  # 40 prompt + 7 generated tokens evaluated, 8th token pending
        snap = a.save_state()
        tail = _greedy(a, 24)[1:]  # the uninterrupted continuation
    finally:
        a.close()
    b = _runner(arch, n_ctx=512)  # a fresh runner, another context size
    try:
        b.load_state(snap)
        assert b.n_past == 47 and b.tokens == prompt + head[:-1]
        assert b.argmax() == head[-1]
        assert _greedy(b, 24)[1:] == tail
        # and a snapshot of the loaded runner restores again
        b.load_state(b.save_state())
    finally:
        b.close()


def test_snapshot_sizes_per_architecture(capsys):
    """Sizes after a 64-token prompt (Q8_0 tiny models; KV rows in use + states + logits)."""
    rows = []
    for arch in ARCHS:
        r = _runner(arch)
        try:
            r.eval(_prompt(64, r.hp.n_vocab))
            snap = r.save_state()
            kv = sum(n for name, _, n in r._sections(64) if name.startswith("kv."))
            rs = sum(n for name, _, n in r._sections(64) if name.startswith("rs."))
            rows.append((arch, len(snap), kv, rs))
            assert len(snap) > kv + rs + 4 * r.hp.n_vocab
            assert len(snap) < kv + rs + 4 * r.hp.n_vocab + 4 * 64 + 4096  # header + tokens + checksum
        finally:
            r.close()
    with capsys.disabled():
        print("\nsnapshot after 64 tokens: " + ", ".join(f"{a} {n} B (kv {kv}, recurrent {rs})"
                                                        for a, n, kv, rs in rows))


@pytest.mark.parametrize("arch", ["qwen35", "llama"])
def test_bad_snapshots_fail_clearly_and_change_nothing(arch):
    r = _runner(arch)
    try:
        r.eval(_prompt(30, r.hp.n_vocab))
        good = r.save_state()
        before = (r.n_past, list(r.tokens), r.argmax(), r.save_state())
        assert before[3] == good
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0x40
        cases = {
            "checksum": bytes(bad),
            "truncated": good[:-100],
            "magic": b"GGUF" + good[4:],
            "empty": b"",
        }
        for what, data in cases.items():
            with pytest.raises(SnapshotError):
                r.load_state(data)
            assert (r.n_past, r.tokens, r.argmax(), r.save_state()) == before, what
        # a snapshot of a different model: same architecture, tensor table and shapes, other weights
        shape = TINY[arch] if arch in TINY else TINY_RECURRENT[arch]
        path = model_path(shape, "Q8_0", seed=1)
        o = GGMLRunner(model_for(read_gguf(str(path))), str(path), n_threads=THREADS, n_ctx=256)
        try:
            o.eval(_prompt(30, o.hp.n_vocab))
            foreign = o.save_state()
        finally:
            o.close()
        with pytest.raises(SnapshotError, match="different model"):
            r.load_state(foreign)
        assert (r.n_past, r.tokens, r.argmax(), r.save_state()) == before
        # a snapshot longer than the loading runner's context
        big = _runner(arch, n_ctx=512)
        try:
            big.eval(_prompt(300, big.hp.n_vocab))
            long_snap = big.save_state()
        finally:
            big.close()
        with pytest.raises(SnapshotError, match="context"):
            r.load_state(long_snap)
        assert (r.n_past, r.tokens, r.argmax(), r.save_state()) == before
    finally:
        r.close()
