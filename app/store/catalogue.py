"""Well-known GGUF models by public URL, for the page's model picker (online users).

Each entry pins a Hugging Face revision, so the bytes behind the URL cannot change, and
records the integrity facts the store checks while it downloads (web/model_store.js,
app/store/stream.py): the exact size in bytes and the sha256, each only where it was
found in a public source, named in `source`. Where a value was not found it is None and
says so: the store then checks the size the server announces and nothing more.

These values were looked up (not downloaded: the project's machines have no general
internet) on 2026-11-23.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class CatalogueModel:
    id: str
    name: str
    arch: str
    quant: str
    url: str
    size: int | None        # exact bytes, or None when no public source gave them
    approx_size: int        # bytes, for display (the Hub's rounded figure when size is None)
    sha256: str | None
    source: str             # where size and sha256 come from

    def as_dict(self) -> dict:
        return {**asdict(self), "remote": True}


def _hf(repo: str, revision: str, path: str) -> str:
    return f"https://huggingface.co/{repo}/resolve/{revision}/{path}"


CATALOGUE: tuple[CatalogueModel, ...] = (
    CatalogueModel(
        id="qwen3.5-0.8b-q4_k_m", name="Qwen3.5 0.8B (Q4_K_M)", arch="qwen35", quant="Q4_K_M",
        url=_hf("unsloth/Qwen3.5-0.8B-GGUF", "6ab461498e2023f6e3c1baea90a8f0fe38ab64d0", "Qwen3.5-0.8B-Q4_K_M.gguf"),
        size=532517120, approx_size=532517120,
        sha256="bd258782e35f7f458f8aced1adc053e6e92e89bc735ba3be89d38a06121dc517",
        source="revision, size and sha256 from a public project's pinned model catalogue (GitHub code "
               "search); not seen on the Hugging Face file page itself"),
    CatalogueModel(
        id="llama-3.2-1b-instruct-q4_k_m", name="Llama 3.2 1B Instruct (Q4_K_M)", arch="llama", quant="Q4_K_M",
        url=_hf("bartowski/Llama-3.2-1B-Instruct-GGUF", "d52af3776f99ddf220e5ffd3f93b2a4e4df105be",
                "Llama-3.2-1B-Instruct-Q4_K_M.gguf"),
        size=807694464, approx_size=807694464,
        sha256="6f85a640a97cf2bf5b8e764087b1e83da0fdb51d7c9fab7d0fece9385611df83",
        source="sha256: Hugging Face file page bartowski/Llama-3.2-1B-Instruct-GGUF/blob/d52af37.../"
               "Llama-3.2-1B-Instruct-Q4_K_M.gguf (Git LFS details); size: the Git LFS pointer with that "
               "sha256 (huggingface.co/spaces/danidanidani/GRDN.AI.3, commit b570e97)"),
    CatalogueModel(
        id="smollm2-360m-instruct-q8_0", name="SmolLM2 360M Instruct (Q8_0)", arch="llama", quant="Q8_0",
        url=_hf("HuggingFaceTB/SmolLM2-360M-Instruct-GGUF", "2633adad3eb0aec759aec7f41db367d974571ecf",
                "smollm2-360m-instruct-q8_0.gguf"),
        size=386404992, approx_size=386404992,
        sha256="48ab3034d0dd401fbc721eb1df3217902fee7dab9078992d66431f09b7750201",
        source="sha256: Hugging Face file page HuggingFaceTB/SmolLM2-360M-Instruct-GGUF/blob/2633ada.../"
               "smollm2-360m-instruct-q8_0.gguf (Git LFS details); size: the Git LFS pointer with that "
               "sha256 (huggingface.co/NikolayKozloff/SmolLM2-360M-Instruct-Q8_0-GGUF, blame view)"),
    CatalogueModel(
        id="mamba-130m-q8_0", name="Mamba 130M (Q8_0, base model)", arch="mamba", quant="Q8_0",
        url=_hf("devingulliver/mamba-gguf", "33d7574445061d7761066da3e73725c359360970",
                "mamba-130m/mamba-130m-q8_0.gguf"),
        size=None, approx_size=155_000_000,
        sha256="b332299cdeae87fa08f940479047c0cbbe049cacb6c99ef86e33ec03f0ca346a",
        source="sha256: Hugging Face file page devingulliver/mamba-gguf/blob/.../mamba-130m/"
               "mamba-130m-q8_0.gguf (Git LFS details, uploaded in commit 33d7574); exact size not found "
               "(the Hub shows 155 MB): only the server's Content-Length is checked. Falcon-Mamba 7B "
               "(~4 GB at Q4_K_M) does not fit the browser's 4 GB wasm32 memory, so the smallest Mamba is "
               "listed instead"),
)


def catalogue() -> list[dict]:
    """The catalogue as plain dicts (build.json's model list, after the bundled model)."""
    return [m.as_dict() for m in CATALOGUE]
