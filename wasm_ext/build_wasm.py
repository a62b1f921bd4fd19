"""Build the engine for the browser with Debian's Emscripten (3.1.6); print the outputs.

Same sources as the native engine (wasm_ext/engine*.cpp + ggml from the pinned sdist),
two modules, each built twice: with relaxed SIMD (x86's FMAs as f32x4.relaxed_madd, the
CPU's own FMA; what Chrome and Firefox load) and without (the baseline: the same FMAs
computed in f64, 3-4x slower; for engines without relaxed SIMD). web/engine_flavor.js
picks one in the browser.

  side     Pyodide side module `pyllm_engine.so`: single-threaded, SIMD128,
           -sSIDE_MODULE=1 -sWASM_BIGINT=1 -fno-exceptions; loaded with ctypes.CDLL
           inside Pyodide through app/backends/ggml/library.py, like the host library.
  threads  pthreads module `pyllm_engine_mt.js/.wasm/.worker.js`: SIMD128, -pthread, a
           persistent ggml threadpool; a standalone module (Pyodide has no threads) that
           Python drives through JS (app/worker/jslib.py, web/engine_bridge.js).

ggml is built from a patched copy of the extracted tree (patch_ggml), so that wasm computes
what the native x86 build computes (-march=native on this project's AVX-512 machines;
tests/browser/test_wasm_engine.py checks it op by op and model by model):
  * upstream's wasm `quantize_row_q8_0` / `quantize_row_q8_1` truncate the scaled
    activations where the reference (and the x86 kernels) round to nearest, which biases
    every quantized mat-mul: we round first (`wasm_f32x4_nearest`) and scale by 127/amax
    as the x86 kernels do; q8_K activations use the reference quantizer, as x86 does;
  * ggml's F32/F16 SIMD mappings (vec dot/mad/scale: flash attention, F32/F16 mat-vecs,
    recurrent layers) are replaced by emscripten/simd_x86_avx512.h: the AVX-512 register
    layout and reduction order, a fused multiply-add (relaxed_madd, or in the baseline
    build computed in f64, rounded to odd where the f64 sum sits on an f32 half-way
    point), the AVX-512 silu;
  * quantized dot products (Q8_0/Q4_0/Q5_0, Q4_1/Q5_1, Q2_K-Q6_K) with the x86 kernels'
    lanes, FMAs and horizontal sums (emscripten/quants_x86.c), and for batches of 8+ rows
    through non-repacked K-quants the float chain of x86's ggml-cpu/tiled (one fma per
    super-block and output); llamafile's tinyBLAS per-element arithmetic for F32/F16 batches
    (sgemm_x86.inc); Q4_0/Q4_K/Q2_K repacked as x86 repacks them, with its gemv/gemm
    arithmetic (repack_x86.c);
  * flash attention with an F16 KV cache keeps x86's F16 accumulator as F32 values rounded
    to F16 after every step (the same numbers, no F16 stores), converts K/V rows to F32
    in vector arithmetic, once for all the query rows that share them (fattn_wasm.inc);
  * softmax (flash attention's tiled path for ubatches of 64+ rows uses it) with the
    AVX-512 build's 16-lane ggml_v_expf and reduction;
  * the scalar multiply-adds GCC contracts into FMAs on x86 (-ffp-contract=fast is its
    default): flash attention's running sum, RoPE's rotation, the GELU table, vec_mad
    leftovers, Mamba's conv and scan.
  * the pthreads build's thread barrier spins a while and then sleeps on a futex
    (emscripten/barrier_wasm.c), so threads sharing busy cores do not spin away the time
    slices of the thread they wait for.
What stays different: RoPE's cosf/sinf (musl here, glibc natively) and kernels our models
do not use (the IQ types: vec_dot, ggml-cpu/tiled batches, IQ4_NL's repacking; MXFP4;
ggml-cpu/tiled's MUL_MAT_ID, which the engine never builds; tanh).

Outputs are cached under ~/.cache/pyllm (PYLLM_CACHE) keyed by the sdist version and a
hash of every input (engine sources, this recipe, the patch), never in the repo.

    python wasm_ext/build_wasm.py            # side module path
    python wasm_ext/build_wasm.py --threads  # and the pthreads module
    python wasm_ext/build_wasm.py --check    # also count SIMD opcodes in the side module
    python wasm_ext/build_wasm.py --baseline # the builds for engines without relaxed SIMD
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from wasm_ext.relaxed_simd import standardize  # noqa: E402
from wasm_ext.sources import SDIST_VERSION, cache_root, llama_cpp_dir  # noqa: E402

EMSCRIPTEN_CMAKE = HERE / "emscripten" / "CMakeLists.txt"
BUILD_JOBS = "2"  # the project's machines have 2 cores shared by several people

# Compile flags come from emscripten/CMakeLists.txt (-msimd128 -fno-exceptions, -fPIC or
# -pthread); these are the link flags. -O2 at link time: -O3 spends minutes in binaryen
# for no runtime gain.
SIDE_LINK_FLAGS = ["-O2", "-sSIDE_MODULE=1", "-sWASM_BIGINT=1", "-fno-exceptions"]
# The pthreads module: a standalone module (Pyodide itself has no threads) driven from
# Python through JS (app/worker/jslib.py). The page sizes it per model: Module.INITIAL_MEMORY
# from the model's size, Module.pyllmPoolSize >= threads-1 workers started up front (a
# compute asking for more threads than pool+1 would wait forever for a worker that can only
# start once the calling thread yields).
THREADS_LINK_FLAGS = ["-O2", "-pthread", "-sPTHREAD_POOL_SIZE=Module.pyllmPoolSize", "-sALLOW_MEMORY_GROWTH=1",
                      "-sMAXIMUM_MEMORY=4GB", "-sINITIAL_MEMORY=64MB", "-sMODULARIZE=1",
                      "-sEXPORT_NAME=createPyllmEngine", "-sENVIRONMENT=web,worker,node", "-sWASM_BIGINT=1",
                      "-fno-exceptions", "-sEXPORTED_FUNCTIONS=_malloc,_free",
                      "-sEXPORTED_RUNTIME_METHODS=UTF8ToString,stringToUTF8,lengthBytesUTF8",
                      "-sINCOMING_MODULE_JS_API=INITIAL_MEMORY,pyllmPoolSize,locateFile,wasmBinary,print,printErr,"
                      "mainScriptUrlOrBlob,instantiateWasm,onAbort"]


# ---- the q8 rounding patch ---------------------------------------------------------------

_Q8_TRUNC = "const v128_t vi = wasm_i32x4_trunc_sat_f32x4(v);"
_Q8_ROUND = "const v128_t vi = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(v)); /* pyllm: round like x86 */"
_Q8_ID = "const float id = d ? 1.0f/d : 0.0f;"
_Q8_ID_X86 = "const float id = amax != 0.0f ? 127.f/amax : 0.0f; /* pyllm: the x86 scale */"
PATCH_VERSION = 11  # bump when patch_ggml changes what it writes
SIMD_X86_HEADER = HERE / "emscripten" / "simd_x86_avx512.h"
_SIMD_WASM_BEGIN = "#elif defined(__wasm_simd128__)\n"
_SIMD_WASM_END = "#elif defined(__SSE3__)\n"
_F16_DOT_FMA = "#define GGML_F16_DOT_VEC_FMA        GGML_F16_VEC_FMA\n"
_F16_DOT_FMA_PYLLM = ("#ifdef PYLLM_F16_DOT_VEC_FMA /* pyllm */\n#define GGML_F16_DOT_VEC_FMA        PYLLM_F16_DOT_VEC_FMA\n"
                      "#else\n" + _F16_DOT_FMA + "#endif\n")
QUANTS_X86 = HERE / "emscripten" / "quants_x86.c"
SGEMM_X86 = HERE / "emscripten" / "sgemm_x86.inc"
REPACK_X86 = HERE / "emscripten" / "repack_x86.c"
GEMV_X86 = HERE / "emscripten" / "gemv_x86.c"
BARRIER_WASM = HERE / "emscripten" / "barrier_wasm.c"
_QUANTS_REPLACED = ("ggml_vec_dot_q4_0_q8_0", "ggml_vec_dot_q5_0_q8_0", "ggml_vec_dot_q8_0_q8_0",
                    "ggml_vec_dot_q4_1_q8_1", "ggml_vec_dot_q5_1_q8_1",
                    "ggml_vec_dot_q2_K_q8_K", "ggml_vec_dot_q3_K_q8_K", "ggml_vec_dot_q4_K_q8_K",
                    "ggml_vec_dot_q5_K_q8_K", "ggml_vec_dot_q6_K_q8_K", "quantize_row_q8_K")
# repack kernels that repack_x86.c defines for wasm (upstream aliases them to the generic ones)
_REPACK_REPLACED = ("ggml_quantize_mat_q8_0_4x8", "ggml_quantize_mat_q8_K_4x8", "ggml_gemv_q4_0_8x8_q8_0",
                    "ggml_gemv_q4_K_8x8_q8_K", "ggml_gemm_q4_0_8x8_q8_0", "ggml_gemm_q4_K_8x8_q8_K",
                    "ggml_gemv_q2_K_8x8_q8_K", "ggml_gemm_q2_K_8x8_q8_K")
_REPACK_CHOICE = "    if (cur->type == GGML_TYPE_Q4_0) {\n"
_REPACK_CHOICE_WASM = (
    "#if defined(__wasm_simd128__) /* pyllm: repack what the x86 (AVX2/AVX-512) build repacks, with its kernels */\n"
    "    if (cur->type == GGML_TYPE_Q4_0) { return cur->ne[1] % 8 == 0 ? &q4_0_8x8_q8_0 : nullptr; }\n"
    "    if (cur->type == GGML_TYPE_Q4_K) { return cur->ne[1] % 8 == 0 ? &q4_K_8x8_q8_K : nullptr; }\n"
    "    if (cur->type == GGML_TYPE_Q2_K) { return cur->ne[1] % 8 == 0 ? &q2_K_8x8_q8_K : nullptr; }\n"
    "    return nullptr;\n#endif\n")
_SGEMM_DEF = "bool llamafile_sgemm(const struct ggml_compute_params * params,"
_SGEMM_BODY = "int64_t ldc, int Atype, int Btype, int Ctype) {\n"
_SGEMM_WASM = ("#if defined(__wasm_simd128__) /* pyllm */\n    return pyllm_sgemm_x86(params, m, n, k, A, lda, B, ldb, "
               "C, ldc, Atype, Btype, Ctype);\n#endif\n")
# silu / swiglu: the AVX-512 build's ggml_v_silu (16 lanes at a time, scalar tail)
_SILU_HEAD = "void ggml_vec_silu_f32(const int n, float * y, const float * x) {\n    int i = 0;\n"
_SILU_WASM = ("#if defined(__wasm_simd128__) /* pyllm: as the AVX-512 build */\n    for (; i + 15 < n; i += 16) {\n"
              "        for (int k = 0; k < 16; k += 4) wasm_v128_store(y + i + k, pyllm_v_silu(wasm_v128_load(x + i + k)));\n"
              "    }\n#endif\n")
_SWIGLU_HEAD = "void ggml_vec_swiglu_f32(const int n, float * y, const float * x, const float * g) {\n    int i = 0;\n"
_SWIGLU_WASM = ("#if defined(__wasm_simd128__) /* pyllm: as the AVX-512 build */\n    for (; i + 15 < n; i += 16) {\n"
                "        for (int k = 0; k < 16; k += 4) wasm_v128_store(y + i + k, wasm_f32x4_mul(pyllm_v_silu("
                "wasm_v128_load(x + i + k)), wasm_v128_load(g + i + k)));\n    }\n#endif\n")
# softmax (flash attention's tiled path, from 64 query rows: a prefill's ubatch): the AVX-512
# build's 16-lane ggml_v_expf and _mm512_reduce_add_ps per 16 values
_SOFTMAX_HEAD = "ggml_float ggml_vec_soft_max_f32(const int n, float * y, const float * x, float max) {\n    int i = 0;\n    ggml_float sum = 0;\n"
_SOFTMAX_WASM = ("#if defined(__wasm_simd128__) /* pyllm: as the AVX-512 build */\n    for (; i + 15 < n; i += 16) {\n"
                 "        pyllm_f32x16 val;\n        for (int k = 0; k < 4; k++) {\n"
                 "            val.q[k] = pyllm_v_expf(wasm_f32x4_sub(wasm_v128_load(x + i + 4 * k), wasm_f32x4_splat(max)));\n"
                 "            wasm_v128_store(y + i + 4 * k, val.q[k]);\n        }\n"
                 "        sum += (ggml_float) pyllm_f32x16_reduce_add(val);\n    }\n#endif\n")
# simd_gemm (flash attention's tiled path): 2 rows x 16 columns per micro-tile for wasm, whose
# 16-float "register" is four v128 (2 x 2 spills V8's 16 registers; 2 x 1 measured ~1.7x
# faster); every output still sums its K products in order with the same FMAs
_GEMM_TILE = "#else\n    static constexpr int GEMM_RM = 2;\n    static constexpr int GEMM_RN = 2;\n#endif\n"
_GEMM_TILE_WASM = ("#elif defined(__wasm_simd128__) /* pyllm: 2 x 1 (see build_wasm.py) */\n"
                   "    static constexpr int GEMM_RM = 2;\n    static constexpr int GEMM_RN = 1;\n" + _GEMM_TILE)
# rope's rotation, fused the way GCC contracts it on x86 (seen in the native object code:
# vfmsub231ss / vfmadd132ss after one vmulss each)
_ROPE_ROT = ("    dst[0]        = type_conversion_table<T>::from_f32(x0*cos_theta - x1*sin_theta);\n"
             "    dst[n_offset] = type_conversion_table<T>::from_f32(x0*sin_theta + x1*cos_theta);\n")
_ROPE_ROT_FUSED = ("    dst[0]        = type_conversion_table<T>::from_f32(pyllm_fmaf(x0, cos_theta, -(x1*sin_theta))); /* pyllm */\n"
                   "    dst[n_offset] = type_conversion_table<T>::from_f32(pyllm_fmaf(x0, sin_theta, x1*cos_theta));\n")
# scalar multiply-adds that GCC contracts into FMAs on x86 (-ffp-contract=fast is its default;
# each seen in the native object code or in the results): vec_mad leftovers (n % 64), the
# GELU table (one F16 entry differs unfused), Mamba's conv and scan
_CONTRACTED = {
    "vec.h": (("    return 0.5f*x*(1.0f + tanhf(SQRT_2_OVER_PI*x*(1.0f + GELU_COEF_A*x*x)));\n",
               "    return 0.5f*x*(1.0f + tanhf(SQRT_2_OVER_PI*x*pyllm_fmaf(GELU_COEF_A*x, x, 1.0f))); /* pyllm */\n", 1),
              ("            y[i] += x[i]*v;\n", "            y[i] = pyllm_fmaf(x[i], v, y[i]); /* pyllm */\n", 1),
              ("        y[i] = GGML_CPU_FP32_TO_FP16(GGML_CPU_FP16_TO_FP32(y[i]) + GGML_CPU_FP16_TO_FP32(x[i])*v);\n",
               "        y[i] = GGML_CPU_FP32_TO_FP16(pyllm_fmaf(GGML_CPU_FP16_TO_FP32(x[i]), v, "
               "GGML_CPU_FP16_TO_FP32(y[i]))); /* pyllm */\n", 1)),
    "ops.cpp": (("                    sumf += s[i0 + i1*ncs] * c[i0 + i1*nc];\n",
                 "                    sumf = pyllm_fmaf(s[i0 + i1*ncs], c[i0 + i1*nc], sumf); /* pyllm */\n", 1),
                ("const float state = (s0[i] * dA) + (B[ig] * x_dt);",
                 "const float state = pyllm_fmaf(s0[i], dA, B[ig] * x_dt); /* pyllm */", 1),
                ("const float state = (s0[i] * expf(dt_soft_plus * A[i0 + h*nc])) + (B[ig] * x_dt);",
                 "const float state = pyllm_fmaf(s0[i], expf(dt_soft_plus * A[i0 + h*nc]), B[ig] * x_dt); /* pyllm */", 1),
                ("sumf += state * C[ig];", "sumf = pyllm_fmaf(state, C[ig], sumf); /* pyllm */", 2)),
}
_FA_Q = "        q_to_vec_dot(pq, Q_q, DK);\n"
_FA_Q_WASM = _FA_Q + (
    "#if defined(__wasm_simd128__) /* pyllm: for F16 K, Q back in F32 once per row (exact) */\n"
    "        float pyllm_q32[1024];\n"
    "        const bool pyllm_kq = k->type == GGML_TYPE_F16 && DK <= 1024;\n"
    "        for (int64_t d = 0; pyllm_kq && d < DK; ++d) pyllm_q32[d] = GGML_CPU_FP16_TO_FP32(Q_q[d]);\n"
    "#endif\n")
_FA_KQ = "            kq_vec_dot(DK, &s, 0, k_data, 0, Q_q, 0, 1);\n"
_FA_KQ_WASM = ("#if defined(__wasm_simd128__) /* pyllm: ggml_vec_dot_f16's arithmetic, Q not reconverted per key */\n"
               "            if (pyllm_kq) pyllm_vec_dot_f16_f32((int) DK, &s, (const ggml_fp16_t *) k_data, pyllm_q32); else\n"
               "#endif\n" + _FA_KQ)
# the threads build's barrier: spin, then sleep on a futex (emscripten/barrier_wasm.c)
_BARRIER_FN = "void ggml_barrier(struct ggml_threadpool * tp) {\n"
_BARRIER_LAST = ("        atomic_fetch_add_explicit(&tp->n_barrier_passed, 1, memory_order_seq_cst);\n"
                 "        return;\n")
_BARRIER_LAST_WASM = ("        atomic_fetch_add_explicit(&tp->n_barrier_passed, 1, memory_order_seq_cst);\n"
                      "#ifdef __EMSCRIPTEN_PTHREADS__ /* pyllm */\n"
                      "        pyllm_barrier_wake(&tp->n_barrier_passed);\n"
                      "#endif\n"
                      "        return;\n")
_BARRIER_SPIN = ("    while (atomic_load_explicit(&tp->n_barrier_passed, memory_order_relaxed) == n_passed) {\n"
                 "        ggml_thread_cpu_relax();\n"
                 "    }\n")
_BARRIER_SPIN_WASM = ("#ifdef __EMSCRIPTEN_PTHREADS__ /* pyllm */\n"
                      "    pyllm_barrier_wait(&tp->n_barrier_passed, n_passed);\n"
                      "#else\n" + _BARRIER_SPIN + "#endif\n")
# F16 V: the F16 accumulator VKQ16 held in VKQ32 as F32 values that are exactly F16
# (simd_x86_avx512.h's pyllm_vec_mad_f16_f32acc / pyllm_vec_scale_f16_f32acc: the values x86
# stores), so the final F16 -> F32 of VKQ16 is already done
_FA_VKQ16_ZERO = "            memset(VKQ16, 0, DV*sizeof(ggml_fp16_t));\n"
_FA_VKQ16_ZERO_WASM = ("#if defined(__wasm_simd128__) /* pyllm: VKQ16 kept in VKQ32 (F16 values as F32) */\n"
                       "            memset(VKQ32, 0, DV*sizeof(float));\n#else\n" + _FA_VKQ16_ZERO + "#endif\n")
_FA_VKQ16_SCALE = "                    ggml_vec_scale_f16(DV, VKQ16, ms);\n"
_FA_VKQ16_SCALE_WASM = ("#if defined(__wasm_simd128__) /* pyllm */\n"
                        "                    pyllm_vec_scale_f16_f32acc((int) DV, VKQ32, ms);\n#else\n"
                        + _FA_VKQ16_SCALE + "#endif\n")
_FA_VKQ16_MAD = "                ggml_vec_mad_f16(DV, VKQ16, (const ggml_fp16_t *) v_data, vs);\n"
_FA_VKQ16_MAD_WASM = ("#if defined(__wasm_simd128__) /* pyllm */\n"
                      "                pyllm_vec_mad_f16_f32acc((int) DV, VKQ32, (const ggml_fp16_t *) v_data, vs);\n#else\n"
                      + _FA_VKQ16_MAD + "#endif\n")
_FA_VKQ16_OUT = "        if (v->type == GGML_TYPE_F16) {\n            for (int64_t d = 0; d < DV; ++d) {\n"
_FA_VKQ16_OUT_WASM = ("#if defined(__wasm_simd128__) /* pyllm: VKQ32 already holds them */\n        if (false) {\n#else\n"
                      "        if (v->type == GGML_TYPE_F16) {\n#endif\n            for (int64_t d = 0; d < DV; ++d) {\n")
# F32 Q with F16 K/V: emscripten/fattn_wasm.inc runs groups of rows that share a K/V head
# together (each K/V row converted once per group); one_chunk calls it first
FATTN_WASM = HERE / "emscripten" / "fattn_wasm.inc"
_FA_ONE_CHUNK = "static void ggml_compute_forward_flash_attn_ext_f16_one_chunk(\n"
_FA_ROWS = "    int ith = params->ith;\n\n    for (int ir = ir0; ir < ir1; ++ir) {\n"
_FA_ROWS_WASM = ("#if defined(__wasm_simd128__) /* pyllm */\n"
                 "    if (pyllm_flash_attn_f16_rows(params, dst, ir0, ir1, ic_start, ic_end, partials, partial_stride)) {\n"
                 "        return;\n    }\n#endif\n" + _FA_ROWS)
# the split-KV decode (>= 512 cells) calls one_chunk head by head: all heads in one call (the
# same rows and partials, row r's at partials + r*partial_stride) so that they can be grouped
_FA_SPLIT = ("            for (int64_t q_head = 0; q_head < neq2; q_head++) {\n"
             "                ggml_compute_forward_flash_attn_ext_f16_one_chunk(\n"
             "                    params, dst, q_head, q_head + 1, ic_start, ic_end,\n"
             "                    chunk_partials, partial_stride);\n"
             "            }\n")
_FA_SPLIT_WASM = ("#if defined(__wasm_simd128__) /* pyllm: all heads in one call */\n"
                  "            ggml_compute_forward_flash_attn_ext_f16_one_chunk(params, dst, 0, (int) neq2, ic_start, ic_end,\n"
                  "                                                              chunk_partials, partial_stride);\n"
                  "#else\n" + _FA_SPLIT + "#endif\n")
_FA_SUM = "S = S*ms + vs; // scale and increment sum with partial sum"
_FA_SUM_FUSED = "S = fmaf(S, ms, vs); /* pyllm: fused, as GCC contracts it on x86 */"


def _replace_once(path: Path, text: str, old: str, new: str, count: int = 1) -> str:
    n = text.count(old)
    if n != count:
        raise RuntimeError(f"{path}: expected {count} occurrence(s) of {old!r} to patch, found {n}; "
                           "the pinned ggml changed: review wasm_ext/build_wasm.py's patches")
    return text.replace(old, new)


def patch_ggml(ggml: Path) -> None:
    """Apply our source fixes to a copy of ggml (asserting each one applied)."""
    quants = ggml / "src" / "ggml-cpu" / "arch" / "wasm" / "quants.c"
    text = quants.read_text()
    # quantize_row_q8_0 and quantize_row_q8_1 (activations for Q4_0/Q5_0/Q8_0/IQ4 and
    # Q4_1/Q5_1 mat-muls) must produce the bytes the x86 kernels produce:
    # 1. round to nearest (upstream truncates: a bias of half a step on every activation);
    # 2. scale by 127/amax as x86 does, not 1/(amax/127) as here: the two differ in the
    #    last bit for some amax, which flips values sitting near .5 (seen in a prefill).
    # q8_K already rounds with wasm_f32x4_nearest.
    for old, new in ((_Q8_TRUNC, _Q8_ROUND), (_Q8_ID, _Q8_ID_X86)):
        n = text.count(old)
        if n != 2:
            raise RuntimeError(f"{quants}: expected 2 occurrences of {old!r} to patch, found {n}; "
                               "the pinned ggml changed: review the wasm q8 quantizers")
        text = text.replace(old, new)
        assert text.count(new) == 2
    quants.write_text(text)

    # the F32/F16 SIMD mappings: splice in the AVX-512-equivalent section for wasm
    mappings = ggml / "src" / "ggml-cpu" / "simd-mappings.h"
    text = mappings.read_text()
    begin = text.index(_SIMD_WASM_BEGIN)
    end = text.index(_SIMD_WASM_END, begin)
    if text.count(_SIMD_WASM_BEGIN) != 1 or "GGML_F32x4_REDUCE" not in text[begin:end]:
        raise RuntimeError(f"{mappings}: the wasm SIMD section is not where it was; review the patch")
    text = (text[:begin] + _SIMD_WASM_BEGIN + "// pyllm: upstream's section replaced (wasm_ext/build_wasm.py)\n"
            + SIMD_X86_HEADER.read_text() + text[end:])
    text = _replace_once(mappings, text, _F16_DOT_FMA, _F16_DOT_FMA_PYLLM)
    mappings.write_text(text)

    cpu = ggml / "src" / "ggml-cpu" / "ggml-cpu.c"
    text = _replace_once(cpu, cpu.read_text(), _BARRIER_FN, BARRIER_WASM.read_text() + "\n" + _BARRIER_FN)
    text = _replace_once(cpu, text, _BARRIER_LAST, _BARRIER_LAST_WASM)
    cpu.write_text(_replace_once(cpu, text, _BARRIER_SPIN, _BARRIER_SPIN_WASM))

    ops = ggml / "src" / "ggml-cpu" / "ops.cpp"
    text = _replace_once(ops, ops.read_text(), _FA_SUM, _FA_SUM_FUSED)
    text = _replace_once(ops, text, _FA_Q, _FA_Q_WASM)
    text = _replace_once(ops, text, _FA_KQ, _FA_KQ_WASM)
    for old, new in ((_FA_VKQ16_ZERO, _FA_VKQ16_ZERO_WASM), (_FA_VKQ16_SCALE, _FA_VKQ16_SCALE_WASM),
                     (_FA_VKQ16_MAD, _FA_VKQ16_MAD_WASM), (_FA_VKQ16_OUT, _FA_VKQ16_OUT_WASM)):
        text = _replace_once(ops, text, old, new)
    text = _replace_once(ops, text, _FA_ONE_CHUNK, FATTN_WASM.read_text() + "\n" + _FA_ONE_CHUNK)
    text = _replace_once(ops, text, _FA_ROWS, _FA_ROWS_WASM)
    text = _replace_once(ops, text, _FA_SPLIT, _FA_SPLIT_WASM)
    ops.write_text(_replace_once(ops, text, _ROPE_ROT, _ROPE_ROT_FUSED))

    for name, edits in _CONTRACTED.items():
        path = ggml / "src" / "ggml-cpu" / name
        text = path.read_text()
        for old, new, count in edits:
            text = _replace_once(path, text, old, new, count)
        path.write_text(text)

    vec = ggml / "src" / "ggml-cpu" / "vec.cpp"
    text = _replace_once(vec, vec.read_text(), _SILU_HEAD, _SILU_HEAD + _SILU_WASM)
    text = _replace_once(vec, text, _SWIGLU_HEAD, _SWIGLU_HEAD + _SWIGLU_WASM)
    vec.write_text(_replace_once(vec, text, _SOFTMAX_HEAD, _SOFTMAX_HEAD + _SOFTMAX_WASM))

    # quantized dot products with the x86 kernels' arithmetic (upstream's renamed, unused)
    text = quants.read_text()
    for name in _QUANTS_REPLACED:
        text = _replace_once(quants, text, f"void {name}(", f"void {name}_wasm_upstream(")
    quants.write_text(text + "\n// ---- pyllm: appended by wasm_ext/build_wasm.py ----\n" + QUANTS_X86.read_text()
                      + "\n" + GEMV_X86.read_text() + "\n" + REPACK_X86.read_text())

    # repacking: wasm repacks the tensors x86 repacks and runs x86's arithmetic on them
    fallback = ggml / "src" / "ggml-cpu" / "arch-fallback.h"
    text = fallback.read_text()
    begin = text.index("#elif defined(__wasm__)\n")
    end = text.index("#endif", begin)
    section = text[begin:end]
    for name in _REPACK_REPLACED:
        section = _replace_once(fallback, section, f"#define {name}_generic {name}\n", "")
    fallback.write_text(text[:begin] + section + text[end:])
    repack = ggml / "src" / "ggml-cpu" / "repack.cpp"
    repack.write_text(_replace_once(repack, repack.read_text(), _REPACK_CHOICE, _REPACK_CHOICE_WASM + _REPACK_CHOICE))

    gemm = ggml / "src" / "ggml-cpu" / "simd-gemm.h"
    gemm.write_text(_replace_once(gemm, gemm.read_text(), _GEMM_TILE, _GEMM_TILE_WASM))

    # llamafile_sgemm: tinyBLAS's per-element arithmetic for F32/F16 batches
    sgemm = ggml / "src" / "ggml-cpu" / "llamafile" / "sgemm.cpp"
    text = sgemm.read_text()
    text = _replace_once(sgemm, text, _SGEMM_DEF, SGEMM_X86.read_text() + "\n" + _SGEMM_DEF)
    start = text.index(_SGEMM_DEF)
    body = text.index(_SGEMM_BODY, start) + len(_SGEMM_BODY)
    sgemm.write_text(text[:body] + _SGEMM_WASM + text[body:])


def patch_fingerprint() -> str:
    """Everything patch_ggml writes, hashed (part of the cache keys)."""
    parts = (PATCH_VERSION, _Q8_TRUNC, _Q8_ROUND, _Q8_ID, _Q8_ID_X86, _F16_DOT_FMA_PYLLM, _FA_SUM_FUSED, _FA_Q_WASM, _FA_KQ_WASM,
             _FA_VKQ16_ZERO_WASM, _FA_VKQ16_SCALE_WASM, _FA_VKQ16_MAD_WASM, _FA_VKQ16_OUT_WASM,
             _FA_ROWS_WASM, _FA_SPLIT_WASM, FATTN_WASM.read_text(),
             _QUANTS_REPLACED, _SGEMM_WASM, _SILU_WASM, _SWIGLU_WASM, _SOFTMAX_WASM, _GEMM_TILE_WASM, _ROPE_ROT_FUSED, _CONTRACTED, _REPACK_REPLACED, _REPACK_CHOICE_WASM, SIMD_X86_HEADER.read_text(),
             QUANTS_X86.read_text(), SGEMM_X86.read_text(), REPACK_X86.read_text(), GEMV_X86.read_text(),
             _BARRIER_LAST_WASM, _BARRIER_SPIN_WASM, BARRIER_WASM.read_text())
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:8]


def patched_ggml_dir() -> Path:
    """A copy of the pinned ggml tree with patch_ggml applied (made once per version)."""
    src = llama_cpp_dir() / "ggml"
    root = cache_root() / f"ggml-wasm-{SDIST_VERSION}-p{PATCH_VERSION}-{patch_fingerprint()}"
    if (root / ".complete").exists():
        return root / "ggml"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        dst = Path(tmp) / "ggml"
        shutil.copytree(src, dst)
        patch_ggml(dst)
        if (root / "ggml").exists():
            shutil.rmtree(root / "ggml")
        os.replace(dst, root / "ggml")
    (root / ".complete").write_text("ok")
    return root / "ggml"


# ---- builds ------------------------------------------------------------------------------

def wasm_sources() -> list[Path]:
    return sorted([*HERE.glob("engine*.cpp"), *HERE.glob("engine*.h"), EMSCRIPTEN_CMAKE, HERE / "relaxed_simd.py"])


def wasm_key(link_flags: list[str]) -> str:
    """Engine sources + the Emscripten recipe + the patch + this flavour's link flags."""
    h = hashlib.sha256(repr((patch_fingerprint(), link_flags)).encode())
    for path in wasm_sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def _emscripten_env() -> dict[str, str]:
    env = dict(os.environ)
    # the -O2 link runs Debian emscripten's JS optimizer, which needs acorn from here
    env["NODE_PATH"] = os.pathsep.join(p for p in ("/usr/share/nodejs", env.get("NODE_PATH", "")) if p)
    return env


