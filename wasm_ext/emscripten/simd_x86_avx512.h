// pyllm: ggml's F32/F16 SIMD mappings for wasm SIMD128 that compute what the native x86
// build computes (-march=native on an AVX-512 machine, the project's machine kind):
//
//  * one "register" is 16 floats (four v128), GGML_F32_STEP = GGML_F16_STEP = 64, so dot
//    products keep the same 4 x 16 partial sums as __m512 code;
//  * GGML_F32_VEC_FMA is a fused multiply-add, as x86's vfmadd. Two builds (build_wasm.py):
//    - relaxed (-mrelaxed-simd): relaxed SIMD's f32x4.relaxed_madd, which engines lower to
//      the CPU's own FMA (vfmadd on x86-64 with FMA3, fmla on ARM64): one instruction, the
//      same rounding as native. Clang 14 emits the pre-standard opcode for it; build_wasm.py
//      rewrites it to the standard one (wasm_ext/relaxed_simd.py).
//    - baseline (engines without relaxed SIMD): a correctly rounded FMA computed in f64:
//      the product of two floats is exact there, the sum is rounded to odd (TwoSum error,
//      then the last bit moved towards it), and the final f64 -> f32 rounding is then the
//      single correct rounding;
//  * the reduction adds the four registers as ggml's AVX-512 REDUCE does, then the lanes
//    in the order of GCC's _mm512_reduce_add_ps;
//  * F16 vectors are F32 vectors loaded/stored through the F16 <-> F32 conversions (RNE),
//    like _mm512_cvtph_ps / _mm512_cvtps_ph(x, 0); the F32 -> F16 one is ggml's bit-exact
//    scalar conversion vectorised (flash attention stores its F16 accumulator every step).
//
// Spliced into ggml-cpu/simd-mappings.h in place of the upstream wasm section by
// wasm_ext/build_wasm.py (patch_ggml).

#define GGML_SIMD

typedef struct { v128_t q[4]; } pyllm_f32x16;

#ifdef __wasm_relaxed_simd__
// a*b + c with one rounding: the engine's fused multiply-add (see above)
static inline v128_t pyllm_fma_f32x4(v128_t a, v128_t b, v128_t c) {
    return __builtin_wasm_fma_f32x4(a, b, c);
}

// a*b + c with one rounding (scalar: lane 0 of the vector form)
static inline float pyllm_fmaf(float a, float b, float c) {
    return wasm_f32x4_extract_lane(pyllm_fma_f32x4(wasm_f32x4_splat(a), wasm_f32x4_splat(b), wasm_f32x4_splat(c)), 0);
}
#else
// a*b + c, correctly rounded, for f64x2 lanes that hold f32 values (a*b exact in f64),
// returned rounded to odd so that the caller's f64 -> f32 rounding is correct.
static inline v128_t pyllm_fma_f64x2_odd(v128_t a, v128_t b, v128_t c) {
    const v128_t p  = wasm_f64x2_mul(a, b);
    const v128_t s  = wasm_f64x2_add(p, c);
    const v128_t bv = wasm_f64x2_sub(s, p);
    const v128_t e  = wasm_f64x2_add(wasm_f64x2_sub(p, wasm_f64x2_sub(s, bv)), wasm_f64x2_sub(c, bv));
    const v128_t one = wasm_i64x2_splat(1);
    const v128_t inexact_even = wasm_v128_and(
        wasm_v128_and(wasm_f64x2_ne(e, wasm_f64x2_splat(0.0)), wasm_i64x2_eq(wasm_v128_and(s, one), wasm_i64x2_splat(0))),
        wasm_f64x2_lt(wasm_f64x2_abs(s), wasm_f64x2_splat(__builtin_inf())));
    // +1 ulp when the error has the sign of s (|exact| > |s|), else -1 ulp
    const v128_t dir = wasm_v128_or(wasm_i64x2_shr(wasm_v128_xor(e, s), 63), one);
    return wasm_i64x2_add(s, wasm_v128_and(inexact_even, dir));
}

