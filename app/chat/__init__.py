"""Chat templates from GGUF metadata (`tokenizer.chat_template`), rendered with Jinja2 in
a sandbox the way Hugging Face renders them, with named fallbacks for models without one."""
from .environment import ChatTemplateError
from .fallback import FALLBACKS, choose_fallback
from .template import ChatTemplate, chat_template_from_metadata

__all__ = ["FALLBACKS", "ChatTemplate", "ChatTemplateError", "chat_template_from_metadata", "choose_fallback"]
