// pyllm: quantized dot products for wasm that compute what the native x86 build computes
// (appended to ggml-cpu/arch/wasm/quants.c by wasm_ext/build_wasm.py, which renames the
// upstream wasm versions to *_wasm_upstream).
//
// x86 (AVX2/AVX-512 VNNI, arch/x86/quants.c, and llamafile's tinyBLAS_Q0_AVX for batches)
// does, per block of 32: eight int32 lanes, lane i = the exact sum of the products of
// elements 4i..4i+3; acc(8 lanes) = fma(d_x*d_y, float(lane), acc); at the end
// hsum_float_8(acc) = ((a4+a0)+(a6+a2)) + ((a5+a1)+(a7+a3)). The integer sums are exact in
// any order, so only the float steps need to match: the FMA is pyllm_fma_f32x4 (correctly
// rounded, simd-mappings.h) and the lane sums keep the x86 tree.

#ifdef __wasm_relaxed_simd__
typedef float pyllm_f32x4_bits __attribute__((vector_size(16)));

// i16x8.relaxed_dot_i8x16_i7x16_s(a, b): lane j = a[2j]*b[2j] + a[2j+1]*b[2j+1], exact for
// b in 0..127 (x86: pmaddubsw). Clang 14 has no builtin for it, so it is written as clang
// 14's f32x4.relaxed_min (same operand and result shapes: the optimizers treat both as
// opaque), whose encoding wasm_ext/relaxed_simd.py rewrites to the dot's after linking.
// (Not the i32x4 dot-add: Node 20's V8 computes that one wrongly; Chromium gets both right.)
static inline v128_t pyllm_dot_i8_i7_pairs(v128_t a, v128_t b) {
    return (v128_t) __builtin_wasm_relaxed_min_f32x4((pyllm_f32x4_bits) a, (pyllm_f32x4_bits) b);
}

// lane i = the sum of a[k]*b[k] over k = 4i..4i+3 (b in 0..127)
static inline v128_t pyllm_quads(v128_t a, v128_t b) {
    return wasm_i32x4_extadd_pairwise_i16x8(pyllm_dot_i8_i7_pairs(a, b));
}

// lanes: (elements 0-15 -> four quad sums, elements 16-31 -> four quad sums) of signed x
// times y, with x86's sign trick: |x| (unsigned) times y carrying x's sign
static inline void pyllm_quad_sums(v128_t x0, v128_t x1, const int8_t * y, v128_t * lo, v128_t * hi) {
    const v128_t y0 = wasm_v128_load(y), y1 = wasm_v128_load(y + 16), zero = wasm_i8x16_splat(0);
    *lo = pyllm_quads(wasm_v128_bitselect(wasm_i8x16_neg(y0), y0, wasm_i8x16_lt(x0, zero)), wasm_i8x16_abs(x0));
    *hi = pyllm_quads(wasm_v128_bitselect(wasm_i8x16_neg(y1), y1, wasm_i8x16_lt(x1, zero)), wasm_i8x16_abs(x1));
}

// the same for unsigned x (0..127)
static inline void pyllm_quad_sums_unsigned(v128_t q0, v128_t q1, const int8_t * y, v128_t * lo, v128_t * hi) {
    *lo = pyllm_quads(wasm_v128_load(y), q0);
    *hi = pyllm_quads(wasm_v128_load(y + 16), q1);
}
#else
// lanes: (elements 0-15 -> four quad sums, elements 16-31 -> four quad sums)
static inline void pyllm_quad_sums(v128_t x0, v128_t x1, const int8_t * y, v128_t * lo, v128_t * hi) {
    const v128_t y0 = wasm_v128_load(y), y1 = wasm_v128_load(y + 16);
    const v128_t p0 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(x0), wasm_i16x8_extend_low_i8x16(y0));
    const v128_t p1 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(x0), wasm_i16x8_extend_high_i8x16(y0));
    const v128_t p2 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(x1), wasm_i16x8_extend_low_i8x16(y1));
    const v128_t p3 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(x1), wasm_i16x8_extend_high_i8x16(y1));
    *lo = wasm_i32x4_add(wasm_i32x4_shuffle(p0, p1, 0, 2, 4, 6), wasm_i32x4_shuffle(p0, p1, 1, 3, 5, 7));
    *hi = wasm_i32x4_add(wasm_i32x4_shuffle(p2, p3, 0, 2, 4, 6), wasm_i32x4_shuffle(p2, p3, 1, 3, 5, 7));
}

static inline void pyllm_quad_sums_unsigned(v128_t q0, v128_t q1, const int8_t * y, v128_t * lo, v128_t * hi) {
    pyllm_quad_sums(q0, q1, y, lo, hi);
}
#endif

#ifdef __wasm_relaxed_simd__
// x0/x1: the weight block's 32 values as int8 in element order; acc = fma(d, float(lane), acc)
// as x86's _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc) (|lane| < 2^17: exact in f32)
static inline void pyllm_acc_q0_lanes(v128_t * acc_lo, v128_t * acc_hi, float d, v128_t lo, v128_t hi) {
    const v128_t dv = wasm_f32x4_splat(d);
    *acc_lo = pyllm_fma_f32x4(dv, wasm_f32x4_convert_i32x4(lo), *acc_lo);
    *acc_hi = pyllm_fma_f32x4(dv, wasm_f32x4_convert_i32x4(hi), *acc_hi);
}
#else
// acc + d * lanes with one rounding, for the Q0 blocks: d = d_x * d_y (two F16 scales, so a
// multiple of 2^-48) times |lane| < 2^17 is exact in f64, and so is every partial sum's
// neighbourhood: all values are multiples of 2^-48, so no f32 result is subnormal and only
// the half-way case needs the round-to-odd correction (see pyllm_fma_f32x4).
static inline v128_t pyllm_fma_q0(v128_t d64, v128_t lanes, v128_t acc) {
    const v128_t a_lo = wasm_f64x2_promote_low_f32x4(acc);
    const v128_t a_hi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(acc, acc, 2, 3, 2, 3));
    const v128_t q_lo = wasm_f64x2_convert_low_i32x4(lanes);
    const v128_t q_hi = wasm_f64x2_convert_low_i32x4(wasm_i32x4_shuffle(lanes, lanes, 2, 3, 2, 3));
    v128_t lo = wasm_f64x2_add(wasm_f64x2_mul(d64, q_lo), a_lo);
    v128_t hi = wasm_f64x2_add(wasm_f64x2_mul(d64, q_hi), a_hi);
    const v128_t half = wasm_i64x2_splat(INT64_MIN);  // low 29 bits 1000...0, shifted to the top
    if (__builtin_expect(wasm_v128_any_true(wasm_v128_or(wasm_i64x2_eq(wasm_i64x2_shl(lo, 35), half),
                                                         wasm_i64x2_eq(wasm_i64x2_shl(hi, 35), half))), 0)) {
        lo = pyllm_fma_f64x2_odd(d64, q_lo, a_lo);
        hi = pyllm_fma_f64x2_odd(d64, q_hi, a_hi);
    }
    return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}

static inline void pyllm_acc_q0_lanes(v128_t * acc_lo, v128_t * acc_hi, float d, v128_t lo, v128_t hi) {
    const v128_t d64 = wasm_f64x2_splat((double) d);
    *acc_lo = pyllm_fma_q0(d64, lo, *acc_lo);
    *acc_hi = pyllm_fma_q0(d64, hi, *acc_hi);
}
#endif  // __wasm_relaxed_simd__