// The f64 sum s = a*b + c (product exact) rounds to the correct f32 unless s sits exactly
// on an f32 rounding boundary (half-way between two floats: the f64 rounding may have
// landed there from either side) or in f32's subnormal range: only then is the
// round-to-odd correction needed (rare; one branch per vector).
static inline v128_t pyllm_f32_boundary(v128_t s) {
    const v128_t low29 = wasm_v128_and(s, wasm_i64x2_splat(0x1FFFFFFF));
    const v128_t abs_s = wasm_f64x2_abs(s);
    return wasm_v128_or(wasm_i64x2_eq(low29, wasm_i64x2_splat(0x10000000)),
                        wasm_v128_and(wasm_f64x2_lt(abs_s, wasm_f64x2_splat(0x1p-126)),
                                      wasm_f64x2_ne(abs_s, wasm_f64x2_splat(0.0))));
}

// a*b + c for f32x4 with one rounding (what x86's vfmadd computes)
static inline v128_t pyllm_fma_f32x4(v128_t a, v128_t b, v128_t c) {
    const v128_t al = wasm_f64x2_promote_low_f32x4(a), bl = wasm_f64x2_promote_low_f32x4(b);
    const v128_t cl = wasm_f64x2_promote_low_f32x4(c);
    const v128_t ah = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(a, a, 2, 3, 2, 3));
    const v128_t bh = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(b, b, 2, 3, 2, 3));
    const v128_t ch = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(c, c, 2, 3, 2, 3));
    v128_t lo = wasm_f64x2_add(wasm_f64x2_mul(al, bl), cl);
    v128_t hi = wasm_f64x2_add(wasm_f64x2_mul(ah, bh), ch);
    if (__builtin_expect(wasm_v128_any_true(wasm_v128_or(pyllm_f32_boundary(lo), pyllm_f32_boundary(hi))), 0)) {
        lo = pyllm_fma_f64x2_odd(al, bl, cl);
        hi = pyllm_fma_f64x2_odd(ah, bh, ch);
    }
    return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}

// a*b + c with one rounding (scalar)
static inline float pyllm_fmaf(float a, float b, float c) {
    const double s = (double) a * (double) b + (double) c;  // the product is exact in f64
    uint64_t u;
    memcpy(&u, &s, sizeof(u));
    const double as = fabs(s);
    if ((u & 0x1FFFFFFF) == 0x10000000 || (as < 0x1p-126 && as != 0.0)) {
        return fmaf(a, b, c);  // on an f32 rounding boundary: musl's correctly rounded fmaf
    }
    return (float) s;
}
#endif  // __wasm_relaxed_simd__

