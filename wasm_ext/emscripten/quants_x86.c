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

#ifdef __wasm_relaxed_simd__
// x0/x1: the weight block's 32 values as int8 in element order; acc = fma(d, float(lane), acc)
// as x86's _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc) (|lane| < 2^17: exact in f32)
static inline void pyllm_acc_q0_block(v128_t * acc_lo, v128_t * acc_hi, float d, v128_t x0, v128_t x1,
                                      const int8_t * y) {
    v128_t lo, hi;
    pyllm_quad_sums(x0, x1, y, &lo, &hi);
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

// x0/x1: the weight block's 32 values as int8 in element order
static inline void pyllm_acc_q0_block(v128_t * acc_lo, v128_t * acc_hi, float d, v128_t x0, v128_t x1,
                                      const int8_t * y) {
    v128_t lo, hi;
    pyllm_quad_sums(x0, x1, y, &lo, &hi);
    const v128_t d64 = wasm_f64x2_splat((double) d);
    *acc_lo = pyllm_fma_q0(d64, lo, *acc_lo);
    *acc_hi = pyllm_fma_q0(d64, hi, *acc_hi);
}
#endif  // __wasm_relaxed_simd__

// hsum_float_8 of arch/x86/quants.c (and tinyBLAS's hsum(__m256))
static inline float pyllm_hsum_float_8(v128_t lo, v128_t hi) {
    const v128_t r = wasm_f32x4_add(hi, lo);
    const v128_t t = wasm_f32x4_add(r, wasm_i32x4_shuffle(r, r, 2, 3, 2, 3));
    return wasm_f32x4_extract_lane(t, 0) + wasm_f32x4_extract_lane(t, 1);
}

// 16 bytes of packed nibbles -> (low nibbles, high nibbles) = elements 0-15, 16-31
static inline void pyllm_nibbles(const uint8_t * qs, v128_t * x0, v128_t * x1) {
    const v128_t v = wasm_v128_load(qs);
    *x0 = wasm_v128_and(v, wasm_i8x16_splat(0x0F));
    *x1 = wasm_u8x16_shr(v, 4);
}

void ggml_vec_dot_q8_0_q8_0(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    const int nb = n / QK8_0;
    const block_q8_0 * GGML_RESTRICT x = vx;
    const block_q8_0 * GGML_RESTRICT y = vy;
    v128_t acc_lo = wasm_f32x4_splat(0.0f), acc_hi = acc_lo;
    for (int ib = 0; ib < nb; ++ib) {
        const float d = GGML_CPU_FP16_TO_FP32(x[ib].d) * GGML_CPU_FP16_TO_FP32(y[ib].d);
        pyllm_acc_q0_block(&acc_lo, &acc_hi, d, wasm_v128_load(x[ib].qs), wasm_v128_load(x[ib].qs + 16), y[ib].qs);
    }
    *s = pyllm_hsum_float_8(acc_lo, acc_hi);
}

void ggml_vec_dot_q4_0_q8_0(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    const int nb = n / QK8_0;
    const block_q4_0 * GGML_RESTRICT x = vx;
    const block_q8_0 * GGML_RESTRICT y = vy;
    const v128_t eight = wasm_i8x16_splat(8);
    v128_t acc_lo = wasm_f32x4_splat(0.0f), acc_hi = acc_lo;
    for (int ib = 0; ib < nb; ++ib) {
        const float d = GGML_CPU_FP16_TO_FP32(x[ib].d) * GGML_CPU_FP16_TO_FP32(y[ib].d);
        v128_t x0, x1;
        pyllm_nibbles(x[ib].qs, &x0, &x1);
        pyllm_acc_q0_block(&acc_lo, &acc_hi, d, wasm_i8x16_sub(x0, eight), wasm_i8x16_sub(x1, eight), y[ib].qs);
    }
    *s = pyllm_hsum_float_8(acc_lo, acc_hi);
}

void ggml_vec_dot_q5_0_q8_0(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    const int nb = n / QK8_0;
    const block_q5_0 * GGML_RESTRICT x = vx;
    const block_q8_0 * GGML_RESTRICT y = vy;
    const v128_t bit = wasm_u8x16_make(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    const v128_t f0 = wasm_i8x16_splat((char) 0xF0);
    v128_t acc_lo = wasm_f32x4_splat(0.0f), acc_hi = acc_lo;
    for (int ib = 0; ib < nb; ++ib) {
        const float d = GGML_CPU_FP16_TO_FP32(x[ib].d) * GGML_CPU_FP16_TO_FP32(y[ib].d);
        uint32_t qh;
        memcpy(&qh, x[ib].qh, sizeof(qh));
        const v128_t qhv = wasm_i32x4_splat((int32_t) qh);
        // byte j of each half: 0xF0 where the element's fifth bit is clear (value - 16), else 0
        const v128_t h0 = wasm_v128_and(wasm_i8x16_eq(wasm_v128_and(
            wasm_i8x16_swizzle(qhv, wasm_u8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)), bit),
            wasm_i8x16_splat(0)), f0);
        const v128_t h1 = wasm_v128_and(wasm_i8x16_eq(wasm_v128_and(
            wasm_i8x16_swizzle(qhv, wasm_u8x16_make(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)), bit),
            wasm_i8x16_splat(0)), f0);
        v128_t x0, x1;
        pyllm_nibbles(x[ib].qs, &x0, &x1);
        pyllm_acc_q0_block(&acc_lo, &acc_hi, d, wasm_v128_or(x0, h0), wasm_v128_or(x1, h1), y[ib].qs);
    }
    *s = pyllm_hsum_float_8(acc_lo, acc_hi);
}

// Q6_K (arch/x86/quants.c, AVX2): per super-block, eight int32 lanes; lane u collects, over
// the eight 32-element groups g, scale[2g + (u >= 4)] * (sum of the products of the group's
// elements 4u..4u+3), with the 6-bit values taken unsigned (0..63), minus
// 32 * (bsums[2u]*scale[2u] + bsums[2u+1]*scale[2u+1]) (the -32 offset, moved to the q8
// sums); then acc = fma(d, float(lane), acc) and hsum_float_8 as above.
void ggml_vec_dot_q6_K_q8_K(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, size_t bx,
                            const void * GGML_RESTRICT vy, size_t by, int nrc) {
    UNUSED(bs); UNUSED(bx); UNUSED(by); UNUSED(nrc);
    const int nb = n / QK_K;
    const block_q6_K * GGML_RESTRICT x = vx;
    const block_q8_K * GGML_RESTRICT y = vy;
    const v128_t m15 = wasm_i8x16_splat(15), m3 = wasm_i8x16_splat(3), m12 = wasm_i8x16_splat(12);
    const v128_t m48 = wasm_i8x16_splat(48), m192 = wasm_i8x16_splat((char) 192);
    v128_t acc_lo = wasm_f32x4_splat(0.0f), acc_hi = acc_lo;
    for (int i = 0; i < nb; ++i) {
        const float d = y[i].d * GGML_CPU_FP16_TO_FP32(x[i].d);
        const int8_t * sc = x[i].scales;
        v128_t sumi_lo = wasm_i32x4_splat(0), sumi_hi = sumi_lo;
        for (int j = 0; j < QK_K / 128; ++j) {
            const uint8_t * ql = x[i].ql + 64 * j;
            const uint8_t * qh = x[i].qh + 32 * j;
            const int8_t * q8 = y[i].qs + 128 * j;
            const v128_t la0 = wasm_v128_load(ql), la1 = wasm_v128_load(ql + 16);
            const v128_t lb0 = wasm_v128_load(ql + 32), lb1 = wasm_v128_load(ql + 48);
            const v128_t h0 = wasm_v128_load(qh), h1 = wasm_v128_load(qh + 16);
            v128_t g[4][2];
            g[0][0] = wasm_v128_or(wasm_v128_and(la0, m15), wasm_i8x16_shl(wasm_v128_and(h0, m3), 4));
            g[0][1] = wasm_v128_or(wasm_v128_and(la1, m15), wasm_i8x16_shl(wasm_v128_and(h1, m3), 4));
            g[1][0] = wasm_v128_or(wasm_v128_and(lb0, m15), wasm_i8x16_shl(wasm_v128_and(h0, m12), 2));
            g[1][1] = wasm_v128_or(wasm_v128_and(lb1, m15), wasm_i8x16_shl(wasm_v128_and(h1, m12), 2));
            g[2][0] = wasm_v128_or(wasm_u8x16_shr(la0, 4), wasm_v128_and(h0, m48));
            g[2][1] = wasm_v128_or(wasm_u8x16_shr(la1, 4), wasm_v128_and(h1, m48));
            g[3][0] = wasm_v128_or(wasm_u8x16_shr(lb0, 4), wasm_u8x16_shr(wasm_v128_and(h0, m192), 2));
            g[3][1] = wasm_v128_or(wasm_u8x16_shr(lb1, 4), wasm_u8x16_shr(wasm_v128_and(h1, m192), 2));
            for (int k = 0; k < 4; ++k) {
                v128_t lo, hi;
                pyllm_quad_sums(g[k][0], g[k][1], q8 + 32 * k, &lo, &hi);
                const int is = 8 * j + 2 * k;
                sumi_lo = wasm_i32x4_add(sumi_lo, wasm_i32x4_mul(lo, wasm_i32x4_splat(sc[is])));
                sumi_hi = wasm_i32x4_add(sumi_hi, wasm_i32x4_mul(hi, wasm_i32x4_splat(sc[is + 1])));
            }
        }
        const v128_t sc16_lo = wasm_i16x8_extend_low_i8x16(wasm_v128_load(sc));
        const v128_t sc16_hi = wasm_i16x8_extend_high_i8x16(wasm_v128_load(sc));
        const v128_t corr_lo = wasm_i32x4_dot_i16x8(wasm_v128_load(y[i].bsums), sc16_lo);
        const v128_t corr_hi = wasm_i32x4_dot_i16x8(wasm_v128_load(y[i].bsums + 8), sc16_hi);
        sumi_lo = wasm_i32x4_sub(sumi_lo, wasm_i32x4_shl(corr_lo, 5));
        sumi_hi = wasm_i32x4_sub(sumi_hi, wasm_i32x4_shl(corr_hi, 5));
        const v128_t dv = wasm_f32x4_splat(d);
        acc_lo = pyllm_fma_f32x4(dv, wasm_f32x4_convert_i32x4(sumi_lo), acc_lo);
        acc_hi = pyllm_fma_f32x4(dv, wasm_f32x4_convert_i32x4(sumi_hi), acc_hi);
    }
    *s = pyllm_hsum_float_8(acc_lo, acc_hi);
}

// x86 quantizes q8_K activations with the reference code (compiled without FMA there)
void quantize_row_q8_K(const float * GGML_RESTRICT x, void * GGML_RESTRICT y, int64_t k) {
    quantize_row_q8_K_ref(x, (block_q8_K *) y, k);
}
