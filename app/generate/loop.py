"""The generation loop: prefill what the state lacks, then sample, stream and stop.

Per token Python does a handful of calls: sample (in the engine), detokenize one piece,
match stop strings, evaluate the token.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable, Iterator, Protocol

from ..backends.ggml.runner import Cancelled
from ..sampling import Sampler, fresh_seed
from .errors import ContextFullError
from .options import GenerateOptions
from .reply import Piece, Reply
from .sequence import Sequence
from .stops import StopMatcher

# shrink(generated) -> a shorter full sequence (prompt + generated) that fits, or None
Shrink = Callable[[list[int]], "list[int] | None"]


class Runtime(Protocol):
    seq: Sequence
    sampler: Sampler
    tokenizer: object


def _configure(rt: Runtime, opts: GenerateOptions, reply: Reply) -> None:
    sampling = opts.sampling
    if opts.ignore_eos:  # llama.cpp's way: the end-of-generation tokens can never be drawn
        bias = dict(sampling.logit_bias)
        bias.update({t: -math.inf for t in rt.tokenizer.stop_ids})
        sampling = replace(sampling, logit_bias=bias)
    rt.sampler.configure(sampling, rt.seq.n_ctx)
    if sampling.seed is None and not sampling.greedy:
        rt.sampler.seed(fresh_seed())
    reply.seed = None if sampling.greedy else rt.sampler.seed_used


def stream_reply(rt: Runtime, target: list[int], opts: GenerateOptions, reply: Reply,
                 shrink: Shrink | None = None) -> Iterator[Piece]:
    seq, tok, st = rt.seq, rt.tokenizer, reply.stats
    t0 = time.perf_counter()
    _configure(rt, opts, reply)

    def cancelled() -> bool:
        return reply.cancel_requested or (opts.cancel is not None and bool(opts.cancel()))

    st.prompt_tokens = len(target)
    todo = len(target) - seq.reusable(target)

    def on_chunk(done: int) -> bool:
        if opts.on_prefill is not None:
            opts.on_prefill(done, todo)
        return not cancelled()

    n_sampled, t_first, t_last = 0, t0, t0
    try:
        if cancelled():
            reply.stop_reason = "cancelled"
            return
        try:
            st.prefill_tokens = seq.prefill(target, on_chunk)
        except Cancelled as c:
            st.prefill_tokens = c.n_done
            reply.stop_reason = "cancelled"
            return
        finally:
            st.prefill_ms = (time.perf_counter() - t0) * 1e3
            st.cached_tokens = len(target) - todo

        decoder, matcher = tok.stream(), StopMatcher(opts.stop)
        ids: list[int] = []
        reason = None
        while reason is None:
            if cancelled():
                reason = "cancelled"
                break
            token = seq.sample(rt.sampler)
            t_last = time.perf_counter()
            n_sampled += 1
            if n_sampled == 1:
                t_first = t_last
                st.ttft_ms = (t_last - t0) * 1e3
            if tok.is_stop(token):
                reply.stop_token, reason = token, "eos"
                break
            reply.tokens.append(token)
            ids.append(token)
            text = matcher.feed(decoder.feed(token))
            if text:
                piece, ids = Piece(text, ids, (t_last - t0) * 1e3), []
                yield piece
            if matcher.matched is not None:
                reply.stop_string, reason = matcher.matched, "stop"
            elif len(reply.tokens) >= opts.max_tokens:
                reason = "length"
            elif cancelled():  # asked while the piece was out: stop before another model step
                reason = "cancelled"
            elif len(seq.tokens) >= seq.n_ctx:
                _make_room(rt, opts, reply, shrink)  # leaves the logits after `token`: sample on
            else:
                seq.push(token)

        tail = ""
        if reason != "stop":
            tail = matcher.feed(decoder.flush())
            if matcher.matched is not None:  # completed by the decoder's last characters
                reply.stop_string, reason = matcher.matched, "stop"
            else:
                tail += matcher.flush()
        reply.stop_reason = reason
        if tail or ids:
            yield Piece(tail, ids, (time.perf_counter() - t0) * 1e3)
    finally:
        st.generated_tokens = len(reply.tokens)
        st.decode_steps = max(n_sampled - 1, 0)
        st.decode_ms = (t_last - t_first) * 1e3
        st.total_ms = (time.perf_counter() - t0) * 1e3


def _make_room(rt: Runtime, opts: GenerateOptions, reply: Reply, shrink: Shrink | None) -> None:
    seq = rt.seq
    new = shrink(reply.tokens) if shrink is not None and opts.on_context_full == "drop_oldest" else None
    if new is None or len(new) >= seq.n_ctx:
        hint = "" if opts.on_context_full == "drop_oldest" else " (or pass on_context_full='drop_oldest')"
        raise ContextFullError(f"context full: {seq.n_ctx} tokens used after {len(reply.tokens)} generated tokens; "
                               f"start a new conversation, lower max_tokens or load with a larger n_ctx{hint}")
    reply.stats.dropped_tokens += len(seq.tokens) + 1 - len(new)
    reply.prompt_tokens = new[:len(new) - len(reply.tokens)]
    seq.prefill(new)