static inline pyllm_f32x16 pyllm_f32x16_splat(float x) {
    const v128_t v = wasm_f32x4_splat(x);
    pyllm_f32x16 r = {{v, v, v, v}};
    return r;
}
static inline pyllm_f32x16 pyllm_f32x16_load(const float * p) {
    pyllm_f32x16 r = {{wasm_v128_load(p), wasm_v128_load(p + 4), wasm_v128_load(p + 8), wasm_v128_load(p + 12)}};
    return r;
}
static inline void pyllm_f32x16_store(float * p, pyllm_f32x16 x) {
    for (int k = 0; k < 4; k++) wasm_v128_store(p + 4 * k, x.q[k]);
}
// a + b*c, fused (ggml's GGML_F32_VEC_FMA(a, b, c))
static inline pyllm_f32x16 pyllm_f32x16_fma(pyllm_f32x16 a, pyllm_f32x16 b, pyllm_f32x16 c) {
    pyllm_f32x16 r;
    for (int k = 0; k < 4; k++) r.q[k] = pyllm_fma_f32x4(b.q[k], c.q[k], a.q[k]);
    return r;
}
// a + b*c where b*c is exact in f32 (both operands came from F16): mul then add rounds once
static inline pyllm_f32x16 pyllm_f32x16_fma_exact_product(pyllm_f32x16 a, pyllm_f32x16 b, pyllm_f32x16 c) {
    pyllm_f32x16 r;
    for (int k = 0; k < 4; k++) r.q[k] = wasm_f32x4_add(wasm_f32x4_mul(b.q[k], c.q[k]), a.q[k]);
    return r;
}
static inline pyllm_f32x16 pyllm_f32x16_add(pyllm_f32x16 a, pyllm_f32x16 b) {
    pyllm_f32x16 r;
    for (int k = 0; k < 4; k++) r.q[k] = wasm_f32x4_add(a.q[k], b.q[k]);
    return r;
}
static inline pyllm_f32x16 pyllm_f32x16_mul(pyllm_f32x16 a, pyllm_f32x16 b) {
    pyllm_f32x16 r;
    for (int k = 0; k < 4; k++) r.q[k] = wasm_f32x4_mul(a.q[k], b.q[k]);
    return r;
}
// GCC's _mm512_reduce_add_ps: (hi256 + lo256), (hi128 + lo128), then lanes (0+2) + (1+3)
static inline float pyllm_f32x16_reduce_add(pyllm_f32x16 x) {
    const v128_t t6 = wasm_f32x4_add(wasm_f32x4_add(x.q[3], x.q[1]), wasm_f32x4_add(x.q[2], x.q[0]));
    const v128_t t8 = wasm_f32x4_add(t6, wasm_i32x4_shuffle(t6, t6, 2, 3, 0, 1));
    return wasm_f32x4_extract_lane(t8, 0) + wasm_f32x4_extract_lane(t8, 1);
}
// F32 -> F16 (round to nearest even), four lanes: ggml_compute_fp32_to_fp16 (what
// GGML_CPU_FP32_TO_FP16 computes) lane by lane
static inline void pyllm_f32x4_to_f16(ggml_fp16_t * p, v128_t f) {
    const v128_t shl1_w = wasm_i32x4_add(f, f);
    const v128_t bias = wasm_u32x4_max(wasm_v128_and(shl1_w, wasm_i32x4_splat((int32_t) 0xFF000000)),
                                       wasm_i32x4_splat(0x71000000));
    const v128_t base = wasm_f32x4_add(wasm_i32x4_add(wasm_u32x4_shr(bias, 1), wasm_i32x4_splat(0x07800000)),
                                       wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_abs(f), wasm_f32x4_splat(0x1.0p+112f)),
                                                      wasm_f32x4_splat(0x1.0p-110f)));
    const v128_t nonsign = wasm_i32x4_add(wasm_v128_and(wasm_u32x4_shr(base, 13), wasm_i32x4_splat(0x7C00)),
                                          wasm_v128_and(base, wasm_i32x4_splat(0xFFF)));
    const v128_t nan = wasm_u32x4_gt(shl1_w, wasm_i32x4_splat((int32_t) 0xFF000000));
    const v128_t h = wasm_v128_or(wasm_u32x4_shr(wasm_v128_and(f, wasm_i32x4_splat(INT32_MIN)), 16),
                                  wasm_v128_bitselect(wasm_i32x4_splat(0x7E00), nonsign, nan));
    wasm_v128_store64_lane(p, wasm_u16x8_narrow_i32x4(h, h), 0);  // lanes < 2^16: exact
}
// (these loads stay table lookups; flash attention's K/V rows use pyllm_f16x4_load_f32 below,
// ~25% faster than the table in a tight loop under V8 on this project's AMD machines, but
// slower where many values are F16 subnormals: its multiply then has subnormal operands)
static inline pyllm_f32x16 pyllm_f32cx16_load(const ggml_fp16_t * p) {
    float tmp[16];
    for (int k = 0; k < 16; k++) tmp[k] = GGML_CPU_FP16_TO_FP32(p[k]);
    return pyllm_f32x16_load(tmp);
}
static inline void pyllm_f32cx16_store(ggml_fp16_t * p, pyllm_f32x16 x) {
    for (int k = 0; k < 4; k++) pyllm_f32x4_to_f16(p + 4 * k, x.q[k]);
}

