"""GGUF v2/v3 header reading: metadata and the tensor table, from a file or a byte stream."""
from .ggml_types import GGML_TYPES, GGML_TYPES_BY_NAME, GGMLType
from .reader import GGUFError, GGUFFile, GGUFParser, TensorInfo, parse_chunks, read_gguf

__all__ = ["GGML_TYPES", "GGML_TYPES_BY_NAME", "GGMLType", "GGUFError", "GGUFFile", "GGUFParser",
           "TensorInfo", "parse_chunks", "read_gguf"]
