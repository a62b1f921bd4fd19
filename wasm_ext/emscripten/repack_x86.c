// pyllm: the repacked mat-mul kernels of the native x86 build, for wasm (appended to
// ggml-cpu/arch/wasm/quants.c by wasm_ext/build_wasm.py, which also makes wasm repack
// exactly the tensors x86 repacks: Q4_0 -> q4_0_8x8, Q4_K -> q4_K_8x8 and, as the AVX-512
// build does, Q2_K -> q2_K_8x8 when rows % 8 == 0; not IQ4_NL and MXFP4, which x86 repacks too).
//
// x86's gemv/gemm (arch/x86/repack.cpp) compute each output (row, column) as: per block,
// the exact integer dot product of the block (Q4_K: sum over sub-blocks of scale * dot, and
// sum of min * bsum), then acc = fma(float(int), d_col * d_row, acc) (Q4_K: a second
// accumulator for the mins, and acc - acc_min at the end; its gemm does the fma after every
// 64 elements instead of every 256). The 8-column interleave and
// the 4-row tiles only decide what is computed together. Here a column is computed for a
// tile's rows at once (one row per vector lane), with the same float steps; the relaxed-SIMD
// build's Q4_K gemv and gemm put the 8 columns in lanes instead (below), same float steps.
//
// Activations for 4-row tiles: x86's ggml_quantize_mat_q8_0_4x8 / q8_K_4x8 quantize each
// row as quantize_row_q8_0 / q8_K do (same scale, same rounding); here they are written as
// four consecutive plain blocks per block index (the same bytes per tile as x86's
// interleaved layout, read back only by the gemm below).

typedef struct { ggml_half d[8]; uint8_t qs[128]; } pyllm_block_q4_0x8;
typedef struct { ggml_half d[8]; ggml_half dmin[8]; uint8_t scales[96]; uint8_t qs[1024]; } pyllm_block_q4_Kx8;

static inline v128_t pyllm_dot_i8x16(v128_t a, v128_t b) {
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_i16x8_extend_low_i8x16(b)),
                          wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_i16x8_extend_high_i8x16(b)));
}

// two 8-byte chunks of an 8-column interleave (chunk i holds column i % 8)
static inline v128_t pyllm_chunks(const uint8_t * p0, const uint8_t * p1) {
    uint64_t lo, hi;
    memcpy(&lo, p0, 8);
    memcpy(&hi, p1, 8);
    return wasm_i64x2_make((int64_t) lo, (int64_t) hi);
}

void ggml_quantize_mat_q8_0_4x8(const float * GGML_RESTRICT x, void * GGML_RESTRICT vy, int64_t k) {
    block_q8_0 * y = (block_q8_0 *) vy;
    for (int64_t i = 0; i < k / QK8_0; i++) {
        for (int r = 0; r < 4; r++) {
            quantize_row_q8_0(x + r * k + i * QK8_0, &y[4 * i + r], QK8_0);
        }
    }
}

void ggml_quantize_mat_q8_K_4x8(const float * GGML_RESTRICT x, void * GGML_RESTRICT vy, int64_t k) {
    block_q8_K * y = (block_q8_K *) vy;
    for (int64_t i = 0; i < k / QK_K; i++) {
        for (int r = 0; r < 4; r++) {
            quantize_row_q8_K(x + r * k + i * QK_K, &y[4 * i + r], QK_K);
        }
    }
}

// the sum over 32 elements of nib (unsigned 0..15; elements 0-15, 16-31) times q8, as four
// int32 partial sums
static inline v128_t pyllm_dot_u4_q8(v128_t nib0, v128_t nib1, const int8_t * q8) {
#ifdef __wasm_relaxed_simd__
    return wasm_i32x4_add(pyllm_quads(wasm_v128_load(q8), nib0), pyllm_quads(wasm_v128_load(q8 + 16), nib1));
#else
    return wasm_i32x4_add(pyllm_dot_i8x16(nib0, wasm_v128_load(q8)), pyllm_dot_i8x16(nib1, wasm_v128_load(q8 + 16)));
#endif
}

// lanes r < R of a vector from R per-row values
static inline v128_t pyllm_i32_rows(const int32_t * v, const int R) {
    return R == 1 ? wasm_i32x4_splat(v[0]) : wasm_i32x4_make(v[0], v[1], v[2], v[3]);
}
static inline v128_t pyllm_f32_rows(const float * v, const int R) {
    return R == 1 ? wasm_f32x4_splat(v[0]) : wasm_f32x4_make(v[0], v[1], v[2], v[3]);
}