// F16 -> F32 in vector arithmetic, four lanes (exact, what the table holds): the F16 fields
// moved to their F32 places (sign to bit 31 by the arithmetic shift's copies, masked;
// exponent and mantissa 13 bits up) and scaled by 2^112, the difference of the exponent
// biases, which also normalises F16 subnormals; F16 exponent 31 (|result| >= 2^16) gets
// the F32 exponent 255: inf/NaN. For rows that are read once per use (flash attention's K
// and V): the 256 KB table misses L1 there; this is ~10 ops per four lanes, no memory.
static inline v128_t pyllm_f16x4_load_f32(const ggml_fp16_t * p) {
    const v128_t x = wasm_i32x4_shl(wasm_u32x4_load16x4(p), 16);
    const v128_t f = wasm_f32x4_mul(wasm_v128_and(wasm_i32x4_shr(x, 3), wasm_i32x4_splat((int32_t) 0x8FFFE000)),
                                    wasm_f32x4_splat(0x1p112f));
    const v128_t infnan = wasm_f32x4_ge(wasm_f32x4_abs(f), wasm_f32x4_splat(65536.0f));
    return wasm_v128_or(f, wasm_v128_and(infnan, wasm_i32x4_splat(0x7F800000)));
}
static inline pyllm_f32x16 pyllm_f16x16_load_f32(const ggml_fp16_t * p) {
    pyllm_f32x16 r = {{pyllm_f16x4_load_f32(p), pyllm_f16x4_load_f32(p + 4), pyllm_f16x4_load_f32(p + 8),
                       pyllm_f16x4_load_f32(p + 12)}};
    return r;
}

// x rounded to F16 (to nearest, ties to even) and kept as an F32: cvtph_ps(cvtps_ph(x, 0))
// for every x but NaN payloads. For |x| in [2^e, 2^(e+1)) the F16 ulp is 2^(e-10), the F32
// ulp of c = 2^(e+13): |x| + c rounds there (RNE; |x| + c stays in c's binade, and a carry
// to 2^(e+1) is still a multiple of the ulp), - c is exact. e is clamped to >= -14 (F16
// subnormals round at 2^-24) and <= 15 (c stays finite; larger |x| round to >= 2^16).
// What rounds to 2^16 or more is F16 overflow, inf: * 2^112 overflows exactly from 2^16 on
// (65504 * 2^112 < 2^128), and * 2^-112 brings every smaller value back exactly (no
// underflow: the least, 2^-24, goes through 2^88). The sign is put back last, so values
// that round to zero keep theirs (-0), as cvtps_ph does. NaN stays NaN.
static inline v128_t pyllm_f32x4_round_f16(v128_t x) {
    const v128_t a = wasm_f32x4_abs(x);
    const v128_t e = wasm_i32x4_min(wasm_i32x4_max(wasm_v128_and(a, wasm_i32x4_splat(0x7F800000)),
                                                   wasm_i32x4_splat((127 - 14) << 23)),
                                    wasm_i32x4_splat((127 + 15) << 23));
    const v128_t c = wasm_i32x4_add(e, wasm_i32x4_splat(13 << 23));
    const v128_t r = wasm_f32x4_sub(wasm_f32x4_add(a, c), c);
    const v128_t r16 = wasm_f32x4_mul(wasm_f32x4_mul(r, wasm_f32x4_splat(0x1p112f)), wasm_f32x4_splat(0x1p-112f));
    return wasm_v128_or(r16, wasm_v128_and(x, wasm_i32x4_splat(INT32_MIN)));
}

// Flash attention's F16 accumulator (VKQ16) held as F32 values that are always exactly F16:
// the same numbers ggml_vec_mad_f16 / ggml_vec_scale_f16 store on x86, without the F16
// stores and table reloads. Per element, as x86 computes it: the SIMD part
// cvtps_ph(fmadd(x, v, y)) / cvtps_ph(mul(y, v)), the leftovers fmaf (GCC contracts them)
// or the product, then FP32_TO_FP16: the same one-rounding-then-F16-rounding everywhere.
static inline void pyllm_vec_mad_f16_f32acc(int n, float * y, const ggml_fp16_t * x, float v) {
    const v128_t vv = wasm_f32x4_splat(v);
    int i = 0;
    for (; i + 3 < n; i += 4) {
        wasm_v128_store(y + i, pyllm_f32x4_round_f16(pyllm_fma_f32x4(pyllm_f16x4_load_f32(x + i), vv,
                                                                     wasm_v128_load(y + i))));
    }
    for (; i < n; ++i) {
        y[i] = GGML_CPU_FP16_TO_FP32(GGML_CPU_FP32_TO_FP16(pyllm_fmaf(GGML_CPU_FP16_TO_FP32(x[i]), v, y[i])));
    }
}
static inline void pyllm_vec_scale_f16_f32acc(int n, float * y, float v) {
    const v128_t vv = wasm_f32x4_splat(v);
    int i = 0;
    for (; i + 3 < n; i += 4) {
        wasm_v128_store(y + i, pyllm_f32x4_round_f16(wasm_f32x4_mul(wasm_v128_load(y + i), vv)));
    }
    for (; i < n; ++i) {
        y[i] = GGML_CPU_FP16_TO_FP32(GGML_CPU_FP32_TO_FP16(y[i]*v));
    }
}

