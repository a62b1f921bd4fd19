"""The Python half of the worker: one loaded model, chats streamed as events.

The JS half (web/worker.js) owns the I/O (fetch, Cache API, postMessage); this class owns
everything else. It is plain Python with an `emit(event: dict)` callback, so the host
tests drive it directly and the worker passes a function that posts to the page.

Events emitted (all dicts with "type"):
  loaded   {model, arch, n_params, n_ctx, n_vocab, load_ms, engine}
  token    {id, text, n}                       one per generated token (text may be "")
  done     {id, text, stats, stopped}           stats: prompt tokens, prefill/decode tok/s
  error    {id, message}
  restored {messages, n_tokens}               a saved conversation is back (restore_chat)
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from ..gguf import GGUFFile
from ..store.stream import ModelStream

Emit = Callable[[dict], None]

DEFAULT_N_CTX = 4096


class GenerationCancelled(Exception):
    pass


class WorkerSession:
    def __init__(self, emit: Emit, lib: Any = None, n_threads: int = 1) -> None:
        self.emit = emit
        self.lib = lib
        self.n_threads = n_threads
        self.runner: Any = None
        self.tokenizer: Any = None
        self.template: Any = None
        self.gguf: GGUFFile | None = None
        self.model_name = ""
        self.loading: ModelStream | None = None
        self.cancel_requested = False
        # the page's stop button, readable while Python runs (a SharedArrayBuffer flag):
        # a cancel message cannot arrive until the worker yields, e.g. not during a prefill
        self.cancel_probe: Callable[[], bool] | None = None
        # the same flag as an address in the engine's (shared) memory, polled inside a
        # prompt's computes (runner.set_abort_flag); 0 where the page cannot write it
        self.abort_flag = 0
        self.abort_function = 0  # or a C function pointer that reads it (the side module: set_abort_function)
        self._llm_obj: Any = None
        self._header_to_store: tuple[GGUFFile, str] | None = None  # (header, its digest): header_blob()
        self.gpu: Any = None  # a BrowserDevice: the next model loads onto WebGPU (app/worker/gpu.py)

    # -- loading ----------------------------------------------------------------------------------

    def use_engine(self, lib: Any, n_threads: int) -> None:
        """Pick the engine for the next load: the side module's Library (1 thread) or the
        pthreads module's JsLibrary (app/worker/jslib.py)."""
        self.unload()
        self.lib, self.n_threads = lib, max(1, int(n_threads))
        self.abort_flag = self.abort_function = 0  # addresses in the previous engine mean nothing here

    def set_abort_flag(self, address: int) -> None:
        """The stop flag's address in the current engine's memory (see cancel_probe)."""
        self.abort_flag = int(address or 0)
        if self.runner is not None:
            self.runner.set_abort_flag(self.abort_flag)

    def set_abort_function(self, address: int) -> None:
        """A function `int32_t fn(void)` in the engine's table that reads the stop flag
        (the side module, whose memory the page cannot write: a JS function added to
        Pyodide's table)."""
        self.abort_function = int(address or 0)
        if self.runner is not None:
            self.runner.set_abort_function(self.abort_function)

    def begin_load(self, name: str, size: int | None = None, n_ctx: int = DEFAULT_N_CTX,
                   sha256: str | None = None, header: Any = None) -> ModelStream:
        """Start streaming a model; JS feeds it (ms.staging/feed_staged), then calls finish_load.
        size (always checked when known) and sha256 (checked when given) come from the
        catalogue or the server. header: what header_blob() gave after an earlier load of
        the same stored bytes (bytes, or a JS Uint8Array), so its parse can be skipped."""
        self.unload()
        if header is not None and not isinstance(header, (bytes, bytearray)):
            header = header.to_bytes()  # a JS typed array
        from ..backends.ggml.runner import GGMLRunner
        from ..models import model_for

        lib = self._lib()
        n_threads = self.n_threads

        def make_runner(gguf: GGUFFile, loader: Callable) -> Any:
            ctx = min(n_ctx, int(gguf.metadata.get(f"{gguf.metadata.get('general.architecture')}.context_length",
                                                    n_ctx) or n_ctx))
            return GGMLRunner(model_for(gguf), loader=loader, n_threads=n_threads, n_ctx=ctx, lib=lib)

        self.model_name = name
        self.loading = ModelStream(name, size, make_runner=make_runner, lib=lib, sha256=sha256, header=header)
        if self.gpu is not None:  # WebGPU (app/worker/gpu.py); that wasm stream is its fallback
            from .gpu import gpu_model_stream
            self.loading = gpu_model_stream(self, name, size, n_ctx, self.loading, sha256, header)
        return self.loading

    def header_blob(self) -> bytes | None:
        """The last loaded model's parsed header as bytes, for the model store to keep with
        its bytes (app/gguf/header_cache.py); None when the load already used a good one."""
        if self._header_to_store is None:
            return None
        from ..gguf.header_cache import pack_header
        return pack_header(*self._header_to_store)

    def finish_load(self) -> dict:
        ms = self.loading
        if ms is None:
            raise RuntimeError("no model is loading")
        self.loading = None
        try:
            runner = ms.finish()
        except Exception:
            ms.abort()
            raise
        self._header_to_store = None if ms.header_from_cache or ms.header_digest is None \
            else (ms.gguf, ms.header_digest)
        t_fin = time.perf_counter()
        from ..tokenizer import Tokenizer
        self.runner, self.gguf = runner, ms.gguf
        runner.set_abort_flag(self.abort_flag)
        runner.set_abort_function(self.abort_function)
        self.tokenizer = Tokenizer.from_metadata(self.gguf.metadata)
        t_tok = time.perf_counter()
        try:
            from ..chat import chat_template_from_metadata
            self.template = chat_template_from_metadata(self.gguf.metadata, self.tokenizer)
        except Exception:  # Jinja2 missing or a broken template: plain prompts still work
            self.template = None
        t_tpl = time.perf_counter()
        n_params = sum(t.n_elements for t in self.gguf.tensors)
        info = {"type": "loaded", "model": self.model_name,
                "arch": self.gguf.metadata.get("general.architecture"),
                "name": self.gguf.metadata.get("general.name") or self.model_name,
                "n_params": n_params, "n_ctx": runner.kv_size, "n_vocab": self.tokenizer.n_vocab,
                "load_ms": round((time.perf_counter() - ms.t_start) * 1e3, 1),
                "weights_mb": round(runner.weight_bytes / 2**20, 1),
                "template": getattr(self.template, "source", None), "identity": runner.model_identity(),
                "engine": self._lib().eng_system_info().decode(), "threads": self.n_threads,
                "flavor": "pthreads" if "pthreads" in str(getattr(self._lib(), "path", "")) else "side",
                "backend": "webgpu" if self.gpu is not None else "wasm",
                "adapter": getattr(self.gpu, "name", None), "header_cached": bool(ms.header_from_cache)}
        ms_ = lambda a, b: round((b - a) * 1e3, 1)
        info["timings"] = {"header_ms": ms_(ms.t_start, ms.t_header), "runner_ms": ms_(ms.t_header, ms.t_runner),
                           "stream_ms": ms_(ms.t_runner, t_fin), "tokenizer_ms": ms_(t_fin, t_tok),
                           "template_ms": ms_(t_tok, t_tpl), "info_ms": ms_(t_tpl, time.perf_counter())}
        self.emit(info)
        return info

    def abort_load(self) -> None:
        if self.loading is not None:
            self.loading.abort()
            self.loading = None

    def unload(self) -> None:
        self.abort_load()
        if self._llm_obj is not None:
            active = self._llm_obj.active
            if active is not None and not active.done:
                active.close()
            self._llm_obj.sampler.close()
            self._llm_obj = None
        if self.runner is not None:
            self.runner.close()
            self.runner = None

    def _lib(self) -> Any:
        if self.lib is None:
            from ..backends.ggml.library import load_library
            self.lib = load_library()
        return self.lib

    # -- prompts -----------------------------------------------------------------------------------

    def render(self, messages: list[dict]) -> str:
        if self.template is not None:
            return self.template.render(messages, add_generation_prompt=True)
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
        return text + "assistant:"

    # -- generation --------------------------------------------------------------------------------

    def cancel(self) -> None:
        self.cancel_requested = True

    def cancelled(self) -> bool:
        return self.cancel_requested or (self.cancel_probe is not None and bool(self.cancel_probe()))

    # -- saved conversations ------------------------------------------------------------------------

    def save_chat(self, messages: list[dict]) -> bytes:
        """The conversation `messages` and the model state now (app/worker/chat_state.py)."""
        if self.runner is None:
            raise RuntimeError("no model loaded: nothing to save")
        from .chat_state import pack_chat_state
        llm = self._llm()
        if llm.active is not None and not llm.active.done:
            raise RuntimeError("a reply is being written: stop it or wait before saving")
        return pack_chat_state(self.model_name, self.runner.model_identity(), list(messages),
                               self.runner.save_state(), [snap for _, snap in llm.seq.snapshots])

    def restore_chat(self, data: bytes) -> dict:
        """Put a saved conversation back: the model state and the messages (emitted as
        "restored"). A snapshot of another model, of another version, or a damaged one
        raises SnapshotError and leaves the session as it was."""
        if self.runner is None:
            raise RuntimeError("no model loaded: load the model the conversation was saved with")
        from .chat_state import unpack_chat_state
        if hasattr(data, "to_bytes"):  # a JS Uint8Array from the worker
            data = data.to_bytes()
        header, snapshot, extras = unpack_chat_state(data, self.runner.model_identity())
        llm = self._llm()
        if llm.active is not None and not llm.active.done:
            llm.active.close()
        runner = self.runner
        backup = runner.save_state() if extras else None
        snapshots = []
        try:
            for extra in extras:  # each is checked by loading it; the main state goes in last
                runner.load_state(extra)
                snapshots.append((list(runner.tokens), bytes(extra)))
            runner.load_state(snapshot)  # checks everything before writing anything
        except Exception:
            if backup is not None:
                runner.load_state(backup)
            raise
        llm.seq.tokens = list(runner.tokens)  # the state now holds exactly these tokens
        llm.seq.snapshots = snapshots
        event = {"type": "restored", "messages": header["messages"], "n_tokens": len(self.runner.tokens)}
        self.emit(event)
        return event

    def reset(self) -> None:
        """New chat: forget the state."""
        if self._llm_obj is not None:
            self._llm_obj.reset()
        elif self.runner is not None:
            self.runner.reset()

    def _llm(self) -> Any:
        """The generation API (app.generate.LLM) over the loaded runner: the same loop,
        sampler, stop handling and state reuse (incl. recurrent snapshots) as on the host."""
        if self._llm_obj is None or self._llm_obj.runner is not self.runner:
            from ..generate import LLM
            self._llm_obj = LLM(self.runner, self.tokenizer)
        return self._llm_obj

    async def generate(self, request_id: Any, messages: list[dict], options: dict | None = None) -> dict:
        """Stream a reply to `messages`; yields to the event loop between tokens so a cancel
        message can arrive. Returns (and emits) the done event."""
        if self.runner is None:
            raise RuntimeError("no model loaded")
        opts = dict(options or {})
        t0 = time.perf_counter()
        tok, llm = self.tokenizer, self._llm()
        if opts.get("raw"):
            prompt = tok.encode(messages[-1]["content"], add_special=True, parse_special=False)
        else:
            prompt = tok.encode(self.render(messages), add_special=True, parse_special=True)
        t_prompt = time.perf_counter()
        rs = getattr(self.runner, "stats", None)
        if not (hasattr(rs, "build_ms") and hasattr(rs, "compute_ms")):
            rs = None
        build0, compute0 = (rs.build_ms, rs.compute_ms) if rs is not None else (0.0, 0.0)
        room = self.runner.kv_size - len(prompt)
        if room <= 0:
            raise RuntimeError(f"the conversation ({len(prompt)} tokens) does not fit the context "
                               f"({self.runner.kv_size} tokens): start a new chat")
        sampling: dict[str, Any] = {"temperature": float(opts.get("temperature", 0.0)),
                                    "top_k": int(opts.get("top_k", 40)), "top_p": float(opts.get("top_p", 0.95))}
        if opts.get("seed") is not None:
            sampling["seed"] = int(opts["seed"])
        self.cancel_requested = False
        reply = llm.complete(prompt, max_tokens=min(int(opts.get("max_tokens", 256)), room),
                             ignore_eos=bool(opts.get("ignore_eos", False)),
                             cancel=self.cancelled, **sampling)
        self.emit({"type": "prefill", "id": request_id, "n_prompt": len(prompt),
                   "n_eval": len(prompt) - llm.seq.reusable(prompt)})
        await asyncio.sleep(0)
        n = 0
        decode_compute0 = None  # the engine's compute time when the first token was out
        async for piece in reply.astream():
            ids = piece.token_ids or [-1]  # a text-only piece is the decoder's flushed tail
            if decode_compute0 is None and rs is not None:
                decode_compute0 = rs.compute_ms
            for i, token in enumerate(ids):
                n += token >= 0
                self.emit({"type": "token", "id": request_id, "token": token,
                           "text": piece.text if i == len(ids) - 1 else "", "n": n})
        st = reply.stats
        stats = {"n_prompt": st.prompt_tokens, "n_eval": st.prefill_tokens, "n_gen": st.generated_tokens,
                 "prefill_ms": round(st.prefill_ms, 1), "prefill_tok_s": round(st.prefill_tok_s, 2),
                 "decode_tok_s": round(st.decode_tok_s, 2), "first_token_ms": round(st.ttft_ms, 1),
                 "prompt_ms": round((t_prompt - t0) * 1e3, 1)}
        if rs is not None:  # where the reply's time went: building graphs (Python) and computing them
            stats["graph_build_ms"] = round(rs.build_ms - build0, 1)
            stats["compute_ms"] = round(rs.compute_ms - compute0, 1)
            # decode_ms's share spent in the engine (the rest: sampling, detokenizing, events)
            stats["decode_compute_ms"] = round(rs.compute_ms - (decode_compute0 or rs.compute_ms), 1)
            stats["decode_ms"] = round(st.decode_ms, 1)
        done = {"type": "done", "id": request_id, "text": reply.text, "stats": stats, "stopped": reply.stop_reason}
        self.emit(done)
        return done
