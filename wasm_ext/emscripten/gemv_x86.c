// pyllm: decode mat-vecs (one activation column) of the Q0 weight types and Q6_K (at the
// end) for the relaxed-SIMD build (appended to ggml-cpu/arch/wasm/quants.c after
// quants_x86.c by build_wasm.py; llamafile_sgemm's wasm hook sends n == 1 here; the
// baseline build keeps vec_dot row by row). Every output is vec_dot's arithmetic
// (quants_x86.c: exact int32 quad sums per block, acc = fma(d_x * d_y, float(lane), acc),
// hsum_float_8), only the integer quad sums are formed another way, which is exact in any
// order:
//  * the activation's share of each block is prepared once for all rows (pyllm_gemv_act);
//  * Q8_0 weights are signed, so with y = y+ - y- (y+ = max(y, 0), y- = max(-y, 0), both
//    0..127 as the relaxed i8 x i7 dot needs) a quad sum is dot(x, y+) - dot(x, y-): two dots
//    and no per-row sign work (x86 moves the sign to y with _mm256_sign_epi8, which wasm
//    lacks); the i16 pair difference is the exact pair sum, |x0*y0 + x1*y1| <= 2*128*127;
//  * Q4_0/Q5_0 weights are taken unsigned (q = x + 2^shift), as in the batch tiles:
//    quads(y, q) - 2^shift * quads(y, 1), the second term once per activation block.
#ifdef __wasm_relaxed_simd__

// per activation block: Q8_0 {y+ 0-15, y+ 16-31, y- 0-15, y- 16-31};
// Q4_0/Q5_0 {y 0-15, y 16-31, 2^shift * quads(y, 1) of both halves}
static void pyllm_gemv_act(enum ggml_type type, const block_q8_0 * y, int64_t nb, v128_t * act, float * dy) {
    const v128_t zero = wasm_i8x16_splat(0), one = wasm_i8x16_splat(1);
    const int shift = type == GGML_TYPE_Q4_0 ? 3 : 4;
    for (int64_t ib = 0; ib < nb; ib++) {
        const v128_t y0 = wasm_v128_load(y[ib].qs), y1 = wasm_v128_load(y[ib].qs + 16);
        v128_t * a = act + 4 * ib;
        if (type == GGML_TYPE_Q8_0) {  // y >= -127 (the q8_0 quantizer's range): -y fits
            a[0] = wasm_i8x16_max(y0, zero);
            a[1] = wasm_i8x16_max(y1, zero);
            a[2] = wasm_i8x16_max(wasm_i8x16_neg(y0), zero);
            a[3] = wasm_i8x16_max(wasm_i8x16_neg(y1), zero);
        } else {
            a[0] = y0;
            a[1] = y1;
            a[2] = wasm_i32x4_shl(pyllm_quads(y0, one), shift);
            a[3] = wasm_i32x4_shl(pyllm_quads(y1, one), shift);
        }
        dy[ib] = GGML_CPU_FP16_TO_FP32(y[ib].d);
    }
}

// one weight row against the prepared activation column. One row per pass: sharing the
// activation loads between 2 or 4 rows measured 1.7-2x slower under V8 (Node 20) than this.
static inline void pyllm_gemv_q0_row(enum ggml_type type, const uint8_t * row, int64_t nb, const v128_t * act,
                                     const float * dy, float * out) {
    // the i16 pair sums to quads by i32x4.dot with ones: V8 compiles extadd_pairwise to the
    // same pmaddwd, but against a constant whose address it reloads every time
    const v128_t ones = wasm_i16x8_splat(1);
    v128_t lo = wasm_f32x4_splat(0.0f), hi = lo;
    for (int64_t ib = 0; ib < nb; ib++) {
        const v128_t * a = act + 4 * ib;
        v128_t x0, x1, l, h;
        float dx;
        if (type == GGML_TYPE_Q8_0) {
            const block_q8_0 * b = (const block_q8_0 *) row + ib;
            x0 = wasm_v128_load(b->qs);
            x1 = wasm_v128_load(b->qs + 16);
            dx = GGML_CPU_FP16_TO_FP32(b->d);
            l = wasm_i32x4_dot_i16x8(
                wasm_i16x8_sub(pyllm_dot_i8_i7_pairs(x0, a[0]), pyllm_dot_i8_i7_pairs(x0, a[2])), ones);
            h = wasm_i32x4_dot_i16x8(
                wasm_i16x8_sub(pyllm_dot_i8_i7_pairs(x1, a[1]), pyllm_dot_i8_i7_pairs(x1, a[3])), ones);
        } else {
            dx = pyllm_block_q0_unsigned(type, row, ib, &x0, &x1);
            l = wasm_i32x4_sub(wasm_i32x4_dot_i16x8(pyllm_dot_i8_i7_pairs(a[0], x0), ones), a[2]);
            h = wasm_i32x4_sub(wasm_i32x4_dot_i16x8(pyllm_dot_i8_i7_pairs(a[1], x1), ones), a[3]);
        }
        pyllm_acc_q0_lanes(&lo, &hi, dx * dy[ib], l, h);
    }
    *out = pyllm_hsum_float_8(lo, hi);
}