// x0/x1: the weight block's 32 values as int8 in element order
static inline void pyllm_acc_q0_block(v128_t * acc_lo, v128_t * acc_hi, float d, v128_t x0, v128_t x1,
                                      const int8_t * y) {
    v128_t lo, hi;
    pyllm_quad_sums(x0, x1, y, &lo, &hi);
    pyllm_acc_q0_lanes(acc_lo, acc_hi, d, lo, hi);
}

static inline int32_t pyllm_hsum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) +
           wasm_i32x4_extract_lane(v, 3);
}

// hsum_float_8 of arch/x86/quants.c (and tinyBLAS's hsum(__m256))
static inline float pyllm_hsum_float_8(v128_t lo, v128_t hi) {
    const v128_t r = wasm_f32x4_add(hi, lo);
    const v128_t t = wasm_f32x4_add(r, wasm_i32x4_shuffle(r, r, 2, 3, 2, 3));
    return wasm_f32x4_extract_lane(t, 0) + wasm_f32x4_extract_lane(t, 1);
}

// 16 bytes of packed nibbles -> (low nibbles, high nibbles) = elements 0-15, 16-31 (a u16
// shift + mask: V8 compiles an i8x16 shift to ~5 instructions, rebuilding its mask each time)
static inline void pyllm_nibbles(const uint8_t * qs, v128_t * x0, v128_t * x1) {
    const v128_t v = wasm_v128_load(qs), m4 = wasm_i8x16_splat(0x0F);
    *x0 = wasm_v128_and(v, m4);
    *x1 = wasm_v128_and(wasm_u16x8_shr(v, 4), m4);
}



// a Q5_0 block's 32 values (5 bits, minus 16) as int8 in element order
static inline void pyllm_block_q5_0(const block_q5_0 * b, v128_t * x0, v128_t * x1) {
    const v128_t bit = wasm_u8x16_make(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    const v128_t f0 = wasm_i8x16_splat((char) 0xF0);
    uint32_t qh;
    memcpy(&qh, b->qh, sizeof(qh));
    const v128_t qhv = wasm_i32x4_splat((int32_t) qh);
    // byte j of each half: 0xF0 where the element's fifth bit is clear (value - 16), else 0
    const v128_t h0 = wasm_v128_and(wasm_i8x16_eq(wasm_v128_and(
        wasm_i8x16_swizzle(qhv, wasm_u8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)), bit),
        wasm_i8x16_splat(0)), f0);
    const v128_t h1 = wasm_v128_and(wasm_i8x16_eq(wasm_v128_and(
        wasm_i8x16_swizzle(qhv, wasm_u8x16_make(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)), bit),
        wasm_i8x16_splat(0)), f0);
    v128_t n0, n1;
    pyllm_nibbles(b->qs, &n0, &n1);
    *x0 = wasm_v128_or(n0, h0);
    *x1 = wasm_v128_or(n1, h1);
}

// the same block taken unsigned (value + 16, 0..31): the fifth bit ORed in as 16
// (qs, qh: a Q5_0 or Q5_1 block's; the two share the layout). Each byte's bit b (value 2^b
// or 0 after the mask) becomes 1 or 0 by a saturating subtraction of 2^b - 1, then 16 or 0
// by a u16 shift (no bit crosses a byte): fewer x86 instructions under V8 than a compare,
// which LLVM turns into i8x16.ne (an eq and a not there).
static inline void pyllm_q5_unsigned(const uint8_t * qs, const uint8_t * qh, v128_t * q0, v128_t * q1) {
    const v128_t bit = wasm_u8x16_make(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    const v128_t low = wasm_u8x16_make(0, 1, 3, 7, 15, 31, 63, 127, 0, 1, 3, 7, 15, 31, 63, 127);
    const v128_t qhv = wasm_v128_load32_splat(qh);
    const v128_t h0 = wasm_i16x8_shl(wasm_u8x16_sub_sat(wasm_v128_and(
        wasm_i8x16_swizzle(qhv, wasm_u8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)), bit), low), 4);
    const v128_t h1 = wasm_i16x8_shl(wasm_u8x16_sub_sat(wasm_v128_and(
        wasm_i8x16_swizzle(qhv, wasm_u8x16_make(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)), bit), low), 4);
    v128_t n0, n1;
    pyllm_nibbles(qs, &n0, &n1);
    *q0 = wasm_v128_or(n0, h0);
    *q1 = wasm_v128_or(n1, h1);
}

static inline void pyllm_block_q5_0_unsigned(const block_q5_0 * b, v128_t * q0, v128_t * q1) {
    pyllm_q5_unsigned(b->qs, b->qh, q0, q1);
}

// The rows of an m-row product that thread ith of nth computes: one contiguous range, a
// multiple of 64 rows long (whole cache lines of the output). Interleaving small blocks of
// rows between threads made the threads write neighbouring output floats all the time, and
// the cache lines they share bounced between the cores: 2 threads took 2.4x as long as one
// for a decode mat-vec. (Also called by sgemm_x86.inc's F32/F16 rows.)
void pyllm_thread_rows(int64_t m, int ith, int nth, int64_t * i0, int64_t * i1);
void pyllm_thread_rows(int64_t m, int ith, int nth, int64_t * i0, int64_t * i1) {
    const int64_t per = (((m + nth - 1) / nth) + 63) & ~(int64_t) 63;
    *i0 = per * ith < m ? per * ith : m;
    *i1 = *i0 + per < m ? *i0 + per : m;
}

// ---- batches (prefill) ----------------------------------------------------------------------
// llamafile_sgemm's wasm hook (emscripten/sgemm_x86.inc) sends Q8_0/Q4_0/Q5_0 x Q8_0
// batches here. Every output is the vec_dot kernels' arithmetic above (natively, x86's
// tinyBLAS_Q0_AVX computes the same), but a weight row meets four activation columns at a
// time: its blocks are decoded once per four outputs, and the columns stay in L1.

// a Q0 weight block as signed int8 in element order; returns its scale
static inline float pyllm_block_q0(enum ggml_type type, const uint8_t * row, int64_t ib, v128_t * x0, v128_t * x1) {
    switch (type) {
    case GGML_TYPE_Q8_0: {
        const block_q8_0 * b = (const block_q8_0 *) row + ib;
        *x0 = wasm_v128_load(b->qs);
        *x1 = wasm_v128_load(b->qs + 16);
        return GGML_CPU_FP16_TO_FP32(b->d);
    }
    case GGML_TYPE_Q4_0: {
        const block_q4_0 * b = (const block_q4_0 *) row + ib;
        pyllm_nibbles(b->qs, x0, x1);
        *x0 = wasm_i8x16_sub(*x0, wasm_i8x16_splat(8));
        *x1 = wasm_i8x16_sub(*x1, wasm_i8x16_splat(8));
        return GGML_CPU_FP16_TO_FP32(b->d);
    }
    default: {
        const block_q5_0 * b = (const block_q5_0 *) row + ib;
        pyllm_block_q5_0(b, x0, x1);
        return GGML_CPU_FP16_TO_FP32(b->d);
    }
    }
}

// one weight row against NC activation columns (NC a constant after inlining)
static inline __attribute__((always_inline)) void pyllm_gemm_q0_tile(enum ggml_type type, const uint8_t * row,
                                                                     int64_t nb, const block_q8_0 * const * y,
                                                                     float * const * out, const int NC) {
    v128_t lo[4], hi[4];
    for (int c = 0; c < NC; c++) lo[c] = hi[c] = wasm_f32x4_splat(0.0f);
    for (int64_t ib = 0; ib < nb; ib++) {
        v128_t x0, x1;
        const float dx = pyllm_block_q0(type, row, ib, &x0, &x1);
        for (int c = 0; c < NC; c++) {
            pyllm_acc_q0_block(&lo[c], &hi[c], dx * GGML_CPU_FP16_TO_FP32(y[c][ib].d), x0, x1, y[c][ib].qs);
        }
    }
    for (int c = 0; c < NC; c++) *out[c] = pyllm_hsum_float_8(lo[c], hi[c]);
}