// Column c of 8 against R rows (R = 1: gemv, 4: a gemm tile), one row per vector lane: row r's
// block ib is a[ib * astride + r]; out[r * ostride]. The per-lane arithmetic is x86's
// per-(row, column) arithmetic above; the column's weights are unpacked once for R rows.
static inline __attribute__((always_inline)) void pyllm_q4_0x8_rows(const pyllm_block_q4_0x8 * b, int c,
                                                                    const block_q8_0 * a, int astride, int nb,
                                                                    float * out, size_t ostride, const int R) {
    const v128_t m4 = wasm_i8x16_splat(0x0F), eight = wasm_i8x16_splat(8), flip = wasm_i8x16_splat((char) 0x88);
    v128_t acc = wasm_f32x4_splat(0.0f);
    for (int ib = 0; ib < nb; ib++) {
        // repacking XORed each byte with 0x88; undo it and take nibbles as in block_q4_0
        const v128_t v = wasm_v128_xor(pyllm_chunks(b[ib].qs + c * 8, b[ib].qs + 64 + c * 8), flip);
        const v128_t lo = wasm_i8x16_sub(wasm_v128_and(v, m4), eight);
        const v128_t hi = wasm_i8x16_sub(wasm_u8x16_shr(v, 4), eight);
        const float dc = GGML_CPU_FP16_TO_FP32(b[ib].d[c]);
        int32_t isum[4];
        float d[4];
        for (int r = 0; r < R; r++) {
            const block_q8_0 * ab = a + ib * astride + r;
            v128_t s_lo, s_hi;
            pyllm_quad_sums(lo, hi, (const int8_t *) ab->qs, &s_lo, &s_hi);
            isum[r] = pyllm_hsum_i32x4(wasm_i32x4_add(s_lo, s_hi));
            d[r] = dc * GGML_CPU_FP16_TO_FP32(ab->d);
        }
        acc = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(pyllm_i32_rows(isum, R)), pyllm_f32_rows(d, R), acc);
    }
    float res[4];
    wasm_v128_store(res, acc);
    for (int r = 0; r < R; r++) out[r * ostride] = res[r];
}

// per_chunk: x86's gemm (4-row tiles) accumulates in floats after every 64 elements, its
// gemv after every super-block of 256. Rows, lanes and out as in pyllm_q4_0x8_rows.
static inline __attribute__((always_inline)) void pyllm_q4_Kx8_rows(const pyllm_block_q4_Kx8 * b, int c,
                                                                    const block_q8_K * a, int astride, int nb,
                                                                    bool per_chunk, float * out, size_t ostride,
                                                                    const int R) {
    const v128_t m4 = wasm_i8x16_splat(0x0F);
    v128_t acc = wasm_f32x4_splat(0.0f), acc_min = acc;
    for (int ib = 0; ib < nb; ib++) {
        const uint8_t * qs = b[ib].qs;
        const float dc = GGML_CPU_FP16_TO_FP32(b[ib].d[c]), dminc = GGML_CPU_FP16_TO_FP32(b[ib].dmin[c]);
        float d[4], dmin[4];
        for (int r = 0; r < R; r++) {
            d[r] = dc * a[ib * astride + r].d;
            dmin[r] = dminc * a[ib * astride + r].d;
        }
        int32_t iacc[4] = {0, 0, 0, 0}, imin[4] = {0, 0, 0, 0};
        for (int j = 0; j < 4; j++) {  // 64 elements: low nibbles of 32 bytes, then their high nibbles
            const v128_t b0 = pyllm_chunks(qs + (4 * j) * 64 + c * 8, qs + (4 * j + 1) * 64 + c * 8);
            const v128_t b1 = pyllm_chunks(qs + (4 * j + 2) * 64 + c * 8, qs + (4 * j + 3) * 64 + c * 8);
            const v128_t lo0 = wasm_v128_and(b0, m4), lo1 = wasm_v128_and(b1, m4);
            const v128_t hi0 = wasm_u8x16_shr(b0, 4), hi1 = wasm_u8x16_shr(b1, 4);
            int sc_lo, m_lo, sc_hi, m_hi;
            pyllm_scale_min_k4(c, b[ib].scales + (2 * j) * 12, &sc_lo, &m_lo);
            pyllm_scale_min_k4(c, b[ib].scales + (2 * j + 1) * 12, &sc_hi, &m_hi);
            for (int r = 0; r < R; r++) {
                const block_q8_K * ab = a + ib * astride + r;
                const int8_t * q8 = ab->qs + 64 * j;
                iacc[r] += pyllm_hsum_i32x4(wasm_i32x4_add(
                    wasm_i32x4_mul(pyllm_dot_u4_q8(lo0, lo1, q8), wasm_i32x4_splat(sc_lo)),
                    wasm_i32x4_mul(pyllm_dot_u4_q8(hi0, hi1, q8 + 32), wasm_i32x4_splat(sc_hi))));
                imin[r] += m_lo * (ab->bsums[4 * j] + ab->bsums[4 * j + 1]) +
                           m_hi * (ab->bsums[4 * j + 2] + ab->bsums[4 * j + 3]);
            }
            if (per_chunk) {
                acc = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(pyllm_i32_rows(iacc, R)), pyllm_f32_rows(d, R), acc);
                acc_min = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(pyllm_i32_rows(imin, R)), pyllm_f32_rows(dmin, R),
                                          acc_min);
                for (int r = 0; r < R; r++) iacc[r] = imin[r] = 0;
            }
        }
        if (!per_chunk) {
            acc = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(pyllm_i32_rows(iacc, R)), pyllm_f32_rows(d, R), acc);
            acc_min = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(pyllm_i32_rows(imin, R)), pyllm_f32_rows(dmin, R),
                                      acc_min);
        }
    }
    float res[4];
    wasm_v128_store(res, wasm_f32x4_sub(acc, acc_min));
    for (int r = 0; r < R; r++) out[r * ostride] = res[r];
}

