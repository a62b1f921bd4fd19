"""A multi-turn chat on one model: history in, streamed replies out, state kept between turns.

Each turn renders the conversation with the chat template, tokenizes it reusing the
tokens of earlier turns (prompt.PromptTokens), and prefills only what the model state
does not already hold (Sequence.prefill keeps the longest common prefix). Regenerating
or editing the last turn re-renders a shorter conversation, so the state rolls back to
the common prefix by itself.
"""
from __future__ import annotations

from typing import Any, Callable

from ..sampling import OptionError
from .errors import ContextFullError
from .options import GenerateOptions, check_names
from .prompt import PromptTokens
from .reply import Reply

Render = Callable[[list[dict[str, Any]], bool], str]  # (messages, add_generation_prompt) -> text


class ChatSession:
    def __init__(self, llm: Any, system: str | None = None, render: Render | None = None,
                 **defaults: Any) -> None:
        check_names(defaults)
        llm.options(**defaults)  # bad defaults fail now, not on the first send
        self.llm = llm
        self.defaults = defaults
        self.render = render or llm.chat_template()
        self.messages: list[dict[str, Any]] = []
        if system is not None:
            self.messages.append({"role": "system", "content": system})
        self.first_kept = len(self.messages)  # turns before this were dropped to fit the context
        self.prompts = PromptTokens(llm.tokenizer)
        self.last_reply: Reply | None = None

    # -- what the model sees ---------------------------------------------------------------------

    def _visible(self, upto: int | None = None) -> list[dict[str, Any]]:
        head = self.messages[:self._n_system()]
        return head + self.messages[max(self.first_kept, len(head)):upto]

    def _prompt(self) -> tuple[str, list[int]]:
        text = self.render(self._visible(), True)
        return text, self.prompts.tokens(text)

    def _n_system(self) -> int:
        return 1 if self.messages and self.messages[0]["role"] == "system" else 0

    def _drop_oldest_turn(self) -> bool:
        """Forget the oldest exchange still in context (never the turn being answered)."""
        start = max(self.first_kept, self._n_system())
        users = [i for i, m in enumerate(self.messages) if m["role"] == "user" and i > start]
        if not users:
            return False
        self.first_kept = users[0]
        return True

    def _fit(self, opts: GenerateOptions, n_generated: int = 0) -> tuple[str, list[int]]:
        n_ctx = self.llm.n_ctx
        reserve = min(opts.max_tokens, n_ctx // 4)
        text, tokens = self._prompt()
        while len(tokens) + n_generated + reserve > n_ctx and opts.on_context_full == "drop_oldest":
            if not self._drop_oldest_turn():
                break
            text, tokens = self._prompt()
        if len(tokens) + n_generated >= n_ctx:
            hint = "" if opts.on_context_full == "drop_oldest" else " or pass on_context_full='drop_oldest'"
            raise ContextFullError(f"the conversation ({len(tokens) + n_generated} tokens) does not fit the context "
                                   f"of {n_ctx} tokens: start a new chat, load with a larger n_ctx{hint}")
        return text, tokens

    # -- turns -------------------------------------------------------------------------------------------

    def send(self, text: str, **options: Any) -> Reply:
        """Add a user message and stream the assistant's reply."""
        if not isinstance(text, str):
            raise OptionError(f"a chat message is a string (got {type(text).__name__})")
        opts = self.llm.options(**{**self.defaults, **options})
        self._settle()
        if self.messages and self.messages[-1]["role"] == "user":
            raise RuntimeError("the last user message has no reply yet: use regenerate() or edit_last()")
        self.messages.append({"role": "user", "content": text})
        return self._reply(opts, drop_user_on_cancel=True)

    def regenerate(self, **options: Any) -> Reply:
        """Replace the last reply with a new one (the state rolls back to before it)."""
        opts = self.llm.options(**{**self.defaults, **options})
        self._settle()
        if self.messages and self.messages[-1]["role"] == "assistant":
            self.messages.pop()
        if not self.messages or self.messages[-1]["role"] != "user":
            raise RuntimeError("nothing to regenerate: the chat has no user message")
        return self._reply(opts, drop_user_on_cancel=False)

    def edit_last(self, text: str, **options: Any) -> Reply:
        """Replace the last user message (dropping its reply) and answer it again."""
        if not isinstance(text, str):
            raise OptionError(f"a chat message is a string (got {type(text).__name__})")
        opts = self.llm.options(**{**self.defaults, **options})
        self._settle()
        if self.messages and self.messages[-1]["role"] == "assistant":
            self.messages.pop()
        if not self.messages or self.messages[-1]["role"] != "user":
            raise RuntimeError("nothing to edit: the chat has no user message")
        self.messages[-1] = {"role": "user", "content": text}
        return self._reply(opts, drop_user_on_cancel=False)

    def undo(self) -> None:
        """Remove the last exchange (the last user message and its reply)."""
        self._settle()
        while self.messages and self.messages[-1]["role"] != "user" and self.messages[-1]["role"] != "system":
            self.messages.pop()
        if self.messages and self.messages[-1]["role"] == "user":
            self.messages.pop()
        self.first_kept = min(self.first_kept, len(self.messages))

    def reset(self, system: str | None = None) -> None:
        self._settle()
        sys_msgs = self.messages[:self._n_system()]
        self.messages = [{"role": "system", "content": system}] if system is not None else sys_msgs
        self.first_kept = len(self.messages)

    def _reply(self, opts: GenerateOptions, drop_user_on_cancel: bool) -> Reply:
        try:
            text, tokens = self._fit(opts)
        except BaseException:
            if drop_user_on_cancel:
                self.messages.pop()
            raise
        state = {"text": text, "tokens": tokens}

        def shrink(generated: list[int]) -> list[int] | None:
            if not self._drop_oldest_turn():
                return None
            state["text"], state["tokens"] = self._fit(opts, len(generated))
            return state["tokens"] + generated

        def done(reply: Reply) -> None:
            if reply.stop_reason == "cancelled" and not reply.tokens:
                if drop_user_on_cancel and self.messages and self.messages[-1]["role"] == "user":
                    self.messages.pop()
                return
            self.messages.append({"role": "assistant", "content": reply.text})
            self.prompts.remember(state["text"], state["tokens"])
            tok = self.llm.tokenizer
            self.prompts.remember(state["text"] + tok.decode(reply.tokens), state["tokens"] + reply.tokens)

        self.last_reply = self.llm.start(tokens, opts, shrink=shrink, on_done=done)
        return self.last_reply

    def _settle(self) -> None:
        """An unfinished earlier reply ends here (as cancelled), so the history is complete."""
        if self.last_reply is not None and not self.last_reply.done:
            self.last_reply.close()
