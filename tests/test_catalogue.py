"""The model catalogue the page offers (app/store/catalogue.py): every entry is an
architecture this runtime runs, at a Hugging Face URL pinned to a revision (the bytes
behind it cannot change), with the integrity facts the store checks while downloading."""
from __future__ import annotations

import re

from app.models import ARCHITECTURES
from app.store.catalogue import CATALOGUE, catalogue

URL = re.compile(r"^https://huggingface\.co/[\w.-]+/[\w.-]+/resolve/[0-9a-f]{40}/[\w./-]+\.gguf$")


def test_catalogue_entries_are_pinned_and_runnable():
    assert {m.arch for m in CATALOGUE} >= {"qwen35", "llama", "mamba"}
    assert len({m.id for m in CATALOGUE}) == len(CATALOGUE)
    for m in CATALOGUE:
        assert m.arch in ARCHITECTURES, m
        assert URL.match(m.url), m.url
        assert m.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", m.sha256), m
        assert m.size is None or m.size > 10 << 20, m
        assert m.source, m
        # what the page's picker and the store read
        d = next(x for x in catalogue() if x["id"] == m.id)
        assert d["remote"] is True and d["url"] == m.url and d["sha256"] == m.sha256 and d["size"] == m.size
    # the models: Qwen 3.5 0.8B, Llama 3.2 1B Instruct, SmolLM2 360M Instruct, a Mamba
    names = " ".join(m.name for m in CATALOGUE)
    for want in ("Qwen3.5 0.8B", "Llama 3.2 1B Instruct", "SmolLM2 360M Instruct", "Mamba"):
        assert want in names