#define PYLLM_F32x16_REDUCE(res, x)                              \
do {                                                             \
    int offset = GGML_F32_ARR >> 1;                              \
    for (int i = 0; i < offset; ++i) {                           \
        x[i] = pyllm_f32x16_add(x[i], x[offset+i]);              \
    }                                                            \
    offset >>= 1;                                                \
    for (int i = 0; i < offset; ++i) {                           \
        x[i] = pyllm_f32x16_add(x[i], x[offset+i]);              \
    }                                                            \
    offset >>= 1;                                                \
    for (int i = 0; i < offset; ++i) {                           \
        x[i] = pyllm_f32x16_add(x[i], x[offset+i]);              \
    }                                                            \
    res = (ggml_float) pyllm_f32x16_reduce_add(x[0]);            \
} while (0)

// ggml_vec_dot_f16(n, s, x, y) with y given as its F32 values q (exact conversions): the
// same 4 x 16 partial sums, products (exact in f32), reduction and leftovers. Flash
// attention's key loop calls it with the query row converted once instead of once per key.
static inline void pyllm_vec_dot_f16_f32(int n, float * s, const ggml_fp16_t * x, const float * q) {
    const int np = n & ~63;
    pyllm_f32x16 sum[4] = {pyllm_f32x16_splat(0.0f), pyllm_f32x16_splat(0.0f), pyllm_f32x16_splat(0.0f),
                           pyllm_f32x16_splat(0.0f)};
    for (int i = 0; i < np; i += 64) {
        for (int j = 0; j < 4; j++) {
            sum[j] = pyllm_f32x16_fma_exact_product(sum[j], pyllm_f16x16_load_f32(x + i + 16 * j),
                                                    pyllm_f32x16_load(q + i + 16 * j));
        }
    }
    sum[0] = pyllm_f32x16_add(sum[0], sum[2]);  // PYLLM_F32x16_REDUCE
    sum[1] = pyllm_f32x16_add(sum[1], sum[3]);
    sum[0] = pyllm_f32x16_add(sum[0], sum[1]);
    double sumf = (double) pyllm_f32x16_reduce_add(sum[0]);
    for (int i = np; i < n; ++i) {
        sumf += (double) (GGML_CPU_FP16_TO_FP32(x[i]) * q[i]);
    }
    *s = (float) sumf;
}

// F32

#define GGML_F32_STEP 64
#define GGML_F32_EPR  16

#define GGML_F32x16           pyllm_f32x16
#define GGML_F32x16_ZERO      pyllm_f32x16_splat(0.0f)
#define GGML_F32x16_SET1(x)   pyllm_f32x16_splat(x)
#define GGML_F32x16_LOAD      pyllm_f32x16_load
#define GGML_F32x16_STORE     pyllm_f32x16_store
#define GGML_F32x16_FMA       pyllm_f32x16_fma
#define GGML_F32x16_ADD       pyllm_f32x16_add
#define GGML_F32x16_MUL       pyllm_f32x16_mul
#define GGML_F32x16_REDUCE    PYLLM_F32x16_REDUCE

#define GGML_F32_VEC        GGML_F32x16
#define GGML_F32_VEC_ZERO   GGML_F32x16_ZERO
#define GGML_F32_VEC_SET1   GGML_F32x16_SET1
#define GGML_F32_VEC_LOAD   GGML_F32x16_LOAD
#define GGML_F32_VEC_STORE  GGML_F32x16_STORE
#define GGML_F32_VEC_FMA    GGML_F32x16_FMA
#define GGML_F32_VEC_ADD    GGML_F32x16_ADD
#define GGML_F32_VEC_MUL    GGML_F32x16_MUL
#define GGML_F32_VEC_REDUCE GGML_F32x16_REDUCE

// F16 (no AVX512-FP16 on the native side: F16 data in F32 registers)

#define GGML_F16_STEP 64
#define GGML_F16_EPR  16

