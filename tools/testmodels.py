"""Random-weight GGUF models in each architecture's real tensor layout, for tests and benchmarks.

Written with gguf-py from the pinned llama.cpp sources (so the files are what llama.cpp's
own converter writes); quantized with gguf-py's quantizers, and K-quants by llama.cpp's
quantizer (through the reference driver) from the F32 file. Deterministic per seed.
Needs numpy (host only).
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from wasm_ext.sources import cache_root, llama_cpp_dir  # noqa: E402

sys.path.insert(0, str(llama_cpp_dir() / "gguf-py"))
import gguf  # noqa: E402

GENERATOR_VERSION = 1  # bump when the files this writes change

# gguf-py writes these itself; K-quants come from llama.cpp's quantizer (llama_ftype ids)
GGUF_PY_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")
LLAMA_FTYPES = {"Q4_K": 15, "Q5_K": 17, "Q6_K": 18, "Q2_K": 10, "Q3_K": 12, "IQ4_NL": 25, "IQ4_XS": 30}


@dataclass(frozen=True)
class Shape:
    arch: str
    n_vocab: int = 1024
    n_embd: int = 256
    n_layer: int = 2
    n_head: int = 4
    n_head_kv: int = 2
    head_dim: int = 64
    n_ff: int = 512
    n_ctx_train: int = 4096
    tied_output: bool = False
    sliding_window: int = 0
    rope_freqs: bool = False
    qkv_bias: bool = False
    qk_norm: bool = False

    @property
    def key(self) -> str:
        return (f"{self.arch}-v{self.n_vocab}-d{self.n_embd}-l{self.n_layer}-h{self.n_head}-{self.n_head_kv}"
                f"-hd{self.head_dim}-ff{self.n_ff}{'-tied' if self.tied_output else ''}"
                f"{f'-swa{self.sliding_window}' if self.sliding_window else ''}{'-rf' if self.rope_freqs else ''}")


TINY = {
    "llama": Shape("llama", rope_freqs=True),
    "qwen2": Shape("qwen2", qkv_bias=True, tied_output=True),
    "qwen3": Shape("qwen3", qk_norm=True),
    "gemma3": Shape("gemma3", n_layer=6, n_head_kv=1, tied_output=True, sliding_window=32, qk_norm=True),
}

# A Llama-shaped model of about 0.5B parameters, for benchmarks.
LLAMA_HALF_B = Shape("llama", n_vocab=32000, n_embd=1024, n_layer=24, n_head=16, n_head_kv=4, head_dim=64,
                     n_ff=4096)


def _vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocab: control tokens, 256 byte tokens, then unique pieces."""
    tokens, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(6)
    rng = np.random.default_rng(1234)
    letters = "abcdefghijklmnopqrstuvwxyz"
    seen = set(tokens)
    while len(tokens) < n_vocab:
        n = int(rng.integers(1, 6))
        piece = ("\u2581" if rng.random() < 0.4 else "") + "".join(letters[int(i)] for i in rng.integers(0, 26, n))
        if piece in seen:
            continue
        seen.add(piece)
        tokens.append(piece)
        scores.append(-float(len(tokens)))
        types.append(1)
    return tokens, scores, types


