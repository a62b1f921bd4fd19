"""Inside Pyodide (Python 3.14, Unicode 16.0) the pre-tokenizers' Unicode classes are the
host's (and llama.cpp's, Unicode 15.1) for every codepoint."""
from __future__ import annotations

import hashlib

from pyodide_support import app_files, run_in_pyodide

CODE = """
import hashlib
from app.tokenizer.unicode_classes import representative
hashlib.sha256("".join(representative(cp) for cp in range(128, 0x110000)).encode("utf-8", "surrogatepass")).hexdigest()
"""


def test_unicode_classes_same_in_pyodide():
    from app.tokenizer.unicode_classes import representative
    host = hashlib.sha256("".join(representative(cp) for cp in range(128, 0x110000))
                          .encode("utf-8", "surrogatepass")).hexdigest()
    assert run_in_pyodide(CODE, app_files("tokenizer")) == host