void ggml_gemv_q4_0_8x8_q8_0(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx,
                             const void * GGML_RESTRICT vy, int nr, int nc) {
    UNUSED(bs);
    const int nb = n / QK8_0;
    for (int y = 0; y < nr; y++) {
        const block_q8_0 * a = (const block_q8_0 *) vy + y * nb;
        for (int x = 0; x < nc / 8; x++) {
            const pyllm_block_q4_0x8 * b = (const pyllm_block_q4_0x8 *) vx + x * nb;
            for (int c = 0; c < 8; c++) pyllm_q4_0x8_rows(b, c, a, 1, nb, &s[y * nr + x * 8 + c], 0, 1);
        }
    }
}

void ggml_gemm_q4_0_8x8_q8_0(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx,
                             const void * GGML_RESTRICT vy, int nr, int nc) {
    const int nb = n / QK8_0;
    for (int y = 0; y < nr / 4; y++) {
        const block_q8_0 * tile = (const block_q8_0 *) vy + (size_t) y * nb * 4;
        for (int x = 0; x < nc / 8; x++) {
            const pyllm_block_q4_0x8 * b = (const pyllm_block_q4_0x8 *) vx + x * nb;
            for (int c = 0; c < 8; c++) pyllm_q4_0x8_rows(b, c, tile, 4, nb, &s[(y * 4) * bs + x * 8 + c], bs, 4);
        }
    }
}

#ifdef __wasm_relaxed_simd__
// The Q4_K gemv with the 8 columns of a repacked group in vector lanes (x86's own layout,
// as its AVX2 gemv does), where pyllm_q4_Kx8_rows puts rows in lanes (one lane of four used
// in a gemv, and per column its scales, mins and a horizontal sum). Per output the same
// integers (exact in any order) and the same two fmas per super-block as above. (The gemm,
// pyllm_gemm_q4_Kx8 below, runs this layout for a tile's 4 rows at once: one gemv per row
// would decode each weight four times.)