// ggml's vec_dot for the Q0 types: a tile with one column
static inline __attribute__((always_inline)) void pyllm_vec_dot_q0(enum ggml_type type, int n, float * s, const void * vx, const void * vy) {
    const block_q8_0 * y[1] = {(const block_q8_0 *) vy};
    float * out[1] = {s};
    pyllm_gemm_q0_tile(type, (const uint8_t *) vx, n / QK8_0, y, out, 1);
}

void ggml_vec_dot_q8_0_q8_0(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    pyllm_vec_dot_q0(GGML_TYPE_Q8_0, n, s, vx, vy);
}

void ggml_vec_dot_q4_0_q8_0(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    pyllm_vec_dot_q0(GGML_TYPE_Q4_0, n, s, vx, vy);
}

void ggml_vec_dot_q5_0_q8_0(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    pyllm_vec_dot_q0(GGML_TYPE_Q5_0, n, s, vx, vy);
}

// Q4_1/Q5_1 x Q8_1, which x86 computes with vec_dot at every batch size (tinyBLAS has
// neither): the lanes and fmas of the Q0 types, the values taken unsigned (0..15, 0..31),
// acc = fma(d_x * d_y, float(lane), acc); the offsets apart, summs = fma(m_x, s_y, summs)
// (GCC's contraction of summs += m_x * s_y); hsum_float_8(acc) + summs at the end
static inline __attribute__((always_inline)) void pyllm_vec_dot_q1(enum ggml_type type, int n, float * s,
                                                                   const void * vx, const void * vy) {
    const block_q8_1 * y = (const block_q8_1 *) vy;
    v128_t lo = wasm_f32x4_splat(0.0f), hi = lo;
    float summs = 0.0f;
    for (int ib = 0; ib < n / QK8_1; ib++) {
        v128_t q0, q1, l, h;
        float dx, mx;
        if (type == GGML_TYPE_Q4_1) {
            const block_q4_1 * b = (const block_q4_1 *) vx + ib;
            pyllm_nibbles(b->qs, &q0, &q1);
            dx = GGML_CPU_FP16_TO_FP32(b->d);
            mx = GGML_CPU_FP16_TO_FP32(b->m);
        } else {
            const block_q5_1 * b = (const block_q5_1 *) vx + ib;
            pyllm_q5_unsigned(b->qs, b->qh, &q0, &q1);
            dx = GGML_CPU_FP16_TO_FP32(b->d);
            mx = GGML_CPU_FP16_TO_FP32(b->m);
        }
        summs = pyllm_fmaf(mx, GGML_CPU_FP16_TO_FP32(y[ib].s), summs);
        pyllm_quad_sums_unsigned(q0, q1, y[ib].qs, &l, &h);
        pyllm_acc_q0_lanes(&lo, &hi, dx * GGML_CPU_FP16_TO_FP32(y[ib].d), l, h);
    }
    *s = pyllm_hsum_float_8(lo, hi) + summs;
}

void ggml_vec_dot_q4_1_q8_1(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    pyllm_vec_dot_q1(GGML_TYPE_Q4_1, n, s, vx, vy);
}

void ggml_vec_dot_q5_1_q8_1(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    pyllm_vec_dot_q1(GGML_TYPE_Q5_1, n, s, vx, vy);
}

#ifdef __wasm_relaxed_simd__
// Q4_0/Q5_0 weights taken unsigned (q = x + 2^shift, 0..31) need no sign trick: the lanes are
// quads(y, q) - 2^shift * quads(y, 1), and the second term depends on the activation block
// only, so a tile's columns get it computed once for all its rows (ybias[c][ib][2]).
static inline float pyllm_block_q0_unsigned(enum ggml_type type, const uint8_t * row, int64_t ib, v128_t * q0,
                                            v128_t * q1) {
    if (type == GGML_TYPE_Q4_0) {
        const block_q4_0 * b = (const block_q4_0 *) row + ib;
        pyllm_nibbles(b->qs, q0, q1);
        return GGML_CPU_FP16_TO_FP32(b->d);
    }
    const block_q5_0 * b = (const block_q5_0 *) row + ib;
    pyllm_block_q5_0_unsigned(b, q0, q1);
    return GGML_CPU_FP16_TO_FP32(b->d);
}

static void pyllm_gemm_ybias(const block_q8_0 * const * y, int64_t nb, int shift, v128_t * ybias, float * dy) {
    const v128_t one = wasm_i8x16_splat(1);
    for (int c = 0; c < 4; c++) {
        for (int64_t ib = 0; ib < nb; ib++) {
            dy[c * nb + ib] = GGML_CPU_FP16_TO_FP32(y[c][ib].d);
            ybias[(c * nb + ib) * 2] = wasm_i32x4_shl(pyllm_quads(wasm_v128_load(y[c][ib].qs), one), shift);
            ybias[(c * nb + ib) * 2 + 1] = wasm_i32x4_shl(pyllm_quads(wasm_v128_load(y[c][ib].qs + 16), one), shift);
        }
    }
}

static void pyllm_gemm_q0u_tile(enum ggml_type type, const uint8_t * row, int64_t nb, const block_q8_0 * const * y,
                                const v128_t * ybias, const float * dy, float * const * out) {
    v128_t lo[4], hi[4];
    for (int c = 0; c < 4; c++) lo[c] = hi[c] = wasm_f32x4_splat(0.0f);
    for (int64_t ib = 0; ib < nb; ib++) {
        v128_t q0, q1;
        const float dx = pyllm_block_q0_unsigned(type, row, ib, &q0, &q1);
        for (int c = 0; c < 4; c++) {
            const block_q8_0 * yb = &y[c][ib];
            const v128_t * bias = &ybias[(c * nb + ib) * 2];
            pyllm_acc_q0_lanes(&lo[c], &hi[c], dx * dy[c * nb + ib],
                               wasm_i32x4_sub(pyllm_quads(wasm_v128_load(yb->qs), q0), bias[0]),
                               wasm_i32x4_sub(pyllm_quads(wasm_v128_load(yb->qs + 16), q1), bias[1]));
        }
    }
    for (int c = 0; c < 4; c++) *out[c] = pyllm_hsum_float_8(lo[c], hi[c]);
}
#endif

#ifdef __wasm_relaxed_simd__
// A scratch buffer of at least `bytes`, this thread's own, grown and kept: the mat-muls
// below need one per call (a column's prepared activations), and malloc takes a lock that
// the pthreads build's threads, each computing its share of every product, would wait on.
static void * pyllm_scratch(size_t bytes) {
#ifdef __EMSCRIPTEN_PTHREADS__
    static _Thread_local void * buf = NULL;
    static _Thread_local size_t cap = 0;
#else
    static void * buf = NULL;
    static size_t cap = 0;
#endif
    if (bytes > cap) {
        free(buf);
        cap = bytes > (64 << 10) ? bytes : (64 << 10);
        buf = malloc(cap);
        if (!buf) {
            cap = 0;
        }
    }
    return buf;
}

// one activation column (decode): emscripten/gemv_x86.c
static bool pyllm_gemv_q0_q8_0(enum ggml_type type, int64_t m, int64_t nb, const uint8_t * A, size_t row_bytes,
                               const block_q8_0 * y, float * C, int ith, int nth);
static void pyllm_gemv_q6_K_q8_K(int64_t m, int nb, const block_q6_K * A, int64_t lda, const block_q8_K * y, float * C,
                                 int ith, int nth);
#endif

