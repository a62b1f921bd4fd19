"""The Jinja2 environment HF-style chat templates expect, sandboxed.

Mirrors what transformers' apply_chat_template sets up: an immutable sandbox, trim_blocks
and lstrip_blocks on, the loop-controls extension ({% break %}/{% continue %}), the
`{% generation %}` block (HF's assistant-mask marker; here it just renders its body), a
`tojson` filter that keeps non-ASCII text as is, and the `raise_exception` and
`strftime_now` globals.

One relaxation: some templates (Kimi K2) build their own lists with `.append`. The
sandbox still refuses any modifying method on the caller's data (messages, tools and
everything reachable from them) but allows it on containers the template made itself.
"""
from __future__ import annotations

import json
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateError
from jinja2.ext import Extension, loopcontrols
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, modifies_known_mutable

# id()s of the containers passed in by the caller for the render in progress
_FROZEN: ContextVar[frozenset[int]] = ContextVar("chat_template_frozen", default=frozenset())
# the clock `strftime_now` reads for the render in progress (None: the wall clock); a
# caller that wants a reproducible prompt (tests, cached prompts) pins it
_NOW: ContextVar[datetime | None] = ContextVar("chat_template_now", default=None)


class ChatTemplateError(ValueError):
    """A template that cannot render this conversation (its own raise_exception, or a bug)."""


def raise_exception(message: str) -> None:
    raise TemplateError(message)


def _plain(value: Any) -> Any:
    """Jinja's lazy values (map/select generators, Undefined) as JSON-able Python values."""
    if isinstance(value, Undefined):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and hasattr(value, "__next__")):
        return [_plain(v) for v in value]
    return value


def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
           separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    # HF's tojson: plain json.dumps (no HTML escaping), unicode kept.
    return json.dumps(_plain(value), ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(fmt: str) -> str:
    return (_NOW.get() or datetime.now()).strftime(fmt)


def pinned_clock(now: datetime | None):
    """Context manager: `strftime_now` reads `now` (None: the wall clock) inside it."""
    class _Pinned:
        def __enter__(self):
            self.token = _NOW.set(now)

        def __exit__(self, *exc):
            _NOW.reset(self.token)
    return _Pinned()


class GenerationBlock(Extension):
    """`{% generation %}...{% endgeneration %}`: rendered as its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


class ChatSandbox(ImmutableSandboxedEnvironment):
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if modifies_known_mutable(obj, attr) and id(obj) not in _FROZEN.get():
            # The template's own list/dict: allow, minus the sandbox's other checks.
            return super(ImmutableSandboxedEnvironment, self).is_safe_attribute(obj, attr, value)
        return super().is_safe_attribute(obj, attr, value)


def container_ids(*values: Any) -> frozenset[int]:
    """id()s of every list/dict reachable from the caller's values."""
    seen: set[int] = set()
    stack = list(values)
    while stack:
        v = stack.pop()
        if isinstance(v, (list, dict, set)) and id(v) not in seen:
            seen.add(id(v))
            stack.extend(v.values() if isinstance(v, dict) else v)
    return frozenset(seen)


def make_environment() -> ChatSandbox:
    env = ChatSandbox(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, GenerationBlock])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def frozen(ids: frozenset[int]):
    """Context manager marking the caller's containers read-only for one render."""
    class _Frozen:
        def __enter__(self):
            self.token = _FROZEN.set(ids)

        def __exit__(self, *exc):
            _FROZEN.reset(self.token)
    return _Frozen()
