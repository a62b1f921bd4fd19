"""The worker's Python side: the message protocol between the page and the model."""
from .session import WorkerSession

__all__ = ["WorkerSession"]
