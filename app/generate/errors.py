"""Errors of the generation layer."""
from __future__ import annotations

from typing import Any


class ContextFullError(RuntimeError):
    """The conversation does not fit the context; `.reply` holds what was generated."""

    def __init__(self, message: str, reply: Any = None) -> None:
        super().__init__(message)
        self.reply = reply