// C[ldc*j + i] = row i of A (m rows of nb blocks, lda blocks apart) . column j of B (n
// columns of Q8_0, ldb blocks apart); this thread's share (ith of nth): pyllm_thread_rows
bool pyllm_gemm_q0_q8_0(int type, int64_t m, int64_t n, int64_t nb, const void * A, int64_t lda, const void * B,
                        int64_t ldb, float * C, int64_t ldc, int ith, int nth) {
    if (type != GGML_TYPE_Q8_0 && type != GGML_TYPE_Q4_0 && type != GGML_TYPE_Q5_0) {
        return false;
    }
    const enum ggml_type t = (enum ggml_type) type;
    const size_t row_bytes = (size_t) lda * ggml_type_size(t);
    const block_q8_0 * cols = (const block_q8_0 *) B;
#ifdef __wasm_relaxed_simd__
    if (n == 1) {
        return pyllm_gemv_q0_q8_0(t, m, nb, (const uint8_t *) A, row_bytes, cols, C, ith, nth);
    }
#else
    if (n == 1) {
        return false;  // vec_dot row by row
    }
#endif
#ifdef __wasm_relaxed_simd__
    const int shift = t == GGML_TYPE_Q4_0 ? 3 : t == GGML_TYPE_Q5_0 ? 4 : 0;
    v128_t * ybias = shift ? (v128_t *) pyllm_scratch((sizeof(v128_t) * 8 + sizeof(float) * 4) * (size_t) nb) : NULL;
    float * dy = shift ? (float *) (ybias + 8 * nb) : NULL;  // the columns' scales
#else
    v128_t * ybias = NULL;
#endif
    int64_t r0, r1;
    pyllm_thread_rows(m, ith, nth, &r0, &r1);
    for (int64_t i0 = r0; i0 < r1; i0 += 16) {  // 16 weight rows stay in cache for all columns
        const int64_t i1 = i0 + 16 < r1 ? i0 + 16 : r1;
        int64_t j = 0;
        for (; j + 4 <= n; j += 4) {
            const block_q8_0 * y[4] = {cols + j * ldb, cols + (j + 1) * ldb, cols + (j + 2) * ldb, cols + (j + 3) * ldb};
#ifdef __wasm_relaxed_simd__
            if (ybias) {
                pyllm_gemm_ybias(y, nb, shift, ybias, dy);
                for (int64_t i = i0; i < i1; i++) {
                    float * out[4] = {C + j * ldc + i, C + (j + 1) * ldc + i, C + (j + 2) * ldc + i, C + (j + 3) * ldc + i};
                    pyllm_gemm_q0u_tile(t, (const uint8_t *) A + i * row_bytes, nb, y, ybias, dy, out);
                }
                continue;
            }
#endif
            for (int64_t i = i0; i < i1; i++) {
                float * out[4] = {C + j * ldc + i, C + (j + 1) * ldc + i, C + (j + 2) * ldc + i, C + (j + 3) * ldc + i};
                pyllm_gemm_q0_tile(t, (const uint8_t *) A + i * row_bytes, nb, y, out, 4);
            }
        }
        for (; j < n; j++) {
            const block_q8_0 * y[1] = {cols + j * ldb};
            for (int64_t i = i0; i < i1; i++) {
                float * out[1] = {C + j * ldc + i};
                pyllm_gemm_q0_tile(t, (const uint8_t *) A + i * row_bytes, nb, y, out, 1);
            }
        }
    }
    return true;
}

// 128 values of a Q6_K super-block (half j: ql + 64j, qh + 32j) as four 32-value groups
// g[k] = {values 32k..32k+15, 32k+16..32k+31}, unsigned 0..63 (the -32 offset is applied
// to the q8 side). The shifts are u16 lane shifts (V8 compiles an i8x16 shift to ~5
// instructions), exact here: each shifted value is masked so that no bit crosses a byte.
static inline __attribute__((always_inline)) void pyllm_q6_K_unpack16(v128_t la, v128_t lb, v128_t h, v128_t g[4]) {
    const v128_t m15 = wasm_i8x16_splat(15);
    g[0] = wasm_v128_or(wasm_v128_and(la, m15), wasm_i16x8_shl(wasm_v128_and(h, wasm_i8x16_splat(3)), 4));
    g[1] = wasm_v128_or(wasm_v128_and(lb, m15), wasm_i16x8_shl(wasm_v128_and(h, wasm_i8x16_splat(12)), 2));
    g[2] = wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(la, 4), m15), wasm_v128_and(h, wasm_i8x16_splat(48)));
    g[3] = wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(lb, 4), m15),
                        wasm_u16x8_shr(wasm_v128_and(h, wasm_i8x16_splat((char) 192)), 2));
}

static inline __attribute__((always_inline)) void pyllm_q6_K_groups(const uint8_t * ql, const uint8_t * qh,
                                                                    v128_t g[4][2]) {
    for (int t = 0; t < 2; t++) {  // values 32k + 16t .. 32k + 16t + 15
        v128_t u[4];
        pyllm_q6_K_unpack16(wasm_v128_load(ql + 16 * t), wasm_v128_load(ql + 32 + 16 * t), wasm_v128_load(qh + 16 * t), u);
        for (int k = 0; k < 4; k++) g[k][t] = u[k];
    }
}

// Q6_K (arch/x86/quants.c, AVX2): per super-block, eight int32 lanes; lane u collects, over
// the eight 32-element groups g, scale[2g + (u >= 4)] * (sum of the products of the group's
// elements 4u..4u+3), with the 6-bit values taken unsigned (0..63), minus
// 32 * (bsums[2u]*scale[2u] + bsums[2u+1]*scale[2u+1]) (the -32 offset, moved to the q8
// sums); then acc = fma(d, float(lane), acc) and hsum_float_8 as above.
// one Q6_K weight row (nb super-blocks) against NC Q8_K activation columns (NC a constant
// after inlining): each output is the vec_dot arithmetic above; a 32-element group is
// unpacked once for the NC columns
static inline __attribute__((always_inline)) void pyllm_q6_K_tile(const block_q6_K * x, const block_q8_K * const * y,
                                                                  int nb, float * const * out, const int NC) {
    v128_t acc_lo[4], acc_hi[4];
    for (int c = 0; c < NC; c++) acc_lo[c] = acc_hi[c] = wasm_f32x4_splat(0.0f);
    for (int i = 0; i < nb; ++i) {
        const float dx = GGML_CPU_FP16_TO_FP32(x[i].d);
        const int8_t * sc = x[i].scales;
        v128_t sumi_lo[4], sumi_hi[4];
        for (int c = 0; c < NC; c++) sumi_lo[c] = sumi_hi[c] = wasm_i32x4_splat(0);
        for (int j = 0; j < QK_K / 128; ++j) {
            v128_t g[4][2];
            pyllm_q6_K_groups(x[i].ql + 64 * j, x[i].qh + 32 * j, g);
            for (int k = 0; k < 4; ++k) {
                const int is = 8 * j + 2 * k;
#ifdef __wasm_relaxed_simd__
                // the scale applied to the i16 pair sums (|pair| <= 2 * 63 * 127), as x86's
                // maddubs then madd(scale): no i32 multiply
                const v128_t s_lo = wasm_i16x8_splat(sc[is]), s_hi = wasm_i16x8_splat(sc[is + 1]);
                for (int c = 0; c < NC; c++) {
                    const int8_t * q8 = y[c][i].qs + 128 * j + 32 * k;
                    sumi_lo[c] = wasm_i32x4_add(sumi_lo[c], wasm_i32x4_dot_i16x8(
                        pyllm_dot_i8_i7_pairs(wasm_v128_load(q8), g[k][0]), s_lo));
                    sumi_hi[c] = wasm_i32x4_add(sumi_hi[c], wasm_i32x4_dot_i16x8(
                        pyllm_dot_i8_i7_pairs(wasm_v128_load(q8 + 16), g[k][1]), s_hi));
                }
#else
                const v128_t s_lo = wasm_i32x4_splat(sc[is]), s_hi = wasm_i32x4_splat(sc[is + 1]);
                for (int c = 0; c < NC; c++) {
                    v128_t lo, hi;
                    pyllm_quad_sums_unsigned(g[k][0], g[k][1], y[c][i].qs + 128 * j + 32 * k, &lo, &hi);
                    sumi_lo[c] = wasm_i32x4_add(sumi_lo[c], wasm_i32x4_mul(lo, s_lo));
                    sumi_hi[c] = wasm_i32x4_add(sumi_hi[c], wasm_i32x4_mul(hi, s_hi));
                }
#endif
            }
        }
        const v128_t sc16_lo = wasm_i16x8_extend_low_i8x16(wasm_v128_load(sc));
        const v128_t sc16_hi = wasm_i16x8_extend_high_i8x16(wasm_v128_load(sc));
        for (int c = 0; c < NC; c++) {
            const v128_t corr_lo = wasm_i32x4_dot_i16x8(wasm_v128_load(y[c][i].bsums), sc16_lo);
            const v128_t corr_hi = wasm_i32x4_dot_i16x8(wasm_v128_load(y[c][i].bsums + 8), sc16_hi);
            const v128_t dv = wasm_f32x4_splat(y[c][i].d * dx);
            acc_lo[c] = pyllm_fma_f32x4(dv, wasm_f32x4_convert_i32x4(wasm_i32x4_sub(sumi_lo[c], wasm_i32x4_shl(corr_lo, 5))),
                                        acc_lo[c]);
            acc_hi[c] = pyllm_fma_f32x4(dv, wasm_f32x4_convert_i32x4(wasm_i32x4_sub(sumi_hi[c], wasm_i32x4_shl(corr_hi, 5))),
                                        acc_hi[c]);
        }
    }
    for (int c = 0; c < NC; c++) *out[c] = pyllm_hsum_float_8(acc_lo[c], acc_hi[c]);
}

