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
    # recurrent layers (mamba, qwen35): llama.cpp's ssm_* hyper-parameters
    ssm_d_conv: int = 0
    ssm_d_inner: int = 0
    ssm_d_state: int = 0
    ssm_dt_rank: int = 0
    ssm_n_group: int = 0
    ssm_dt_b_c_rms: bool = False
    full_attn_interval: int = 0
    rope_dims: int = 0  # partial rotary (qwen35); 0 = head_dim
    rope_sections: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        key = (f"{self.arch}-v{self.n_vocab}-d{self.n_embd}-l{self.n_layer}-h{self.n_head}-{self.n_head_kv}"
               f"-hd{self.head_dim}-ff{self.n_ff}{'-tied' if self.tied_output else ''}"
               f"{f'-swa{self.sliding_window}' if self.sliding_window else ''}{'-rf' if self.rope_freqs else ''}")
        if self.ssm_d_inner:  # recurrent shapes only: existing keys stay as they were
            key += (f"-ssm{self.ssm_d_conv}x{self.ssm_d_inner}x{self.ssm_d_state}x{self.ssm_dt_rank}"
                    f"x{self.ssm_n_group}{'-bcrms' if self.ssm_dt_b_c_rms else ''}"
                    f"-fa{self.full_attn_interval}-rd{self.rope_dims}")
        return key


TINY = {
    "llama": Shape("llama", rope_freqs=True),
    "qwen2": Shape("qwen2", qkv_bias=True, tied_output=True),
    "qwen3": Shape("qwen3", qk_norm=True),
    "gemma3": Shape("gemma3", n_layer=6, n_head_kv=1, tied_output=True, sliding_window=32, qk_norm=True),
}

# Recurrent and hybrid architectures (kept apart from TINY, which the transformer-only
# suites iterate). Mamba-1 (+ Falcon-Mamba's RMSNorm on dt/B/C) and Qwen 3.5 (3 Gated
# DeltaNet layers, then one gated full-attention layer).
TINY_RECURRENT = {
    "mamba": Shape("mamba", n_layer=2, n_head=0, n_head_kv=0, head_dim=0, n_ff=0, ssm_d_conv=4,
                   ssm_d_inner=512, ssm_d_state=16, ssm_dt_rank=32),
    "falcon-mamba": Shape("mamba", n_layer=2, n_head=0, n_head_kv=0, head_dim=0, n_ff=0, ssm_d_conv=4,
                          ssm_d_inner=512, ssm_d_state=16, ssm_dt_rank=32, ssm_dt_b_c_rms=True),
    "mamba2": Shape("mamba2", n_layer=2, n_head=0, n_head_kv=0, head_dim=0, n_ff=0, ssm_d_conv=4,
                    ssm_d_inner=512, ssm_d_state=32, ssm_dt_rank=8, ssm_n_group=2),
    "qwen35": Shape("qwen35", n_layer=4, n_head=4, n_head_kv=2, head_dim=64, n_ff=512,
                    ssm_d_conv=4, ssm_d_inner=128, ssm_d_state=32, ssm_dt_rank=4, ssm_n_group=2,
                    full_attn_interval=4, rope_dims=16, rope_sections=(3, 3, 2, 0)),
}

# Qwen3.5-0.8B's real shapes (random weights), for benchmarks.
QWEN35_0_8B = Shape("qwen35", n_vocab=248320, n_embd=1024, n_layer=24, n_head=8, n_head_kv=2, head_dim=256,
                    n_ff=3584, tied_output=True, n_ctx_train=262144, ssm_d_conv=4, ssm_d_inner=2048,
                    ssm_d_state=128, ssm_dt_rank=16, ssm_n_group=16, full_attn_interval=4, rope_dims=64,
                    rope_sections=(11, 11, 10, 0))
# A Mamba-1 of about the same size (mamba-790m's shapes).
MAMBA_790M = Shape("mamba", n_vocab=50280, n_embd=1536, n_layer=48, n_head=0, n_head_kv=0, head_dim=0, n_ff=0,
                   tied_output=True, ssm_d_conv=4, ssm_d_inner=3072, ssm_d_state=16, ssm_dt_rank=96)

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


