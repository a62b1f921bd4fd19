"""The public object: a loaded model that tokenizes, completes and chats."""
from __future__ import annotations

import os
from typing import Any, Callable

from ..backends.ggml.runner import GGMLRunner
from ..gguf import read_gguf
from ..models import model_for
from ..sampling import OptionError, Sampler, check_vocab
from ..tokenizer import Tokenizer
from .errors import ContextFullError
from .loop import Shrink, stream_reply
from .options import GenerateOptions, make_options
from .reply import Reply
from .sequence import Sequence
from .session import ChatSession, Render


def default_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class LLM:
    """A model loaded on the engine, with one model state shared by its chats and
    completions (each request reuses whatever prefix of the state it shares)."""

    def __init__(self, runner: GGMLRunner, tokenizer: Tokenizer | None = None) -> None:
        """Wrap a runner that is already loaded (app.load builds one from a file; the browser
        worker builds one from a streamed download)."""
        self.runner = runner
        self.gguf = runner.gguf
        self.model = runner.model
        self.path = str(self.gguf.source)
        self.tokenizer = tokenizer or Tokenizer.from_metadata(self.gguf.metadata)
        self.seq = Sequence(runner)
        self.sampler = Sampler(getattr(runner, "lib", None))  # a WebGPU runner has no engine: load it
        self.active: Reply | None = None

    @classmethod
    def open(cls, path: str, n_ctx: int = 4096, threads: int | None = None) -> "LLM":
        if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx <= 0:
            raise OptionError(f"n_ctx must be a positive integer; got {n_ctx!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0):
            raise OptionError(f"threads must be a positive integer or None; got {threads!r}")
        gguf = read_gguf(str(path))
        tokenizer = Tokenizer.from_metadata(gguf.metadata)  # a bad vocabulary fails before the weights load
        runner = GGMLRunner(model_for(gguf), str(path), n_threads=threads or default_threads(), n_ctx=n_ctx)
        return cls(runner, tokenizer)

    # -- facts ------------------------------------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        return self.runner.kv_size

    @property
    def n_vocab(self) -> int:
        return self.tokenizer.n_vocab

    @property
    def threads(self) -> int:
        return self.runner.n_threads

    def set_threads(self, threads: int) -> None:
        self.runner.set_threads(threads)

    # -- text ------------------------------------------------------------------------------------------

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        return self.tokenizer.encode(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, ids: list[int], special: bool = False) -> str:
        return self.tokenizer.decode(list(ids), special=special)

    def options(self, **options: Any) -> GenerateOptions:
        """Check generation options (raises OptionError) without running anything."""
        opts = make_options(**options)
        check_vocab(opts.sampling, self.n_vocab)
        return opts

    # -- generation ----------------------------------------------------------------------------------

    def complete(self, prompt: str | list[int], parse_special: bool = True, **options: Any) -> Reply:
        """Continue `prompt` (text, or token ids); iterate the reply for pieces of text."""
        opts = self.options(**options)
        if isinstance(prompt, str):
            tokens = self.tokenize(prompt, add_special=True, parse_special=parse_special)
        elif isinstance(prompt, (list, tuple)) and all(isinstance(t, int) and 0 <= t < self.n_vocab for t in prompt):
            tokens = list(prompt)
        else:
            raise OptionError("prompt must be a string or a list of token ids inside the vocabulary")
        if not tokens:
            raise OptionError("empty prompt: nothing to continue from")
        if len(tokens) >= self.n_ctx:
            if opts.on_context_full != "drop_oldest":
                raise ContextFullError(f"the prompt ({len(tokens)} tokens) does not fit the context of {self.n_ctx} "
                                       f"tokens: shorten it, load with a larger n_ctx or pass "
                                       f"on_context_full='drop_oldest'")
            tokens = self._halve(tokens, self.n_ctx - min(opts.max_tokens, self.n_ctx // 4))
        prompt_len = len(tokens)

        def shrink(generated: list[int]) -> list[int] | None:
            return self._halve(tokens[:prompt_len] + generated, self.n_ctx // 2)

        return self.start(tokens, opts, shrink=shrink)

    def _halve(self, tokens: list[int], fit: int) -> list[int]:
        """llama.cpp's context shift: keep a leading BOS, drop the oldest half of the rest
        (repeatedly) until `fit` tokens remain."""
        keep = 1 if tokens and tokens[0] == self.tokenizer.bos_id else 0
        while len(tokens) > fit and len(tokens) - keep > 1:
            n_drop = (len(tokens) - keep) // 2
            tokens = tokens[:keep] + tokens[keep + n_drop:]
        return tokens

    def chat(self, system: str | None = None, render: Render | None = None, **defaults: Any) -> ChatSession:
        """A multi-turn chat; `defaults` are options for every send (each send may override)."""
        return ChatSession(self, system=system, render=render, **defaults)

    def chat_template(self) -> Render:
        """The model's chat template (or its named fallback) as render(messages, add_generation_prompt)."""
        from ..chat import chat_template_from_metadata  # Jinja2 is imported only by chats
        template = chat_template_from_metadata(self.gguf.metadata)
        return lambda messages, add_generation_prompt=True: template.render(messages, add_generation_prompt)

    def start(self, tokens: list[int], opts: GenerateOptions, shrink: Shrink | None = None,
              on_done: Callable[[Reply], None] | None = None) -> Reply:
        """A reply continuing exactly `tokens`. Starting one ends (as cancelled) any reply
        still streaming on this model: there is one model state."""
        if self.active is not None and not self.active.done:
            self.active.close()
        reply = Reply(lambda r: stream_reply(self, r.prompt_tokens, opts, r, shrink), on_done)
        reply.prompt_tokens = list(tokens)
        self.active = reply
        return reply

    def reset(self) -> None:
        """Forget the model state (the next request prefills from scratch)."""
        if self.active is not None and not self.active.done:
            self.active.close()
        self.seq.reset()

    def close(self) -> None:
        if self.active is not None and not self.active.done:
            self.active.close()
        self.sampler.close()
        self.runner.close()

    def __enter__(self) -> "LLM":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(path: str, n_ctx: int = 4096, threads: int | None = None) -> LLM:
    """Load a GGUF model from a local path."""
    p = str(path)
    if p.startswith(("http://", "https://")):
        raise OptionError(f"{p}: loading by URL needs the model store (app.store), which has no downloader yet; "
                          f"download the file and pass its path")
    return LLM.open(p, n_ctx=n_ctx, threads=threads)