void ggml_vec_dot_q6_K_q8_K(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    const block_q8_K * y[1] = {(const block_q8_K *) vy};
    float * out[1] = {s};
    pyllm_q6_K_tile((const block_q6_K *) vx, y, n / QK_K, out, 1);
}


// ---- Q2_K, Q3_K, Q4_K, Q5_K (arch/x86/quants.c, AVX2) -------------------------------------
// x86's vec_dot for these types keeps eight int32 lanes per super-block, as for Q6_K: lane u
// collects, over the eight 32-element groups, the group's scale times the sum of the
// products of its elements 4u..4u+3 (Q2_K/Q3_K: one scale per 16 elements, so lanes 0-3
// and 4-7 of a group have their own), then acc = fma(d_y * d_x, float(lane), acc) and
// hsum_float_8. The mins (Q2_K, Q4_K, Q5_K) are summed per lane too and take their own
// float steps, with dmin = -(d_y * dmin_x):
//   Q2_K  acc = fma(dmin, float(m), acc) before the scales' fma, lane u of m =
//         min[2u]*bsums[2u] + min[2u+1]*bsums[2u+1];
//   Q4_K  a second, 4-lane accumulator: acc_m = fma(dmin, float(m), acc_m), lane u of m =
//         min[2u]*b[2u] + min[2u+1]*b[2u+1] (b[t]: bsums of 32-element group t); at the end
//         hsum_float_8(acc) + ((m0 + m2) + (m1 + m3));
//   Q5_K  a scalar, summs = fma(float(m0 + m1 + m2 + m3), dmin, summs) (GCC's contraction);
//         at the end hsum_float_8(acc) + summs.
// Q3_K's values are signed (-4..3), the others' unsigned codes (Q2_K 0..3, Q4_K 0..15,
// Q5_K 0..31).

// 6-bit scale and min j (0..7) of a Q4_K/Q5_K super-block (get_scale_min_k4; the repacked
// Q4_K blocks keep this layout with column c in place of j)
static inline void pyllm_scale_min_k4(int j, const uint8_t * q, int * d, int * m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// a super-block unpacked: g[k] = the 32-element group k as int8 {elements 32k..32k+15,
// 32k+16..32k+31}, sc[k] the scales of its two halves, mins per 16 (Q2_K) or per 32
// elements (Q4_K/Q5_K: mins[0..7])
typedef struct {
    v128_t g[8][2];
    int16_t sc[8][2];
    int16_t mins[16];
    float d, dmin;
} pyllm_kq_block;

// 0xFF-or-0 bytes: where byte & bit
static inline v128_t pyllm_bit_set(v128_t v, uint8_t bit) {
    const v128_t b = wasm_i8x16_splat((char) bit);
    return wasm_i8x16_eq(wasm_v128_and(v, b), b);
}

static inline __attribute__((always_inline)) void pyllm_kq_unpack(enum ggml_type type, const uint8_t * row, int i,
                                                                  pyllm_kq_block * b) {
    const v128_t m4 = wasm_i8x16_splat(0x0F), m3 = wasm_i8x16_splat(3);
    if (type == GGML_TYPE_Q4_K || type == GGML_TYPE_Q5_K) {
        const uint8_t * qs, * scales, * qh = NULL;
        if (type == GGML_TYPE_Q4_K) {
            const block_q4_K * x = (const block_q4_K *) row + i;
            b->d = GGML_CPU_FP16_TO_FP32(x->d);
            b->dmin = GGML_CPU_FP16_TO_FP32(x->dmin);
            qs = x->qs;
            scales = x->scales;
        } else {
            const block_q5_K * x = (const block_q5_K *) row + i;
            b->d = GGML_CPU_FP16_TO_FP32(x->d);
            b->dmin = GGML_CPU_FP16_TO_FP32(x->dmin);
            qs = x->qs;
            scales = x->scales;
            qh = x->qh;
        }
        for (int j = 0; j < 8; j++) {
            int sc, m;
            pyllm_scale_min_k4(j, scales, &sc, &m);
            b->sc[j][0] = b->sc[j][1] = (int16_t) sc;
            b->mins[j] = (int16_t) m;
        }
        for (int j = 0; j < 4; j++) {  // 64 elements: the low nibbles of 32 bytes, then their high nibbles
            const v128_t v0 = wasm_v128_load(qs + 32 * j), v1 = wasm_v128_load(qs + 32 * j + 16);
            b->g[2 * j][0] = wasm_v128_and(v0, m4);
            b->g[2 * j][1] = wasm_v128_and(v1, m4);
            b->g[2 * j + 1][0] = wasm_u8x16_shr(v0, 4);
            b->g[2 * j + 1][1] = wasm_u8x16_shr(v1, 4);
        }
        if (qh) {  // Q5_K: the fifth bit of group k is bit k of qh
            const v128_t h0 = wasm_v128_load(qh), h1 = wasm_v128_load(qh + 16), sixteen = wasm_i8x16_splat(16);
            for (int k = 0; k < 8; k++) {
                b->g[k][0] = wasm_v128_or(b->g[k][0], wasm_v128_and(pyllm_bit_set(h0, (uint8_t) (1 << k)), sixteen));
                b->g[k][1] = wasm_v128_or(b->g[k][1], wasm_v128_and(pyllm_bit_set(h1, (uint8_t) (1 << k)), sixteen));
            }
        }
    } else if (type == GGML_TYPE_Q2_K) {
        const block_q2_K * x = (const block_q2_K *) row + i;
        b->d = GGML_CPU_FP16_TO_FP32(x->d);
        b->dmin = GGML_CPU_FP16_TO_FP32(x->dmin);
        for (int s = 0; s < 16; s++) b->mins[s] = x->scales[s] >> 4;
        for (int j = 0; j < 2; j++) {  // 128 elements: bits 2k..2k+1 of 32 bytes are group 4j + k
            const v128_t v0 = wasm_v128_load(x->qs + 32 * j), v1 = wasm_v128_load(x->qs + 32 * j + 16);
            for (int k = 0; k < 4; k++) {
                b->g[4 * j + k][0] = wasm_v128_and(wasm_u8x16_shr(v0, 2 * k), m3);
                b->g[4 * j + k][1] = wasm_v128_and(wasm_u8x16_shr(v1, 2 * k), m3);
                b->sc[4 * j + k][0] = x->scales[8 * j + 2 * k] & 0xF;
                b->sc[4 * j + k][1] = x->scales[8 * j + 2 * k + 1] & 0xF;
            }
        }
    } else {  // Q3_K
        const block_q3_K * x = (const block_q3_K *) row + i;
        b->d = GGML_CPU_FP16_TO_FP32(x->d);
        b->dmin = 0.0f;
        // the sixteen 6-bit scales (as the reference decodes them), minus 32
        uint32_t aux[4];
        memcpy(aux, x->scales, 12);
        const uint32_t tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & 0x0f0f0f0f) | (((tmp >> 4) & 0x03030303) << 4);
        aux[3] = ((aux[1] >> 4) & 0x0f0f0f0f) | (((tmp >> 6) & 0x03030303) << 4);
        aux[0] = (aux[0] & 0x0f0f0f0f) | (((tmp >> 0) & 0x03030303) << 4);
        aux[1] = (aux[1] & 0x0f0f0f0f) | (((tmp >> 2) & 0x03030303) << 4);
        const int8_t * scales = (const int8_t *) aux;
        const v128_t h0 = wasm_v128_load(x->hmask), h1 = wasm_v128_load(x->hmask + 16), four = wasm_i8x16_splat(4);
        for (int j = 0; j < 2; j++) {  // group 4j + k: bits 2k..2k+1 of 32 bytes, minus 4 where hmask bit 4j+k is clear
            const v128_t v0 = wasm_v128_load(x->qs + 32 * j), v1 = wasm_v128_load(x->qs + 32 * j + 16);
            for (int k = 0; k < 4; k++) {
                const uint8_t bit = (uint8_t) (1 << (4 * j + k));
                b->g[4 * j + k][0] = wasm_i8x16_sub(wasm_v128_and(wasm_u8x16_shr(v0, 2 * k), m3),
                                                    wasm_v128_andnot(four, pyllm_bit_set(h0, bit)));
                b->g[4 * j + k][1] = wasm_i8x16_sub(wasm_v128_and(wasm_u8x16_shr(v1, 2 * k), m3),
                                                    wasm_v128_andnot(four, pyllm_bit_set(h1, bit)));
                b->sc[4 * j + k][0] = scales[8 * j + 2 * k] - 32;
                b->sc[4 * j + k][1] = scales[8 * j + 2 * k + 1] - 32;
            }
        }
    }
}