def _require_emscripten() -> None:
    for tool in ("emcmake", "emcc"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: install Debian's emscripten (`apt-get install -y emscripten`)")


def _build(flavor: str, link_flags: list[str], output: str, relaxed: bool) -> Path:
    _require_emscripten()
    fma = "relaxed" if relaxed else "baseline"
    build = cache_root() / f"engine-wasm-{flavor}-{fma}-{SDIST_VERSION}-{wasm_key(link_flags + [fma])}"
    out = build / output
    if (build / ".complete").exists() and out.exists():
        return out
    ggml = patched_ggml_dir()
    log = build.parent / (build.name + ".log")
    build.mkdir(parents=True, exist_ok=True)
    env = _emscripten_env()
    configure = ["emcmake", "cmake", "-S", str(EMSCRIPTEN_CMAKE.parent), "-B", str(build),
                 "-DCMAKE_BUILD_TYPE=Release", "-DEMSCRIPTEN_SYSTEM_PROCESSOR=wasm32",
                 f"-DGGML_DIR={ggml}", f"-DENGINE_DIR={HERE}", f"-DPYLLM_WASM_FLAVOR={flavor}",
                 f"-DPYLLM_WASM_RELAXED={'ON' if relaxed else 'OFF'}",
                 "-DPYLLM_LINK_FLAGS=" + ";".join(link_flags)]
    with open(log, "w") as f:
        for cmd in (configure, ["cmake", "--build", str(build), "--target", "pyllm_engine", "-j", BUILD_JOBS]):
            f.write("$ " + " ".join(cmd) + "\n")
            f.flush()
            if subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode != 0:
                raise RuntimeError(f"wasm engine build ({flavor}) failed: see {log}")
    text = log.read_text()
    if "Wasm detected" not in text or "GGML_CPU_GENERIC" in text:
        raise RuntimeError(f"ggml did not select its wasm SIMD kernels: see {log}")
    if not out.exists():
        raise RuntimeError(f"wasm engine build ({flavor}) produced no {out.name}: see {log}")
    if relaxed:
        wasm = out if out.suffix == ".so" else out.with_suffix(".wasm")
        counts = standardize(wasm)
        if not all(counts.values()):
            raise RuntimeError(f"relaxed build of {wasm.name}: expected relaxed madd and dot, got {counts}: see {log}")
        with open(log, "a") as f:
            f.write(f"relaxed SIMD, rewritten to the standard opcodes: {counts}\n")
    (build / ".complete").write_text("ok")
    return out


# Two builds of each module (emscripten/simd_x86_avx512.h): `relaxed` uses relaxed SIMD's
# f32x4.relaxed_madd for x86's FMAs (the CPU's own FMA: fast), `baseline` computes them in
# f64 (3-4x slower) for engines without relaxed SIMD. Both compute what native computes on
# a CPU with FMA; the page picks one with WebAssembly.validate (web/worker.js).
def side_module(relaxed: bool = True) -> Path:
    """The Pyodide side module (built once per version+sources; ~1 min on 2 cores)."""
    return _build("side", SIDE_LINK_FLAGS, "pyllm_engine.so", relaxed)


def threads_module(relaxed: bool = True) -> Path:
    """The pthreads module: pyllm_engine_mt.js (+ .wasm, .worker.js next to it)."""
    return _build("threads", THREADS_LINK_FLAGS, "pyllm_engine_mt.js", relaxed)


def threads_files(relaxed: bool = True) -> list[Path]:
    js = threads_module(relaxed)
    return [js, js.with_suffix(".wasm"), js.with_name("pyllm_engine_mt.worker.js")]


# ---- checks ------------------------------------------------------------------------------

def simd_opcodes(wasm: Path) -> dict[str, int]:
    """Counts of a few SIMD instructions in a wasm binary (scans the code section)."""
    data = wasm.read_bytes()
    # 0xfd prefix + LEB128 opcode: i32x4.dot_i16x8_s = 0xfd 0xba 0x01, f32x4.nearest 0xfd 0x6a,
    # i8x16.narrow_i16x8_s 0xfd 0x65 (byte patterns; a rough count, enough to tell presence)
    return {"i32x4.dot_i16x8_s": data.count(b"\xfd\xba\x01"),
            "f32x4.nearest": data.count(b"\xfd\x6a"),
            "v128.load": data.count(b"\xfd\x00")}


def wasm_objdump_has(wasm: Path, mnemonic: str) -> bool | None:
    """True/False from wasm-objdump when it is installed (wabt), else None."""
    tool = shutil.which("wasm-objdump")
    if tool is None:
        return None
    out = subprocess.run([tool, "-d", str(wasm)], capture_output=True, text=True).stdout
    return mnemonic in out


if __name__ == "__main__":
    relaxed = "--baseline" not in sys.argv
    path = side_module(relaxed)
    print(path)
    if "--threads" in sys.argv:
        print(threads_module(relaxed))
    if "--check" in sys.argv:
        print(simd_opcodes(path), file=sys.stderr)