// one sub-block's 6-bit scales (bytes 0-7) and mins (bytes 8-15) of the 8 columns, from
// the 12 bytes the repacking writes per sub-block (get_scale_min_k4's layout with column c
// in place of sub-block j, as pyllm_scale_min_k4 reads it)
static inline v128_t pyllm_q4_Kx8_scales(const uint8_t * q) {
    const v128_t v = wasm_v128_load(q);  // bytes 12-15 unused (still inside the block)
    const v128_t a = wasm_i8x16_swizzle(v, wasm_u8x16_make(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const v128_t b = wasm_i8x16_swizzle(v, wasm_u8x16_make(16, 16, 16, 16, 0, 1, 2, 3, 16, 16, 16, 16, 4, 5, 6, 7));
    const v128_t low = wasm_v128_or(
        wasm_v128_and(a, wasm_u8x16_make(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0)),
        wasm_v128_and(wasm_u16x8_shr(a, 4), wasm_u8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15)));
    // (u16 shifts, exact after the masks: no bit crosses into the neighbouring byte)
    return wasm_v128_or(low, wasm_u16x8_shr(wasm_v128_and(b, wasm_i8x16_splat((char) 0xC0)), 2));
}

// i16 lanes: bytes a, a, b, b, c, c, d, d of v, zero-extended (swizzle indices >= 16 give 0)
#define PYLLM_U8_TO_I16(v, a, b, c, d) \
    wasm_i8x16_swizzle(v, wasm_u8x16_make(a, 16, a, 16, b, 16, b, 16, c, 16, c, 16, d, 16, d, 16))

// 8 columns (a repacked group of nb super-blocks) . the Q8_K activation row a -> out[0..7]
static void pyllm_gemv_q4_Kx8(const pyllm_block_q4_Kx8 * b, const block_q8_K * a, int nb, float * out) {
    const v128_t m4 = wasm_i8x16_splat(0x0F), zero = wasm_i32x4_splat(0);
    v128_t acc[2], acc_min[2];
    acc[0] = acc[1] = acc_min[0] = acc_min[1] = wasm_f32x4_splat(0.0f);
    for (int ib = 0; ib < nb; ib++) {
        const block_q8_K * ab = a + ib;
        const int8_t * q8 = ab->qs;
        const uint8_t * qs = b[ib].qs;
        const ggml_half * d = b[ib].d, * dmin = b[ib].dmin;
        const v128_t ad = wasm_f32x4_splat(ab->d);
        const v128_t d03 = wasm_f32x4_mul(wasm_f32x4_make(GGML_CPU_FP16_TO_FP32(d[0]), GGML_CPU_FP16_TO_FP32(d[1]),
                                                          GGML_CPU_FP16_TO_FP32(d[2]), GGML_CPU_FP16_TO_FP32(d[3])), ad);
        const v128_t d47 = wasm_f32x4_mul(wasm_f32x4_make(GGML_CPU_FP16_TO_FP32(d[4]), GGML_CPU_FP16_TO_FP32(d[5]),
                                                          GGML_CPU_FP16_TO_FP32(d[6]), GGML_CPU_FP16_TO_FP32(d[7])), ad);
        const v128_t m03 = wasm_f32x4_mul(wasm_f32x4_make(GGML_CPU_FP16_TO_FP32(dmin[0]), GGML_CPU_FP16_TO_FP32(dmin[1]),
                                                          GGML_CPU_FP16_TO_FP32(dmin[2]), GGML_CPU_FP16_TO_FP32(dmin[3])), ad);
        const v128_t m47 = wasm_f32x4_mul(wasm_f32x4_make(GGML_CPU_FP16_TO_FP32(dmin[4]), GGML_CPU_FP16_TO_FP32(dmin[5]),
                                                          GGML_CPU_FP16_TO_FP32(dmin[6]), GGML_CPU_FP16_TO_FP32(dmin[7])), ad);
        v128_t i03 = zero, i47 = zero, mn03 = zero, mn47 = zero;
        for (int j = 0; j < 4; j++) {  // sub-blocks 2j (low nibbles) and 2j+1 (high nibbles)
            const v128_t sm_lo = pyllm_q4_Kx8_scales(b[ib].scales + 24 * j);
            const v128_t sm_hi = pyllm_q4_Kx8_scales(b[ib].scales + 24 * j + 12);
            // columns 2p, 2p+1: chunk k of a column is 8 bytes at qs + 64k + 8c, so one load
            // holds both; its low nibbles are elements 64j + 8t + 0..7 (k = 4j + t), its high
            // nibbles those 32 further, against the activation's 8 bytes duplicated. The i16
            // pair sums of a sub-block's four chunks stay below 4 * 2 * 15 * 128.
            // (p and t unrolled in full: the swizzle masks below become constants, which V8
            // otherwise rebuilds lane by lane; a u16 shift + mask, as V8 compiles an i8x16
            // shift to ~5 instructions)
            v128_t iacc[4];  // i32 lanes: column 2p, 2p, 2p+1, 2p+1
#pragma clang loop unroll(full)
            for (int p = 0; p < 4; p++) {
                v128_t pl = wasm_i16x8_splat(0), ph = pl;
#pragma clang loop unroll(full)
                for (int t = 0; t < 4; t++) {
                    const v128_t v = wasm_v128_load(qs + (4 * j + t) * 64 + 16 * p);
                    pl = wasm_i16x8_add(pl, pyllm_dot_i8_i7_pairs(wasm_v128_load64_splat(q8 + 64 * j + 8 * t),
                                                                  wasm_v128_and(v, m4)));
                    ph = wasm_i16x8_add(ph, pyllm_dot_i8_i7_pairs(wasm_v128_load64_splat(q8 + 64 * j + 32 + 8 * t),
                                                                  wasm_v128_and(wasm_u16x8_shr(v, 4), m4)));
                }
                iacc[p] = wasm_i32x4_add(
                    wasm_i32x4_dot_i16x8(pl, PYLLM_U8_TO_I16(sm_lo, 2 * p, 2 * p, 2 * p + 1, 2 * p + 1)),
                    wasm_i32x4_dot_i16x8(ph, PYLLM_U8_TO_I16(sm_hi, 2 * p, 2 * p, 2 * p + 1, 2 * p + 1)));
            }
            i03 = wasm_i32x4_add(i03, wasm_i32x4_add(wasm_i32x4_shuffle(iacc[0], iacc[1], 0, 2, 4, 6),
                                                     wasm_i32x4_shuffle(iacc[0], iacc[1], 1, 3, 5, 7)));
            i47 = wasm_i32x4_add(i47, wasm_i32x4_add(wasm_i32x4_shuffle(iacc[2], iacc[3], 0, 2, 4, 6),
                                                     wasm_i32x4_shuffle(iacc[2], iacc[3], 1, 3, 5, 7)));
            // mins: column c gets min(c, k) * (bsums[2k] + bsums[2k+1]) for the sub-blocks k
            const v128_t bs_lo = wasm_v128_load32_splat(ab->bsums + 4 * j);
            const v128_t bs_hi = wasm_v128_load32_splat(ab->bsums + 4 * j + 2);
            mn03 = wasm_i32x4_add(mn03, wasm_i32x4_add(
                wasm_i32x4_dot_i16x8(PYLLM_U8_TO_I16(sm_lo, 8, 9, 10, 11), bs_lo),
                wasm_i32x4_dot_i16x8(PYLLM_U8_TO_I16(sm_hi, 8, 9, 10, 11), bs_hi)));
            mn47 = wasm_i32x4_add(mn47, wasm_i32x4_add(
                wasm_i32x4_dot_i16x8(PYLLM_U8_TO_I16(sm_lo, 12, 13, 14, 15), bs_lo),
                wasm_i32x4_dot_i16x8(PYLLM_U8_TO_I16(sm_hi, 12, 13, 14, 15), bs_hi)));
        }
        acc[0] = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(i03), d03, acc[0]);
        acc[1] = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(i47), d47, acc[1]);
        acc_min[0] = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(mn03), m03, acc_min[0]);
        acc_min[1] = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(mn47), m47, acc_min[1]);
    }
    wasm_v128_store(out, wasm_f32x4_sub(acc[0], acc_min[0]));
    wasm_v128_store(out + 4, wasm_f32x4_sub(acc[1], acc_min[1]));
}

