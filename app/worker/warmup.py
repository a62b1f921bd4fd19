"""Get the pthreads engine's code optimised before the first prompt (web/worker.js runs this
right after it starts that engine for a load, before the model's bytes stream in).

V8 runs a wasm function on its baseline code (Liftoff) until the function has run a while,
then compiles it optimised (TurboFan) on a background thread. Every load starts a new
instance of the pthreads module, and when all cores then compute (the engine at
hardwareConcurrency threads) that compiler gets no core: Gemma 3 270M at 2 threads on 2
cores decoded at 12-17 tok/s for ~2.5 s before its optimised code arrived (35-39 tok/s
after), and its first prefill (a 13-token prompt, in Node) took 510-630 ms.

Running a tiny model of the same architecture on ONE thread first makes the kernels hot while
a core is free; their optimised code is compiled while the model streams in (one thread) and
the person types. In Node, warm-up (50-75 ms) then 3 s idle: that prefill took 133 ms and
decode ran at 37 tok/s from the first token.

The tiny model is a Gemma 3 (the bundled model's architecture) with the weight types of a
Q4_K_M file (Q4_K, Q6_K, Q5_0, Q8_0; the tied output head repacked), zero weights: the
same kernels as a real Gemma 3 or a Llama-style model, on 256-wide matrices.
"""
from __future__ import annotations

import ctypes
import time
from typing import Any

from ..gguf import GGUFFile, TensorInfo
from ..gguf.ggml_types import GGML_TYPES

_BY_NAME = {t.name: t for t in GGML_TYPES.values()}
N_EMBD, N_FF, N_HEAD, HEAD_DIM, N_VOCAB, N_LAYER = 256, 512, 4, 64, 256, 2


def tiny_gemma3() -> GGUFFile:
    md = {"general.architecture": "gemma3", "general.name": "warm-up", "gemma3.context_length": 256,
          "gemma3.embedding_length": N_EMBD, "gemma3.block_count": N_LAYER, "gemma3.feed_forward_length": N_FF,
          "gemma3.attention.head_count": N_HEAD, "gemma3.attention.head_count_kv": 1,
          "gemma3.attention.layer_norm_rms_epsilon": 1e-6, "gemma3.attention.key_length": HEAD_DIM,
          "gemma3.attention.value_length": HEAD_DIM, "gemma3.rope.freq_base": 1e6,
          "gemma3.attention.sliding_window": 128}
    shapes: list[tuple[str, str, tuple[int, ...]]] = [("output_norm.weight", "F32", (N_EMBD,)),
                                                       ("token_embd.weight", "Q8_0", (N_EMBD, N_VOCAB))]
    q = N_HEAD * HEAD_DIM
    for i in range(N_LAYER):
        shapes += [(f"blk.{i}.{name}", typ, shape) for name, typ, shape in (
            ("attn_norm.weight", "F32", (N_EMBD,)), ("attn_q.weight", "Q5_0", (N_EMBD, q)),
            ("attn_k.weight", "Q5_0", (N_EMBD, HEAD_DIM)), ("attn_v.weight", ("Q8_0", "Q5_0")[i % 2], (N_EMBD, HEAD_DIM)),
            ("attn_q_norm.weight", "F32", (HEAD_DIM,)), ("attn_k_norm.weight", "F32", (HEAD_DIM,)),
            ("attn_output.weight", "Q4_K", (q, N_EMBD)), ("post_attention_norm.weight", "F32", (N_EMBD,)),
            ("ffn_norm.weight", "F32", (N_EMBD,)), ("ffn_gate.weight", "Q5_0", (N_EMBD, N_FF)),
            ("ffn_up.weight", "Q5_0", (N_EMBD, N_FF)), ("ffn_down.weight", ("Q6_K", "Q4_K")[i % 2], (N_FF, N_EMBD)),
            ("post_ffw_norm.weight", "F32", (N_EMBD,)))]
    tensors, offset = [], 0
    for name, typ, shape in shapes:
        t = _BY_NAME[typ]
        n = 1
        for d in shape:
            n *= d
        nbytes = n // t.block_size * t.type_size
        tensors.append(TensorInfo(name, t, shape, offset, nbytes))
        offset += (nbytes + 31) // 32 * 32
    return GGUFFile("warm-up", 3, md, tensors, 32, 0, None)


def warm_up(lib: Any, rounds: int = 4) -> float:
    """Run the tiny model `rounds` times (a 5-token prompt and 3 decode steps); returns ms."""
    from ..backends.ggml.runner import GGMLRunner
    from ..models import model_for

    t0 = time.perf_counter()
    gguf = tiny_gemma3()
    handles: list[tuple[int, TensorInfo]] = []
    runner = GGMLRunner(model_for(gguf), loader=lambda h, info: handles.append((h, info)), n_threads=1, n_ctx=256,
                        lib=lib)  # one thread: the other cores stay free for V8's compiler
    try:
        zeros = ctypes.create_string_buffer(max(info.nbytes for _, info in handles))
        for h, info in handles:  # zero weights, written the way a model's are (repacks included)
            lib.check(lib.eng_tensor_set(h, 0, ctypes.addressof(zeros), info.nbytes), "warm-up weights")
        for _ in range(rounds):
            runner.reset()
            runner.eval([2, 10, 11, 12, 13])
            for token in (14, 15, 16):
                runner.eval([token])
                runner.argmax()
    finally:
        runner.close()
    return (time.perf_counter() - t0) * 1e3