// x86's eight int32 lanes of a super-block against the q8 values (lo: lanes 0-3, hi: 4-7),
// over the groups k0..k1-1 (0..8: all)
static inline __attribute__((always_inline)) void pyllm_kq_lanes(enum ggml_type type, const pyllm_kq_block * b,
                                                                 const int8_t * q8, int k0, int k1, v128_t * lo,
                                                                 v128_t * hi) {
    v128_t sl = wasm_i32x4_splat(0), sh = sl;
    for (int k = k0; k < k1; k++) {
        v128_t l, h;
#ifdef __wasm_relaxed_simd__
        if (type != GGML_TYPE_Q3_K) {  // codes 0..31: the i16 pair sums then the scale, as x86's madd
            l = wasm_i32x4_dot_i16x8(pyllm_dot_i8_i7_pairs(wasm_v128_load(q8 + 32 * k), b->g[k][0]),
                                     wasm_i16x8_splat(b->sc[k][0]));
            h = wasm_i32x4_dot_i16x8(pyllm_dot_i8_i7_pairs(wasm_v128_load(q8 + 32 * k + 16), b->g[k][1]),
                                     wasm_i16x8_splat(b->sc[k][1]));
        } else
#endif
        {
            pyllm_quad_sums(b->g[k][0], b->g[k][1], q8 + 32 * k, &l, &h);
            l = wasm_i32x4_mul(l, wasm_i32x4_splat(b->sc[k][0]));
            h = wasm_i32x4_mul(h, wasm_i32x4_splat(b->sc[k][1]));
        }
        sl = wasm_i32x4_add(sl, l);
        sh = wasm_i32x4_add(sh, h);
    }
    *lo = sl;
    *hi = sh;
}

// the mins' int32 lanes (see above): Q2_K eight (lo, hi), Q4_K/Q5_K four (lo)
static inline __attribute__((always_inline)) void pyllm_kq_min_lanes(enum ggml_type type, const pyllm_kq_block * b,
                                                                     const block_q8_K * y, v128_t * lo, v128_t * hi) {
    const v128_t b0 = wasm_v128_load(y->bsums), b1 = wasm_v128_load(y->bsums + 8);
    if (type == GGML_TYPE_Q2_K) {
        *lo = wasm_i32x4_dot_i16x8(wasm_v128_load(b->mins), b0);
        *hi = wasm_i32x4_dot_i16x8(wasm_v128_load(b->mins + 8), b1);
    } else {  // the 32-element groups' sums (|sum| <= 32 * 127: exact in i16)
        const v128_t s32 = wasm_i16x8_add(wasm_i16x8_shuffle(b0, b1, 0, 2, 4, 6, 8, 10, 12, 14),
                                          wasm_i16x8_shuffle(b0, b1, 1, 3, 5, 7, 9, 11, 13, 15));
        *lo = wasm_i32x4_dot_i16x8(wasm_v128_load(b->mins), s32);
        *hi = wasm_i32x4_splat(0);
    }
}

// one Q2_K-Q5_K weight row (nb super-blocks) against NC Q8_K columns (NC a constant after
// inlining), each output x86's vec_dot arithmetic above; a super-block unpacked once for NC
static inline __attribute__((always_inline)) void pyllm_kq_tile(enum ggml_type type, const uint8_t * row,
                                                                const block_q8_K * const * y, int nb,
                                                                float * const * out, const int NC) {
    v128_t acc_lo[4], acc_hi[4], acc_m[4];
    float summs[4];
    for (int c = 0; c < NC; c++) {
        acc_lo[c] = acc_hi[c] = acc_m[c] = wasm_f32x4_splat(0.0f);
        summs[c] = 0.0f;
    }
    for (int i = 0; i < nb; ++i) {
        pyllm_kq_block b;
        pyllm_kq_unpack(type, row, i, &b);
        for (int c = 0; c < NC; c++) {
            const block_q8_K * yb = &y[c][i];
            const v128_t d = wasm_f32x4_splat(yb->d * b.d);
            const float dmin = -yb->d * b.dmin;
            if (type != GGML_TYPE_Q3_K) {
                v128_t m_lo, m_hi;
                pyllm_kq_min_lanes(type, &b, yb, &m_lo, &m_hi);
                if (type == GGML_TYPE_Q2_K) {
                    acc_lo[c] = pyllm_fma_f32x4(wasm_f32x4_splat(dmin), wasm_f32x4_convert_i32x4(m_lo), acc_lo[c]);
                    acc_hi[c] = pyllm_fma_f32x4(wasm_f32x4_splat(dmin), wasm_f32x4_convert_i32x4(m_hi), acc_hi[c]);
                } else if (type == GGML_TYPE_Q4_K) {
                    acc_m[c] = pyllm_fma_f32x4(wasm_f32x4_splat(dmin), wasm_f32x4_convert_i32x4(m_lo), acc_m[c]);
                } else {
                    summs[c] = pyllm_fmaf((float) pyllm_hsum_i32x4(m_lo), dmin, summs[c]);
                }
            }
            v128_t lo, hi;
            pyllm_kq_lanes(type, &b, yb->qs, 0, 8, &lo, &hi);
            acc_lo[c] = pyllm_fma_f32x4(d, wasm_f32x4_convert_i32x4(lo), acc_lo[c]);
            acc_hi[c] = pyllm_fma_f32x4(d, wasm_f32x4_convert_i32x4(hi), acc_hi[c]);
        }
    }
    for (int c = 0; c < NC; c++) {
        float r = pyllm_hsum_float_8(acc_lo[c], acc_hi[c]);
        if (type == GGML_TYPE_Q4_K) {
            const v128_t m = wasm_f32x4_add(acc_m[c], wasm_i32x4_shuffle(acc_m[c], acc_m[c], 2, 3, 2, 3));
            r += wasm_f32x4_extract_lane(m, 0) + wasm_f32x4_extract_lane(m, 1);
        } else if (type == GGML_TYPE_Q5_K) {
            r += summs[c];
        }
        *out[c] = r;
    }
}