// The Q4_K gemm tile in the same layout: 8 columns x the 4 activation rows of a tile
// (row r's block ib is a[4 * ib + r]) -> out[r * ostride + c]. Each 16-byte weight load
// (columns 2p, 2p+1, 8 elements each) is unpacked once and meets the 4 rows. Per output the
// same integers as above and x86's gemm float steps: both fmas after every 64 elements (j),
// where the gemv has them once per super-block. ~3x pyllm_q4_Kx8_rows's speed under V8
// (Node 20). The loops are unrolled in full: the swizzle masks become constants and the
// sums stay in locals (V8 spills some; measured: rolled loops are 1.25x slower, and 1 or 2
// rows per weight load instead of 4 run at the same speed).
static void pyllm_gemm_q4_Kx8(const pyllm_block_q4_Kx8 * b, const block_q8_K * a, int nb, float * out,
                              size_t ostride) {
    const v128_t m4 = wasm_i8x16_splat(0x0F);
    v128_t acc[4][2], acc_min[4][2];  // row r, columns 4h..4h+3
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = acc_min[r][0] = acc_min[r][1] = wasm_f32x4_splat(0.0f);
    for (int ib = 0; ib < nb; ib++) {
        const block_q8_K * ab = a + 4 * ib;
        const uint8_t * qs = b[ib].qs;
        const ggml_half * d = b[ib].d, * dmin = b[ib].dmin;
        const v128_t dc[2] = {
            wasm_f32x4_make(GGML_CPU_FP16_TO_FP32(d[0]), GGML_CPU_FP16_TO_FP32(d[1]), GGML_CPU_FP16_TO_FP32(d[2]),
                            GGML_CPU_FP16_TO_FP32(d[3])),
            wasm_f32x4_make(GGML_CPU_FP16_TO_FP32(d[4]), GGML_CPU_FP16_TO_FP32(d[5]), GGML_CPU_FP16_TO_FP32(d[6]),
                            GGML_CPU_FP16_TO_FP32(d[7]))};
        const v128_t mc[2] = {
            wasm_f32x4_make(GGML_CPU_FP16_TO_FP32(dmin[0]), GGML_CPU_FP16_TO_FP32(dmin[1]),
                            GGML_CPU_FP16_TO_FP32(dmin[2]), GGML_CPU_FP16_TO_FP32(dmin[3])),
            wasm_f32x4_make(GGML_CPU_FP16_TO_FP32(dmin[4]), GGML_CPU_FP16_TO_FP32(dmin[5]),
                            GGML_CPU_FP16_TO_FP32(dmin[6]), GGML_CPU_FP16_TO_FP32(dmin[7]))};
        for (int j = 0; j < 4; j++) {  // sub-blocks 2j (low nibbles) and 2j+1 (high nibbles)
            const v128_t sm_lo = pyllm_q4_Kx8_scales(b[ib].scales + 24 * j);
            const v128_t sm_hi = pyllm_q4_Kx8_scales(b[ib].scales + 24 * j + 12);
#pragma clang loop unroll(full)
            for (int h = 0; h < 2; h++) {  // columns 4h..4h+3
                v128_t isum[4];  // row r: i32 lanes column 4h..4h+3
#pragma clang loop unroll(full)
                for (int p = 2 * h; p < 2 * h + 2; p++) {  // columns 2p, 2p+1
                    v128_t pl[4], ph[4];  // row r's i16 pair sums, as in the gemv (|sum| <= 4*2*15*128)
                    for (int r = 0; r < 4; r++) pl[r] = ph[r] = wasm_i16x8_splat(0);
#pragma clang loop unroll(full)
                    for (int t = 0; t < 4; t++) {
                        const v128_t v = wasm_v128_load(qs + (4 * j + t) * 64 + 16 * p);
                        // (u16 shift + mask: V8 rebuilds the mask of an i8 shift every time)
                        const v128_t lo = wasm_v128_and(v, m4), hi = wasm_v128_and(wasm_u16x8_shr(v, 4), m4);
                        for (int r = 0; r < 4; r++) {
                            const int8_t * q8 = ab[r].qs + 64 * j + 8 * t;
                            pl[r] = wasm_i16x8_add(pl[r], pyllm_dot_i8_i7_pairs(wasm_v128_load64_splat(q8), lo));
                            ph[r] = wasm_i16x8_add(ph[r], pyllm_dot_i8_i7_pairs(wasm_v128_load64_splat(q8 + 32), hi));
                        }
                    }
                    const v128_t s_lo = PYLLM_U8_TO_I16(sm_lo, 2 * p, 2 * p, 2 * p + 1, 2 * p + 1);
                    const v128_t s_hi = PYLLM_U8_TO_I16(sm_hi, 2 * p, 2 * p, 2 * p + 1, 2 * p + 1);
                    for (int r = 0; r < 4; r++) {  // i32 lanes: column 2p, 2p, 2p+1, 2p+1
                        const v128_t s = wasm_i32x4_add(wasm_i32x4_dot_i16x8(pl[r], s_lo), wasm_i32x4_dot_i16x8(ph[r], s_hi));
                        isum[r] = p == 2 * h ? s : wasm_i32x4_add(wasm_i32x4_shuffle(isum[r], s, 0, 2, 4, 6),
                                                                  wasm_i32x4_shuffle(isum[r], s, 1, 3, 5, 7));
                    }
                }
                // mins: column c gets min(c, k) * (bsums[2k] + bsums[2k+1]) for the sub-blocks k
                const v128_t m_lo = PYLLM_U8_TO_I16(sm_lo, 8 + 4 * h, 9 + 4 * h, 10 + 4 * h, 11 + 4 * h);
                const v128_t m_hi = PYLLM_U8_TO_I16(sm_hi, 8 + 4 * h, 9 + 4 * h, 10 + 4 * h, 11 + 4 * h);
                for (int r = 0; r < 4; r++) {
                    const v128_t ad = wasm_f32x4_splat(ab[r].d);
                    const v128_t mn = wasm_i32x4_add(
                        wasm_i32x4_dot_i16x8(m_lo, wasm_v128_load32_splat(ab[r].bsums + 4 * j)),
                        wasm_i32x4_dot_i16x8(m_hi, wasm_v128_load32_splat(ab[r].bsums + 4 * j + 2)));
                    acc[r][h] = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(isum[r]), wasm_f32x4_mul(dc[h], ad), acc[r][h]);
                    acc_min[r][h] = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(mn), wasm_f32x4_mul(mc[h], ad),
                                                    acc_min[r][h]);
                }
            }
        }
    }
    for (int r = 0; r < 4; r++) {
        wasm_v128_store(out + r * ostride, wasm_f32x4_sub(acc[r][0], acc_min[r][0]));
        wasm_v128_store(out + r * ostride + 4, wasm_f32x4_sub(acc[r][1], acc_min[r][1]));
    }
}
#endif

