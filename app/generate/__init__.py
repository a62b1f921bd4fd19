"""Generation: options, the token loop, streamed replies, chat sessions and the LLM object."""
from ..sampling import OptionError, SamplingParams
from .errors import ContextFullError
from .llm import LLM, load
from .options import GenerateOptions, make_options
from .reply import Piece, Reply
from .session import ChatSession
from .stats import ReplyStats

__all__ = ["LLM", "ChatSession", "ContextFullError", "GenerateOptions", "OptionError", "Piece", "Reply",
           "ReplyStats", "SamplingParams", "load", "make_options"]
