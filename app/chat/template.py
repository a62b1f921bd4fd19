"""Rendering a model's chat template (or its fallback) into the prompt text."""
from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jinja2 import Template
from jinja2.exceptions import TemplateError

from ..tokenizer import Tokenizer, TokenizerError
from ..tokenizer.vocab import Vocab
from .environment import ChatTemplateError, container_ids, frozen, make_environment, pinned_clock, strftime_now
from .fallback import FALLBACKS, choose_fallback

_ENV = make_environment()


@functools.lru_cache(maxsize=16)
def _compile(text: str) -> Template:
    """Compiled once per distinct template text (a chat session per model reuses it)."""
    return _ENV.from_string(text)


@dataclass
class ChatTemplate:
    text: str
    source: str  # "gguf" or "fallback:<name>"
    bos_token: str = ""
    eos_token: str = ""
    # The tokenizer adds BOS/EOS itself (add_special): drop the template's own copy, as
    # llama.cpp does, so the prompt does not start with two BOS tokens.
    strip_bos: bool = False
    strip_eos: bool = False
    _compiled: Template | None = field(default=None, repr=False)

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True,
               tools: list[dict[str, Any]] | None = None, now: datetime | None = None,
               **extra: Any) -> str:
        """The prompt text for `messages` ({"role", "content"[, "tool_calls"]} dicts).

        `now` is the date templates print (Mistral, Llama 3.x system headers); the wall
        clock when None, a fixed value for a reproducible prompt.

        Like llama.cpp, adapts the conversation to what the template can take: a template
        that refuses a system turn gets the system text at the top of the first user turn,
        and one that wants tool-call arguments as a JSON string gets them so.
        """
        attempts = [messages]
        if messages and messages[0].get("role") == "system":
            attempts.append(_fold_system(messages))
        if any(isinstance(c.get("function", {}).get("arguments"), dict)
               for m in messages for c in (m.get("tool_calls") or [])):
            attempts += [_string_arguments(m) for m in list(attempts)]
        error: Exception | None = None
        for msgs in attempts:
            try:
                with pinned_clock(now):
                    return self._strip(self._render_once(msgs, add_generation_prompt, tools, extra))
            except (TemplateError, TypeError) as e:
                error = error or e
        raise ChatTemplateError(f"chat template ({self.source}) refused the conversation: {error}") from error

    def _strip(self, text: str) -> str:
        if self.strip_bos and self.bos_token and text.startswith(self.bos_token):
            text = text[len(self.bos_token):]
        if self.strip_eos and self.eos_token and text.endswith(self.eos_token):
            text = text[:-len(self.eos_token)]
        return text

    def _render_once(self, messages, add_generation_prompt, tools, extra) -> str:
        if self._compiled is None:
            try:
                self._compiled = _compile(self.text)
            except TemplateError as e:
                raise ChatTemplateError(f"chat template ({self.source}) does not compile: {e}") from e
        context = dict(bos_token=self.bos_token, eos_token=self.eos_token, messages=messages,
                       add_generation_prompt=add_generation_prompt,
                       # firefunction-style templates read these two (llama.cpp sets them too)
                       functions=json.dumps(tools, ensure_ascii=False) if tools else "",
                       datetime=strftime_now("%b %d %Y"))
        context.update(extra)
        if tools is not None:
            context["tools"] = tools
        with frozen(container_ids(messages, tools, extra)):
            return self._compiled.render(**context)

    @property
    def supports_tools(self) -> bool:
        return "tools" in self.text


def _token_text(metadata: dict[str, Any], key: str) -> str:
    tokens = metadata.get("tokenizer.ggml.tokens") or []
    tid = metadata.get(f"tokenizer.ggml.{key}_token_id")
    return tokens[tid] if isinstance(tid, int) and 0 <= tid < len(tokens) else ""


def chat_template_from_metadata(metadata: dict[str, Any], tokenizer: Tokenizer | None = None) -> ChatTemplate:
    """The GGUF's `tokenizer.chat_template`, or a fallback chosen from the metadata.

    bos_token/eos_token are the vocab's BOS/EOS pieces, and the template's leading BOS
    (trailing EOS) is dropped when the tokenizer adds one itself, as llama.cpp does. With
    the model's tokenizer the BOS/EOS text is its exact piece; without, the token text.
    """
    if tokenizer is not None:
        def piece(tid: int | None) -> str:
            return "" if tid is None else tokenizer.token_to_piece(tid, special=True).decode("utf-8", "replace")
        special = dict(bos_token=piece(tokenizer.bos_id), eos_token=piece(tokenizer.eos_id),
                       strip_bos=tokenizer.add_bos, strip_eos=tokenizer.add_eos)
    else:
        try:  # the vocab's special ids and flags, without building a whole tokenizer
            v = Vocab.special_tokens(metadata)
        except TokenizerError:
            v = None
        if v is not None:
            def text(tid: int | None) -> str:
                return "" if tid is None else v.tokens[tid]
            special = dict(bos_token=text(v.ids["bos"]), eos_token=text(v.ids["eos"]),
                           strip_bos=v.add_bos, strip_eos=v.add_eos)
        else:
            special = dict(bos_token=_token_text(metadata, "bos"), eos_token=_token_text(metadata, "eos"))
    text = metadata.get("tokenizer.chat_template")
    if isinstance(text, str) and text.strip():
        return ChatTemplate(text, "gguf", **special)
    name = choose_fallback(metadata)
    return ChatTemplate(FALLBACKS[name], f"fallback:{name}", **special)


def _fold_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """System text moved to the top of the first user turn (for templates without a system role)."""
    system, rest = messages[0], [dict(m) for m in messages[1:]]
    for m in rest:
        if m.get("role") == "user":
            m["content"] = f"{system.get('content', '')}\n\n{m.get('content', '')}"
            return rest
    return [{"role": "user", "content": system.get("content", "")}] + rest


def _string_arguments(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool-call arguments as JSON strings instead of objects."""
    out = copy.deepcopy(messages)
    for m in out:
        for call in m.get("tool_calls") or []:
            fn = call.get("function", {})
            if isinstance(fn.get("arguments"), dict):
                fn["arguments"] = json.dumps(fn["arguments"], ensure_ascii=False)
    return out