void ggml_gemv_q4_K_8x8_q8_K(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx,
                             const void * GGML_RESTRICT vy, int nr, int nc) {
    UNUSED(bs);
    const int nb = n / QK_K;
    for (int y = 0; y < nr; y++) {
        const block_q8_K * a = (const block_q8_K *) vy + y * nb;
        for (int x = 0; x < nc / 8; x++) {
            const pyllm_block_q4_Kx8 * b = (const pyllm_block_q4_Kx8 *) vx + x * nb;
#ifdef __wasm_relaxed_simd__
            pyllm_gemv_q4_Kx8(b, a, nb, &s[y * nr + x * 8]);
#else
            for (int c = 0; c < 8; c++) pyllm_q4_Kx8_rows(b, c, a, 1, nb, false, &s[y * nr + x * 8 + c], 0, 1);
#endif
        }
    }
}

void ggml_gemm_q4_K_8x8_q8_K(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx,
                             const void * GGML_RESTRICT vy, int nr, int nc) {
    const int nb = n / QK_K;
    for (int y = 0; y < nr / 4; y++) {
        const block_q8_K * tile = (const block_q8_K *) vy + (size_t) y * nb * 4;
        for (int x = 0; x < nc / 8; x++) {
            const pyllm_block_q4_Kx8 * b = (const pyllm_block_q4_Kx8 *) vx + x * nb;
#ifdef __wasm_relaxed_simd__
            pyllm_gemm_q4_Kx8(b, tile, nb, &s[(y * 4) * bs + x * 8], bs);
#else
            for (int c = 0; c < 8; c++) pyllm_q4_Kx8_rows(b, c, tile, 4, nb, true, &s[(y * 4) * bs + x * 8 + c], bs, 4);
#endif
        }
    }
}