// C[i] = row i of A (m rows of nb blocks, row_bytes apart) . the Q8_0 column y; this
// thread's share (ith of nth): pyllm_thread_rows. False (ggml's vec_dot does it) without memory.
static bool pyllm_gemv_q0_q8_0(enum ggml_type type, int64_t m, int64_t nb, const uint8_t * A, size_t row_bytes,
                               const block_q8_0 * y, float * C, int ith, int nth) {
    v128_t * act = (v128_t *) pyllm_scratch((sizeof(v128_t) * 4 + sizeof(float)) * (size_t) nb);
    if (!act) {
        return false;
    }
    float * dy = (float *) (act + 4 * nb);
    pyllm_gemv_act(type, y, nb, act, dy);
    int64_t i0, i1;
    pyllm_thread_rows(m, ith, nth, &i0, &i1);
    for (int64_t i = i0; i < i1; i++) {
        if (type == GGML_TYPE_Q8_0) {  // one loop per type (the type test out of the loop)
            pyllm_gemv_q0_row(GGML_TYPE_Q8_0, A + i * row_bytes, nb, act, dy, C + i);
        } else if (type == GGML_TYPE_Q5_0) {
            pyllm_gemv_q0_row(GGML_TYPE_Q5_0, A + i * row_bytes, nb, act, dy, C + i);
        } else {
            pyllm_gemv_q0_row(GGML_TYPE_Q4_0, A + i * row_bytes, nb, act, dy, C + i);
        }
    }
    return true;
}

// Q6_K x Q8_K: one weight row against the activation column, vec_dot's arithmetic
// (quants_x86.c: per super-block eight exact int32 lanes, acc = fma(d_y * d_x, float(lane),
// acc), hsum_float_8), 16 bytes of ql, ql + 32 and qh at a time: values 16t..16t+15 of the
// four 32-value groups of a 128-value half, so one vector of lanes per t (t = 0: the low
// lanes, 1: the high lanes) and one scale per group. Each scale is splatted from a
// sign-extended copy in memory (one v128.load16_splat, where an i8 load + i16x8.splat
// is three x86 instructions under V8: measured 5% faster).
static void pyllm_gemv_q6_K_row(const block_q6_K * x, const block_q8_K * y, int nb, float * out) {
    v128_t acc_lo = wasm_f32x4_splat(0.0f), acc_hi = acc_lo;
    for (int i = 0; i < nb; ++i) {
        const v128_t scv = wasm_v128_load(x[i].scales);
        const v128_t sc_lo = wasm_i16x8_extend_low_i8x16(scv), sc_hi = wasm_i16x8_extend_high_i8x16(scv);
        int16_t sc16[16];
        wasm_v128_store(sc16, sc_lo);
        wasm_v128_store(sc16 + 8, sc_hi);
        // the -32 offset of the 6-bit values, moved to the q8 sums: -32 * (bsums . scales)
        v128_t sum[2] = {
            wasm_i32x4_sub(wasm_i32x4_splat(0), wasm_i32x4_shl(wasm_i32x4_dot_i16x8(wasm_v128_load(y[i].bsums), sc_lo), 5)),
            wasm_i32x4_sub(wasm_i32x4_splat(0),
                           wasm_i32x4_shl(wasm_i32x4_dot_i16x8(wasm_v128_load(y[i].bsums + 8), sc_hi), 5))};
        for (int j = 0; j < QK_K / 128; ++j) {
            const uint8_t * ql = x[i].ql + 64 * j, * qh = x[i].qh + 32 * j;
            const int8_t * q8 = y[i].qs + 128 * j;
            for (int t = 0; t < 2; ++t) {
                v128_t g[4];
                pyllm_q6_K_unpack16(wasm_v128_load(ql + 16 * t), wasm_v128_load(ql + 32 + 16 * t),
                                    wasm_v128_load(qh + 16 * t), g);
                for (int k = 0; k < 4; ++k) {
                    // the i16 pair sums (|pair| <= 2 * 63 * 128) times the group's scale, as
                    // x86's maddubs then madd(scale)
                    sum[t] = wasm_i32x4_add(sum[t], wasm_i32x4_dot_i16x8(
                        pyllm_dot_i8_i7_pairs(wasm_v128_load(q8 + 32 * k + 16 * t), g[k]),
                        wasm_v128_load16_splat(sc16 + 8 * j + 2 * k + t)));
                }
            }
        }
        const v128_t dv = wasm_f32x4_splat(y[i].d * GGML_CPU_FP16_TO_FP32(x[i].d));
        acc_lo = pyllm_fma_f32x4(dv, wasm_f32x4_convert_i32x4(sum[0]), acc_lo);
        acc_hi = pyllm_fma_f32x4(dv, wasm_f32x4_convert_i32x4(sum[1]), acc_hi);
    }
    *out = pyllm_hsum_float_8(acc_lo, acc_hi);
}

// C[i] = row i of A (m rows of nb super-blocks, lda blocks apart) . the Q8_K column y;
// this thread's share (ith of nth): pyllm_thread_rows
static void pyllm_gemv_q6_K_q8_K(int64_t m, int nb, const block_q6_K * A, int64_t lda, const block_q8_K * y, float * C,
                                 int ith, int nth) {
    int64_t i0, i1;
    pyllm_thread_rows(m, ith, nth, &i0, &i1);
    for (int64_t i = i0; i < i1; i++) {
        pyllm_gemv_q6_K_row(A + i * lda, y, nb, C + i);
    }
}
#endif  // __wasm_relaxed_simd__