def _recurrent_tensors(s: Shape, rng):
    """Tensors of mamba and qwen35 (numpy order: a GGUF [ne0, ne1] tensor is shape (ne1, ne0))."""
    def w(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) / np.sqrt(cols)).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    def small(*shape: int, scale: float = 0.1) -> np.ndarray:
        return (scale * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)

    yield "token_embd.weight", rng.standard_normal((s.n_vocab, s.n_embd), dtype=np.float32)
    yield "output_norm.weight", norm(s.n_embd)
    if not s.tied_output:
        yield "output.weight", w(s.n_vocab, s.n_embd)
    d_inner, d_state, d_conv = s.ssm_d_inner, s.ssm_d_state, s.ssm_d_conv
    for i in range(s.n_layer):
        p = f"blk.{i}."
        yield p + "attn_norm.weight", norm(s.n_embd)
        if s.arch == "mamba":
            dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), d_inner)).astype(np.float32)
            yield p + "ssm_in.weight", w(2 * d_inner, s.n_embd)
            yield p + "ssm_conv1d.weight", w(d_inner, d_conv)
            yield p + "ssm_conv1d.bias", small(d_inner)
            yield p + "ssm_x.weight", w(s.ssm_dt_rank + 2 * d_state, d_inner)
            yield p + "ssm_dt.weight", w(d_inner, s.ssm_dt_rank)
            yield p + "ssm_dt.bias", np.log(np.expm1(dt)).astype(np.float32)
            yield p + "ssm_a", -np.tile(np.arange(1, d_state + 1, dtype=np.float32), (d_inner, 1))
            yield p + "ssm_d", norm(d_inner)
            yield p + "ssm_out.weight", w(s.n_embd, d_inner)
            continue
        if s.arch == "mamba2":
            n_head, conv_dim = s.ssm_dt_rank, d_inner + 2 * s.ssm_n_group * d_state
            dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), n_head)).astype(np.float32)
            yield p + "ssm_in.weight", w(d_inner + conv_dim + n_head, s.n_embd)
            yield p + "ssm_conv1d.weight", w(conv_dim, d_conv)
            yield p + "ssm_conv1d.bias", small(conv_dim)
            yield p + "ssm_dt.bias", np.log(np.expm1(dt)).astype(np.float32)
            yield p + "ssm_a", (-np.exp(rng.uniform(0.0, np.log(16.0), (n_head, 1)))).astype(np.float32)
            yield p + "ssm_d", norm(n_head).reshape(n_head, 1)
            yield p + "ssm_norm.weight", norm(d_inner).reshape(s.ssm_n_group, d_inner // s.ssm_n_group)
            yield p + "ssm_out.weight", w(s.n_embd, d_inner)
            continue
        # qwen35: Gated DeltaNet on 3 of every `full_attn_interval` layers, gated attention on the rest
        yield p + "post_attention_norm.weight", norm(s.n_embd)
        if (i + 1) % s.full_attn_interval != 0:
            key_dim, n_v = d_state * s.ssm_n_group, s.ssm_dt_rank
            yield p + "attn_qkv.weight", w(2 * key_dim + d_inner, s.n_embd)
            yield p + "attn_gate.weight", w(d_inner, s.n_embd)
            yield p + "ssm_conv1d.weight", w(2 * key_dim + d_inner, d_conv)
            yield p + "ssm_dt.bias", (1.0 + small(n_v)).astype(np.float32)
            yield p + "ssm_a", (-np.exp(rng.uniform(0.0, np.log(16.0), n_v))).astype(np.float32)
            yield p + "ssm_beta.weight", w(n_v, s.n_embd)
            yield p + "ssm_alpha.weight", w(n_v, s.n_embd)
            yield p + "ssm_norm.weight", norm(d_inner // n_v)
            yield p + "ssm_out.weight", w(s.n_embd, d_inner)
        else:
            qd, kvd = s.n_head * s.head_dim, s.n_head_kv * s.head_dim
            yield p + "attn_q.weight", w(2 * qd, s.n_embd)  # per head: query, then output gate
            yield p + "attn_k.weight", w(kvd, s.n_embd)
            yield p + "attn_v.weight", w(kvd, s.n_embd)
            yield p + "attn_q_norm.weight", norm(s.head_dim)
            yield p + "attn_k_norm.weight", norm(s.head_dim)
            yield p + "attn_output.weight", w(s.n_embd, qd)
        yield p + "ffn_gate.weight", w(s.n_ff, s.n_embd)
        yield p + "ffn_up.weight", w(s.n_ff, s.n_embd)
        yield p + "ffn_down.weight", w(s.n_embd, s.n_ff)


def _tensors(s: Shape, seed: int):
    """(name, float32 array in numpy order) for every tensor of the architecture."""
    rng = np.random.default_rng(seed)
    if s.ssm_d_inner:
        yield from _recurrent_tensors(s, rng)
        return

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
    if a in ("mamba", "mamba2"):  # what llama.cpp's converter writes for Mamba-1 / Mamba-2
        writer.add_ssm_conv_kernel(s.ssm_d_conv)
        writer.add_ssm_inner_size(s.ssm_d_inner)
        writer.add_ssm_state_size(s.ssm_d_state)
        writer.add_ssm_time_step_rank(s.ssm_dt_rank)
        if a == "mamba":
            writer.add_ssm_dt_b_c_rms(s.ssm_dt_b_c_rms)
        else:
            writer.add_ssm_group_count(s.ssm_n_group)
        writer.add_layer_norm_rms_eps(1e-5)
    else:
        writer.add_head_count_kv(s.n_head_kv)
        writer.add_key_length(s.head_dim)
        writer.add_value_length(s.head_dim)
        writer.add_rope_dimension_count(s.rope_dims or s.head_dim)
        writer.add_layer_norm_rms_eps(1e-6 if a in ("gemma3", "qwen35") else 1e-5)
        writer.add_rope_freq_base({"qwen35": 10_000_000.0}.get(a, 1_000_000.0 if a in ("qwen2", "qwen3", "gemma3")
                                                                  else 10000.0))
    if a == "qwen35":
        writer.add_ssm_conv_kernel(s.ssm_d_conv)
        writer.add_ssm_state_size(s.ssm_d_state)
        writer.add_ssm_group_count(s.ssm_n_group)
        writer.add_ssm_time_step_rank(s.ssm_dt_rank)
        writer.add_ssm_inner_size(s.ssm_d_inner)
        writer.add_full_attention_interval(s.full_attn_interval)
        writer.add_rope_dimension_sections(list(s.rope_sections))
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
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    for name, arr in _tensors(s, seed):
        # conv kernels and A stay F32 (ggml's scan/conv read them as F32, as llama.cpp's converter keeps them)
        keep_f32 = s.ssm_d_inner and (".ssm_conv1d" in name or name.endswith((".ssm_a", ".ssm_d"))
                                      or ".ssm_norm" in name or arr.shape[-1] % block)
        if arr.ndim == 2 and qtype != gguf.GGMLQuantizationType.F32 and not keep_f32:
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
    return model_path(replace(TINY[arch] if arch in TINY else TINY_RECURRENT[arch], **changes), type_name)


if __name__ == "__main__":
    for arch in TINY:
        for t in ("F32", "Q4_0", "Q4_K"):
            print(tiny(arch, t))