// ---- Q2_K repacked (q2_K_8x8: x86's AVX-512 build repacks Q2_K when rows % 8 == 0) ----------
// Per output (row, column), the super-block's exact integer sums for the scales (I) and the
// mins (M, min * bsums), then acc = fma(float(I), d_col * d_row, acc), acc_min =
// fma(float(M), dmin_col * d_row, acc_min), and acc - acc_min at the end: its gemv once per
// super-block, its gemm after every 128 elements (arch/x86/repack.cpp, the AVX-512 and AVX2
// paths alike). Here each column of a group is taken back out of the interleave as a plain
// block_q2_K and its integer sums formed as in quants_x86.c; rows in lanes as above.

typedef struct { ggml_half d[8]; ggml_half dmin[8]; uint8_t scales[128]; uint8_t qs[512]; } pyllm_block_q2_Kx8;

// column c of a repacked super-block (make_block_q2_Kx8: 8-byte chunk k of column c at
// chunk 8k + c; scale byte s of column c at 16 * (s / 2) + 2c + s % 2)
static inline void pyllm_q2_Kx8_column(const pyllm_block_q2_Kx8 * b, int c, block_q2_K * out) {
    out->d = b->d[c];
    out->dmin = b->dmin[c];
    for (int k = 0; k < 8; k++) memcpy(out->qs + 8 * k, b->qs + (8 * k + c) * 8, 8);
    for (int s = 0; s < 16; s++) out->scales[s] = b->scales[16 * (s / 2) + 2 * c + s % 2];
}