// ggml's vec_dot for Q2_K-Q5_K: a tile with one column
static inline __attribute__((always_inline)) void pyllm_vec_dot_kq(enum ggml_type type, int n, float * s, const void * vx,
                                                                   const void * vy) {
    const block_q8_K * y[1] = {(const block_q8_K *) vy};
    float * out[1] = {s};
    pyllm_kq_tile(type, (const uint8_t *) vx, y, n / QK_K, out, 1);
}

void ggml_vec_dot_q2_K_q8_K(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    pyllm_vec_dot_kq(GGML_TYPE_Q2_K, n, s, vx, vy);
}

void ggml_vec_dot_q3_K_q8_K(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    pyllm_vec_dot_kq(GGML_TYPE_Q3_K, n, s, vx, vy);
}

void ggml_vec_dot_q4_K_q8_K(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    pyllm_vec_dot_kq(GGML_TYPE_Q4_K, n, s, vx, vy);
}

void ggml_vec_dot_q5_K_q8_K(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    pyllm_vec_dot_kq(GGML_TYPE_Q5_K, n, s, vx, vy);
}

// ---- batches of 8+ columns: ggml-cpu/tiled ---------------------------------------------------
// Batches of 8+ columns (ggml's src1 rows) go natively to ggml-cpu/tiled instead (x86's
// mul_mat takes any non-repacked Q2_K-Q6_K or IQ weight there first, whatever the batch's
// layout): per output one chain, acc = 0, then per super-block one step on the block's
// whole exact integer sums, s (the scales' sum, the vec_dot lanes' total) and, for the types
// with mins, m (the mins' sum):
//   r = float(s) * d_x;  r = fma(-dmin_x, float(m), r) (vfnmadd);  acc = fma(r, d_y, acc)
// as tiled_run_micro_vnni_8x16 computes it (vcvtdq2ps, vmulps, vfnmadd, vfmadd; its AVX2
// microtile computes the same). Here NC (up to 8) columns in the lanes of the float chains;
// the integer sums need no lane split.
static inline v128_t pyllm_chain_step(v128_t acc, v128_t s, const v128_t * m, float dx, float dminx, v128_t dy) {
    v128_t r = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s), wasm_f32x4_splat(dx));
    if (m) {
        r = pyllm_fma_f32x4(wasm_f32x4_splat(-dminx), wasm_f32x4_convert_i32x4(*m), r);
    }
    return pyllm_fma_f32x4(r, dy, acc);
}

// lane c: column 4q + c's activation scale of super-block i (0 past NC)
static inline v128_t pyllm_chain_dy(const block_q8_K * const * y, int i, int q, const int NC) {
    float dy[4];
    for (int c = 0; c < 4; c++) dy[c] = 4 * q + c < NC ? y[4 * q + c][i].d : 0.0f;
    return wasm_v128_load(dy);
}

static inline __attribute__((always_inline)) void pyllm_q6_K_chain(const block_q6_K * x, const block_q8_K * const * y,
                                                                   int nb, float * const * out, const int NC) {
    v128_t acc[2] = {wasm_f32x4_splat(0.0f), wasm_f32x4_splat(0.0f)};  // lane c % 4 of acc[c / 4]: column c
    for (int i = 0; i < nb; ++i) {
        const int8_t * sc = x[i].scales;
        v128_t sumi[8];
        // the -32 offset of the 6-bit values, moved to the q8 sums: 32 * sum of bsums * scale
        const v128_t sc16_lo = wasm_i16x8_extend_low_i8x16(wasm_v128_load(sc));
        const v128_t sc16_hi = wasm_i16x8_extend_high_i8x16(wasm_v128_load(sc));
        for (int c = 0; c < NC; c++) {
            sumi[c] = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_load(y[c][i].bsums), sc16_lo),
                                                    wasm_i32x4_dot_i16x8(wasm_v128_load(y[c][i].bsums + 8), sc16_hi)), 5);
            sumi[c] = wasm_i32x4_sub(wasm_i32x4_splat(0), sumi[c]);
        }
        for (int j = 0; j < QK_K / 128; ++j) {
            v128_t g[4][2];
            pyllm_q6_K_groups(x[i].ql + 64 * j, x[i].qh + 32 * j, g);
            for (int k = 0; k < 4; ++k) {
                const int is = 8 * j + 2 * k;
                for (int c = 0; c < NC; c++) {
                    const int8_t * q8 = y[c][i].qs + 128 * j + 32 * k;
                    v128_t lo, hi;
#ifdef __wasm_relaxed_simd__
                    lo = wasm_i32x4_dot_i16x8(pyllm_dot_i8_i7_pairs(wasm_v128_load(q8), g[k][0]), wasm_i16x8_splat(sc[is]));
                    hi = wasm_i32x4_dot_i16x8(pyllm_dot_i8_i7_pairs(wasm_v128_load(q8 + 16), g[k][1]),
                                              wasm_i16x8_splat(sc[is + 1]));
#else
                    pyllm_quad_sums_unsigned(g[k][0], g[k][1], q8, &lo, &hi);
                    lo = wasm_i32x4_mul(lo, wasm_i32x4_splat(sc[is]));
                    hi = wasm_i32x4_mul(hi, wasm_i32x4_splat(sc[is + 1]));
#endif
                    sumi[c] = wasm_i32x4_add(sumi[c], wasm_i32x4_add(lo, hi));
                }
            }
        }
        const float dx = GGML_CPU_FP16_TO_FP32(x[i].d);
        for (int q = 0; q < (NC + 3) / 4; q++) {
            v128_t s;  // lane c: column 4q + c's block sum
            if (NC >= 4) {
                const v128_t * u = sumi + 4 * q;
                const v128_t a = wasm_i32x4_add(wasm_i32x4_shuffle(u[0], u[1], 0, 2, 4, 6),
                                                wasm_i32x4_shuffle(u[0], u[1], 1, 3, 5, 7));
                const v128_t b = wasm_i32x4_add(wasm_i32x4_shuffle(u[2], u[3], 0, 2, 4, 6),
                                                wasm_i32x4_shuffle(u[2], u[3], 1, 3, 5, 7));
                s = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 2, 4, 6), wasm_i32x4_shuffle(a, b, 1, 3, 5, 7));
            } else {
                s = wasm_i32x4_splat(pyllm_hsum_i32x4(sumi[0]));
            }
            acc[q] = pyllm_chain_step(acc[q], s, NULL, dx, 0.0f, pyllm_chain_dy(y, i, q, NC));
        }
    }
    float res[8];
    wasm_v128_store(res, acc[0]);
    wasm_v128_store(res + 4, acc[1]);
    for (int c = 0; c < NC; c++) *out[c] = res[c];
}