def _tensors(s: Shape, seed: int):
    """(name, float32 array in numpy order) for every tensor of the architecture."""
    rng = np.random.default_rng(seed)

    def w(rows: int, cols: int) -> np.ndarray:  # a [cols -> rows] projection, numpy shape (rows, cols)
        return (rng.standard_normal((rows, cols), dtype=np.float32) / np.sqrt(cols)).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    qd, kvd = s.n_head * s.head_dim, s.n_head_kv * s.head_dim
    yield "token_embd.weight", rng.standard_normal((s.n_vocab, s.n_embd), dtype=np.float32)
    yield "output_norm.weight", norm(s.n_embd)
    if not s.tied_output:
        yield "output.weight", w(s.n_vocab, s.n_embd)
    if s.rope_freqs:
        yield "rope_freqs.weight", np.linspace(1.0, 8.0, s.head_dim // 2, dtype=np.float32)
    for i in range(s.n_layer):
        p = f"blk.{i}."
        yield p + "attn_norm.weight", norm(s.n_embd)
        yield p + "attn_q.weight", w(qd, s.n_embd)
        yield p + "attn_k.weight", w(kvd, s.n_embd)
        yield p + "attn_v.weight", w(kvd, s.n_embd)
        if s.qkv_bias:
            yield p + "attn_q.bias", 0.1 * rng.standard_normal(qd, dtype=np.float32)
            yield p + "attn_k.bias", 0.1 * rng.standard_normal(kvd, dtype=np.float32)
            yield p + "attn_v.bias", 0.1 * rng.standard_normal(kvd, dtype=np.float32)
        if s.qk_norm:
            yield p + "attn_q_norm.weight", norm(s.head_dim)
            yield p + "attn_k_norm.weight", norm(s.head_dim)
        yield p + "attn_output.weight", w(s.n_embd, qd)
        if s.arch == "gemma3":
            yield p + "post_attention_norm.weight", norm(s.n_embd)
            yield p + "post_ffw_norm.weight", norm(s.n_embd)
        yield p + "ffn_norm.weight", norm(s.n_embd)
        yield p + "ffn_gate.weight", w(s.n_ff, s.n_embd)
        yield p + "ffn_up.weight", w(s.n_ff, s.n_embd)
        yield p + "ffn_down.weight", w(s.n_embd, s.n_ff)


def write_gguf(path: Path, s: Shape, type_name: str = "F32", seed: int = 0) -> Path:
    """Write a random model whose 2-d weights are `type_name` (a gguf-py type)."""
    qtype = gguf.GGMLQuantizationType[type_name]
    tmp = path.with_name(path.name + ".partial")
    writer = gguf.GGUFWriter(str(tmp), s.arch)
    a = s.arch
    writer.add_name(f"random {a} {type_name}")
    writer.add_context_length(s.n_ctx_train)
    writer.add_embedding_length(s.n_embd)
    writer.add_block_count(s.n_layer)
    writer.add_feed_forward_length(s.n_ff)
    writer.add_head_count(s.n_head)
    writer.add_head_count_kv(s.n_head_kv)
    writer.add_key_length(s.head_dim)
    writer.add_value_length(s.head_dim)
    writer.add_rope_dimension_count(s.head_dim)
    writer.add_layer_norm_rms_eps(1e-6 if a == "gemma3" else 1e-5)
    writer.add_rope_freq_base(1_000_000.0 if a in ("qwen2", "qwen3", "gemma3") else 10000.0)
    if s.sliding_window:
        writer.add_sliding_window(s.sliding_window)
    tokens, scores, types = _vocab(s.n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    for name, arr in _tensors(s, seed):
        if arr.ndim == 2 and qtype != gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, arr)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, path)
    return path


def model_path(s: Shape, type_name: str, seed: int = 0, reference_binary: Path | None = None) -> Path:
    """Path of a cached random model (generated on first use)."""
    out_dir = cache_root() / f"testmodels-v{GENERATOR_VERSION}"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{s.key}-s{seed}-{type_name}.gguf"
    if path.exists():
        return path
    if type_name in GGUF_PY_TYPES:
        return write_gguf(path, s, type_name, seed)
    if type_name in LLAMA_FTYPES:
        src = model_path(s, "F32", seed)
        if reference_binary is None:
            sys.path.insert(0, str(ROOT / "tests" / "reference"))
            from build import reference_binary as _ref  # type: ignore
            reference_binary = _ref()
        tmp = path.with_name(path.name + ".partial")
        subprocess.run([str(reference_binary), "quantize", str(src), str(tmp), str(LLAMA_FTYPES[type_name])],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.replace(tmp, path)
        return path
    raise ValueError(f"no generator for type {type_name}")


def tiny(arch: str, type_name: str = "F32", **changes) -> Path:
    return model_path(replace(TINY[arch], **changes), type_name)


if __name__ == "__main__":
    for arch in TINY:
        for t in ("F32", "Q4_0", "Q4_K"):
            print(tiny(arch, t))