#define GGML_F16_VEC                pyllm_f32x16
#define GGML_F16_VEC_ZERO           pyllm_f32x16_splat(0.0f)
#define GGML_F16_VEC_SET1           pyllm_f32x16_splat
#define GGML_F16_VEC_LOAD(p, i)     pyllm_f32cx16_load(p)
#define GGML_F16_VEC_STORE(p, r, i) pyllm_f32cx16_store(p, r[i])
#define GGML_F16_VEC_FMA            pyllm_f32x16_fma
#define GGML_F16_VEC_ADD            pyllm_f32x16_add
#define GGML_F16_VEC_MUL            pyllm_f32x16_mul
#define GGML_F16_VEC_REDUCE         PYLLM_F32x16_REDUCE

// dot products of two F16 vectors: every product is exact in f32, so no FMA emulation needed
#define PYLLM_F16_DOT_VEC_FMA       pyllm_f32x16_fma_exact_product

// ggml_v_expf / ggml_v_silu of the AVX-512 build (vec.h), lane by lane: the same
// polynomial with the same fused steps; _mm512_scalef_ps(j, n) = j * 2^n rounded once
// (computed in f64, where it is exact).
static inline v128_t pyllm_scalef_f32x4(v128_t j, v128_t n) {
    const v128_t ni = wasm_i32x4_trunc_sat_f32x4(n);  // n is integral here
    const v128_t e_lo = wasm_i64x2_shl(wasm_i64x2_add(wasm_i64x2_extend_low_i32x4(ni), wasm_i64x2_splat(1023)), 52);
    const v128_t e_hi = wasm_i64x2_shl(wasm_i64x2_add(wasm_i64x2_extend_high_i32x4(ni), wasm_i64x2_splat(1023)), 52);
    const v128_t lo = wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(j), e_lo);
    const v128_t hi = wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(j, j, 2, 3, 2, 3)), e_hi);
    return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}

static inline v128_t pyllm_v_expf(v128_t x) {
    const v128_t r = wasm_f32x4_splat(0x1.8p23f);
    const v128_t z = pyllm_fma_f32x4(x, wasm_f32x4_splat(0x1.715476p+0f), r);
    const v128_t n = wasm_f32x4_sub(z, r);
    const v128_t neg_n = wasm_f32x4_neg(n);
    const v128_t b = pyllm_fma_f32x4(neg_n, wasm_f32x4_splat(0x1.7f7d1cp-20f),
                                     pyllm_fma_f32x4(neg_n, wasm_f32x4_splat(0x1.62e4p-1f), x));
    const v128_t d = wasm_f32x4_gt(wasm_f32x4_abs(n), wasm_f32x4_splat(192.0f));
    const v128_t u = wasm_f32x4_mul(b, b);
    const v128_t j = pyllm_fma_f32x4(
        pyllm_fma_f32x4(pyllm_fma_f32x4(wasm_f32x4_splat(0x1.0e4020p-7f), b, wasm_f32x4_splat(0x1.573e2ep-5f)), u,
                        pyllm_fma_f32x4(wasm_f32x4_splat(0x1.555e66p-3f), b, wasm_f32x4_splat(0x1.fffdb6p-2f))),
        u, pyllm_fma_f32x4(wasm_f32x4_splat(0x1.ffffecp-1f), b, wasm_f32x4_splat(1.0f)));
    if (!wasm_v128_any_true(d)) {
        return pyllm_scalef_f32x4(j, n);
    }
    // |n| > 192: +inf where n > 0, else 0 (the other lanes as usual; n clamped so scalef stays finite-exponent)
    const v128_t nc = wasm_f32x4_min(wasm_f32x4_max(n, wasm_f32x4_splat(-192.0f)), wasm_f32x4_splat(192.0f));
    const v128_t alt = wasm_v128_bitselect(wasm_f32x4_splat(0.0f), wasm_f32x4_splat(__builtin_inff()),
                                           wasm_f32x4_le(n, wasm_f32x4_splat(0.0f)));
    return wasm_v128_bitselect(alt, pyllm_scalef_f32x4(j, nc), d);
}

static inline v128_t pyllm_v_silu(v128_t x) {
    const v128_t e = pyllm_v_expf(wasm_f32x4_sub(wasm_f32x4_splat(0.0f), x));
    return wasm_f32x4_div(x, wasm_f32x4_add(wasm_f32x4_splat(1.0f), e));
}