// the same chain for Q2_K-Q5_K (s, m: the vec_dot lanes' totals)
static inline __attribute__((always_inline)) void pyllm_kq_chain(enum ggml_type type, const uint8_t * row,
                                                                 const block_q8_K * const * y, int nb,
                                                                 float * const * out, const int NC) {
    v128_t acc[2] = {wasm_f32x4_splat(0.0f), wasm_f32x4_splat(0.0f)};  // lane c % 4 of acc[c / 4]: column c
    const bool has_min = type != GGML_TYPE_Q3_K;
    for (int i = 0; i < nb; ++i) {
        pyllm_kq_block b;
        pyllm_kq_unpack(type, row, i, &b);
        int32_t s[8] = {0}, m[8] = {0};
        for (int c = 0; c < NC; c++) {
            v128_t lo, hi;
            pyllm_kq_lanes(type, &b, y[c][i].qs, 0, 8, &lo, &hi);
            s[c] = pyllm_hsum_i32x4(wasm_i32x4_add(lo, hi));
            if (has_min) {
                pyllm_kq_min_lanes(type, &b, &y[c][i], &lo, &hi);
                m[c] = pyllm_hsum_i32x4(wasm_i32x4_add(lo, hi));
            }
        }
        for (int q = 0; q < (NC + 3) / 4; q++) {
            const v128_t mv = wasm_v128_load(m + 4 * q);
            acc[q] = pyllm_chain_step(acc[q], wasm_v128_load(s + 4 * q), has_min ? &mv : NULL, b.d, b.dmin,
                                      pyllm_chain_dy(y, i, q, NC));
        }
    }
    float res[8];
    wasm_v128_store(res, acc[0]);
    wasm_v128_store(res + 4, acc[1]);
    for (int c = 0; c < NC; c++) *out[c] = res[c];
}

// one weight row against NC columns: the tiled chain (chain) or vec_dot's arithmetic
static inline __attribute__((always_inline)) void pyllm_k_row(enum ggml_type type, bool chain, const uint8_t * row,
                                                              const block_q8_K * const * y, int nb,
                                                              float * const * out, const int NC) {
    if (type == GGML_TYPE_Q6_K) {
        if (chain) {
            pyllm_q6_K_chain((const block_q6_K *) row, y, nb, out, NC);
        } else {
            pyllm_q6_K_tile((const block_q6_K *) row, y, nb, out, NC);
        }
    } else if (chain) {
        pyllm_kq_chain(type, row, y, nb, out, NC);
    } else {
        pyllm_kq_tile(type, row, y, nb, out, NC);
    }
}

// K-quant x Q8_K batches (llamafile_sgemm's wasm hook), as pyllm_gemm_q0_q8_0: a weight row
// against 8 or 4 columns at a time, this thread's share (pyllm_thread_rows) in blocks of 16
// rows. From 8 columns on ggml-cpu/tiled's arithmetic, vec_dot's below (as x86 computes them).
// One column: Q6_K's gemv (relaxed build); false for the others (vec_dot row by row).
static inline __attribute__((always_inline)) bool pyllm_gemm_k_rows(enum ggml_type type, int64_t m, int64_t n,
                                                                    int64_t nb, const void * A, int64_t lda,
                                                                    const void * B, int64_t ldb, float * C,
                                                                    int64_t ldc, int ith, int nth) {
    const size_t row_bytes = (size_t) lda * ggml_type_size(type);
    const block_q8_K * cols = (const block_q8_K *) B;
    if (n == 1) {
#ifdef __wasm_relaxed_simd__
        if (type == GGML_TYPE_Q6_K) {
            pyllm_gemv_q6_K_q8_K(m, (int) nb, (const block_q6_K *) A, lda, cols, C, ith, nth);
            return true;
        }
#endif
        return false;  // vec_dot row by row
    }
    const bool chain = n >= 8;
    int64_t r0, r1;
    pyllm_thread_rows(m, ith, nth, &r0, &r1);
    for (int64_t i0 = r0; i0 < r1; i0 += 16) {  // 16 weight rows stay in cache for all columns
        const int64_t i1 = i0 + 16 < r1 ? i0 + 16 : r1;
        int64_t j = 0;
        for (; chain && j + 8 <= n; j += 8) {  // (8 columns: 1.1x 4 under V8, for Q6_K)
            const block_q8_K * y[8];
            for (int c = 0; c < 8; c++) y[c] = cols + (j + c) * ldb;
            for (int64_t i = i0; i < i1; i++) {
                float * out[8];
                for (int c = 0; c < 8; c++) out[c] = C + (j + c) * ldc + i;
                pyllm_k_row(type, true, (const uint8_t *) A + i * row_bytes, y, (int) nb, out, 8);
            }
        }
        for (; j + 4 <= n; j += 4) {
            const block_q8_K * y[4] = {cols + j * ldb, cols + (j + 1) * ldb, cols + (j + 2) * ldb, cols + (j + 3) * ldb};
            for (int64_t i = i0; i < i1; i++) {
                float * out[4] = {C + j * ldc + i, C + (j + 1) * ldc + i, C + (j + 2) * ldc + i, C + (j + 3) * ldc + i};
                pyllm_k_row(type, chain, (const uint8_t *) A + i * row_bytes, y, (int) nb, out, 4);
            }
        }
        for (; j < n; j++) {
            const block_q8_K * y[1] = {cols + j * ldb};
            for (int64_t i = i0; i < i1; i++) {
                float * out[1] = {C + j * ldc + i};
                pyllm_k_row(type, chain, (const uint8_t *) A + i * row_bytes, y, (int) nb, out, 1);
            }
        }
    }
    return true;
}

bool pyllm_gemm_k_q8_K(int type, int64_t m, int64_t n, int64_t nb, const void * A, int64_t lda, const void * B,
                       int64_t ldb, float * C, int64_t ldc, int ith, int nth) {
    switch (type) {  // one instance per type (the type tests out of the loops)
    case GGML_TYPE_Q2_K: return pyllm_gemm_k_rows(GGML_TYPE_Q2_K, m, n, nb, A, lda, B, ldb, C, ldc, ith, nth);
    case GGML_TYPE_Q3_K: return pyllm_gemm_k_rows(GGML_TYPE_Q3_K, m, n, nb, A, lda, B, ldb, C, ldc, ith, nth);
    case GGML_TYPE_Q4_K: return pyllm_gemm_k_rows(GGML_TYPE_Q4_K, m, n, nb, A, lda, B, ldb, C, ldc, ith, nth);
    case GGML_TYPE_Q5_K: return pyllm_gemm_k_rows(GGML_TYPE_Q5_K, m, n, nb, A, lda, B, ldb, C, ldc, ith, nth);
    case GGML_TYPE_Q6_K: return pyllm_gemm_k_rows(GGML_TYPE_Q6_K, m, n, nb, A, lda, B, ldb, C, ldc, ith, nth);
    default: return false;
    }
}

// x86 quantizes q8_K activations with the reference code (compiled without FMA there)
void quantize_row_q8_K(const float * GGML_RESTRICT x, void * GGML_RESTRICT y, int64_t k) {
    quantize_row_q8_K_ref(x, (block_q8_K *) y, k);
}
