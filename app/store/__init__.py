"""Model store: streaming a GGUF into engine memory; (browser) Cache API persistence."""
from .stream import ModelStream

__all__ = ["ModelStream"]