// per_half: the gemm's steps (after every 128 elements), else the gemv's. Rows, lanes and
// out as in pyllm_q4_0x8_rows.
static inline __attribute__((always_inline)) void pyllm_q2_Kx8_rows(const pyllm_block_q2_Kx8 * b, int c,
                                                                    const block_q8_K * a, int astride, int nb,
                                                                    bool per_half, float * out, size_t ostride,
                                                                    const int R) {
    v128_t acc = wasm_f32x4_splat(0.0f), acc_min = acc;
    for (int ib = 0; ib < nb; ib++) {
        block_q2_K plain;
        pyllm_q2_Kx8_column(&b[ib], c, &plain);
        pyllm_kq_block kb;
        pyllm_kq_unpack(GGML_TYPE_Q2_K, (const uint8_t *) &plain, 0, &kb);
        float d[4], dmin[4];
        int32_t isum[2][4], imin[2][4];  // per half (128 elements), per row
        for (int r = 0; r < R; r++) {
            const block_q8_K * ab = a + ib * astride + r;
            d[r] = kb.d * ab->d;
            dmin[r] = kb.dmin * ab->d;
            v128_t lo, hi;
            for (int j = 0; j < 2; j++) {
                pyllm_kq_lanes(GGML_TYPE_Q2_K, &kb, ab->qs, 4 * j, 4 * j + 4, &lo, &hi);
                isum[j][r] = pyllm_hsum_i32x4(wasm_i32x4_add(lo, hi));
            }
            pyllm_kq_min_lanes(GGML_TYPE_Q2_K, &kb, ab, &lo, &hi);  // lo: sub-blocks 0-7 (half 0), hi: 8-15
            imin[0][r] = pyllm_hsum_i32x4(lo);
            imin[1][r] = pyllm_hsum_i32x4(hi);
        }
        if (!per_half) {
            for (int r = 0; r < R; r++) {
                isum[0][r] += isum[1][r];
                imin[0][r] += imin[1][r];
            }
        }
        for (int j = 0; j < (per_half ? 2 : 1); j++) {
            acc = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(pyllm_i32_rows(isum[j], R)), pyllm_f32_rows(d, R), acc);
            acc_min = pyllm_fma_f32x4(wasm_f32x4_convert_i32x4(pyllm_i32_rows(imin[j], R)), pyllm_f32_rows(dmin, R),
                                      acc_min);
        }
    }
    float res[4];
    wasm_v128_store(res, wasm_f32x4_sub(acc, acc_min));
    for (int r = 0; r < R; r++) out[r * ostride] = res[r];
}

void ggml_gemv_q2_K_8x8_q8_K(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx,
                             const void * GGML_RESTRICT vy, int nr, int nc) {
    UNUSED(bs);
    const int nb = n / QK_K;
    for (int y = 0; y < nr; y++) {
        const block_q8_K * a = (const block_q8_K *) vy + y * nb;
        for (int x = 0; x < nc / 8; x++) {
            const pyllm_block_q2_Kx8 * b = (const pyllm_block_q2_Kx8 *) vx + x * nb;
            for (int c = 0; c < 8; c++) pyllm_q2_Kx8_rows(b, c, a, 1, nb, false, &s[y * nr + x * 8 + c], 0, 1);
        }
    }
}

void ggml_gemm_q2_K_8x8_q8_K(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx,
                             const void * GGML_RESTRICT vy, int nr, int nc) {
    const int nb = n / QK_K;
    for (int y = 0; y < nr / 4; y++) {
        const block_q8_K * tile = (const block_q8_K *) vy + (size_t) y * nb * 4;
        for (int x = 0; x < nc / 8; x++) {
            const pyllm_block_q2_Kx8 * b = (const pyllm_block_q2_Kx8 *) vx + x * nb;
            for (int c = 0; c < 8; c++) pyllm_q2_Kx8_rows(b, c, tile, 4, nb, true, &s[(y * 4) * bs + x * 8 + c], bs, 4);
        }
    }
}
