// Helpers of the mat-vec kernels (matvec.wgsl, matvec_multi.wgsl), pasted into them
// where they say `//#include matvec_lib` (app/backends/webgpu/kernels.py). They use the
// includer's TYPE, LANES, TN, TNMAX, EXACT, p (K, x_stride, x_scales, x_bsums, n), X, wraw() and
// repacked() (whether ggml repacks the weight being read),
// and float_exact.wgsl's mad() (the includer includes it and sets OB).
//#include f16_round

fn wd(second: bool, i: u32) -> u32 { return wbits(wraw(second, i)); }  // weight word i as bits
fn wh(second: bool, i: u32) -> vec2<f32> { return wh2(wraw(second, i)); }  // F16 weight: halves 2i, 2i+1

fn f16r(v: vec2<f32>) -> vec2<f32> { return unpack2x16float(pack_f16x2(v)); }
fn f16r1(v: f32) -> f32 { return unpack2x16float(pack_f16x2(vec2<f32>(v, 0.0))).x; }

fn funnel(a: u32, b: u32, odd: bool) -> u32 {  // 32 bits starting at a u16 boundary
  return select(a, (a >> 16u) | (b << 16u), odd);
}

fn f16at(second: bool, i: u32) -> f32 {  // the f16 at u16 index i
  let w = wd(second, i >> 1u);
  return unpack2x16float(select(w, w >> 16u, (i & 1u) == 1u)).x;
}

fn nib(q: u32) -> u32 {  // 4 nibbles (one per byte) minus 8, as packed i8
  return (((q & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
}

struct Blk { a: vec4<u32>, b: vec4<u32>, d: f32, m: f32 }   // 32 int8 weights as 8 quads, scale, min

fn bsz16() -> u32 {  // block size in u16
  if (TYPE == 2u) { return 9u; }
  if (TYPE == 3u) { return 10u; }
  if (TYPE == 6u) { return 11u; }
  if (TYPE == 7u) { return 12u; }
  return 17u;
}

fn hbits(e: u32) -> u32 {  // 4 bits -> bit 4 of each of 4 bytes
  return ((e & 1u) | ((e & 2u) << 7u) | ((e & 4u) << 14u) | ((e & 8u) << 21u)) << 4u;
}
fn sub16(v: u32) -> u32 { return ((v | 0x80808080u) - 0x10101010u) ^ 0x80808080u; }

fn load_blk(second: bool, s: u32) -> Blk {  // the block at u16 index s, as int8 quads
  let d = f16at(second, s);
  if (TYPE == 3u || TYPE == 7u) {  // Q4_1: d, m, qs[16]; Q5_1: d, m, qh (32 bits), qs[16]: unsigned values
    let m = f16at(second, s + 1u);
    var qs = s + 2u;
    var qh = 0u;
    if (TYPE == 7u) { qh = wd(second, (s >> 1u) + 1u); qs = s + 4u; }  // 24-byte blocks: word aligned
    let j = qs >> 1u;
    let odd = (qs & 1u) == 1u;
    let a0 = wd(second, j); let a1 = wd(second, j + 1u); let a2 = wd(second, j + 2u); let a3 = wd(second, j + 3u);
    var a4 = 0u;
    if (odd) { a4 = wd(second, j + 4u); }
    let w = vec4<u32>(funnel(a0, a1, odd), funnel(a1, a2, odd), funnel(a2, a3, odd), funnel(a3, a4, odd));
    let m4 = 0x0F0F0F0Fu;
    return Blk(vec4<u32>((w.x & m4) | hbits(qh & 0xFu), (w.y & m4) | hbits((qh >> 4u) & 0xFu),
                         (w.z & m4) | hbits((qh >> 8u) & 0xFu), (w.w & m4) | hbits((qh >> 12u) & 0xFu)),
               vec4<u32>(((w.x >> 4u) & m4) | hbits((qh >> 16u) & 0xFu), ((w.y >> 4u) & m4) | hbits((qh >> 20u) & 0xFu),
                         ((w.z >> 4u) & m4) | hbits((qh >> 24u) & 0xFu), ((w.w >> 4u) & m4) | hbits((qh >> 28u) & 0xFu)),
               d, m);
  }
  if (TYPE == 6u) {  // Q5_0: d, qh (32 high bits), 16 bytes of low nibbles
    let j = (s + 1u) >> 1u;
    let odd = ((s + 1u) & 1u) == 1u;
    let a0 = wd(second, j); let a1 = wd(second, j + 1u); let a2 = wd(second, j + 2u); let a3 = wd(second, j + 3u);
    let a4 = wd(second, j + 4u);
    var a5 = 0u;
    if (odd) { a5 = wd(second, j + 5u); }
    let qh = funnel(a0, a1, odd);
    let w = vec4<u32>(funnel(a1, a2, odd), funnel(a2, a3, odd), funnel(a3, a4, odd), funnel(a4, a5, odd));
    return Blk(vec4<u32>(sub16((w.x & 0x0F0F0F0Fu) | hbits(qh & 0xFu)), sub16((w.y & 0x0F0F0F0Fu) | hbits((qh >> 4u) & 0xFu)),
                         sub16((w.z & 0x0F0F0F0Fu) | hbits((qh >> 8u) & 0xFu)), sub16((w.w & 0x0F0F0F0Fu) | hbits((qh >> 12u) & 0xFu))),
               vec4<u32>(sub16(((w.x >> 4u) & 0x0F0F0F0Fu) | hbits((qh >> 16u) & 0xFu)),
                         sub16(((w.y >> 4u) & 0x0F0F0F0Fu) | hbits((qh >> 20u) & 0xFu)),
                         sub16(((w.z >> 4u) & 0x0F0F0F0Fu) | hbits((qh >> 24u) & 0xFu)),
                         sub16(((w.w >> 4u) & 0x0F0F0F0Fu) | hbits((qh >> 28u) & 0xFu))), d, 0.0);
  }
  let j = (s + 1u) >> 1u;
  let odd = ((s + 1u) & 1u) == 1u;
  let a0 = wd(second, j); let a1 = wd(second, j + 1u); let a2 = wd(second, j + 2u); let a3 = wd(second, j + 3u);
  var a4 = 0u;
  if (TYPE == 2u) {
    if (odd) { a4 = wd(second, j + 4u); }
    let w = vec4<u32>(funnel(a0, a1, odd), funnel(a1, a2, odd), funnel(a2, a3, odd), funnel(a3, a4, odd));
    return Blk(vec4<u32>(nib(w.x), nib(w.y), nib(w.z), nib(w.w)),
               vec4<u32>(nib(w.x >> 4u), nib(w.y >> 4u), nib(w.z >> 4u), nib(w.w >> 4u)), d, 0.0);
  }
  a4 = wd(second, j + 4u);
  let a5 = wd(second, j + 5u); let a6 = wd(second, j + 6u); let a7 = wd(second, j + 7u);
  var a8 = 0u;
  if (odd) { a8 = wd(second, j + 8u); }
  return Blk(vec4<u32>(funnel(a0, a1, odd), funnel(a1, a2, odd), funnel(a2, a3, odd), funnel(a3, a4, odd)),
             vec4<u32>(funnel(a4, a5, odd), funnel(a5, a6, odd), funnel(a6, a7, odd), funnel(a7, a8, odd)), d, 0.0);
}

fn blk_dot(q: Blk, xq: u32) -> i32 {
  return dot4I8Packed(q.a.x, X[xq]) + dot4I8Packed(q.a.y, X[xq + 1u]) + dot4I8Packed(q.a.z, X[xq + 2u])
       + dot4I8Packed(q.a.w, X[xq + 3u]) + dot4I8Packed(q.b.x, X[xq + 4u]) + dot4I8Packed(q.b.y, X[xq + 5u])
       + dot4I8Packed(q.b.z, X[xq + 6u]) + dot4I8Packed(q.b.w, X[xq + 7u]);
}

// K-quants (x as Q8_K, quantize_k.wgsl): the part of row r's dot product that one unit of
// 32 values u (block u / 8, unit u % 8) makes for token tt. Q4_K/Q5_K: 8 sub-blocks of 32
// with 6-bit scales and mins (ggml's get_scale_min_k4); Q6_K: 16 of 16 with int8 scales.
fn w32at16(second: bool, i: u32) -> u32 { return funnel(wd(second, i >> 1u), wd(second, (i >> 1u) + 1u), (i & 1u) == 1u); }
fn kbyte(second: bool, w0: u32, k: u32) -> u32 { return (wd(second, w0 + (k >> 2u)) >> ((k & 3u) * 8u)) & 0xFFu; }

fn kunit(second: bool, r: u32, u: u32, tt: u32) -> f32 {
  let nbk = p.K / 256u;
  let b = u / 8u;
  let j = u % 8u;
  let xq = tt * p.x_stride + b * 64u + j * 8u;
  let dy = bitcast<f32>(X[p.x_scales + tt * nbk + b]);
  if (TYPE == 12u || TYPE == 13u) {
    // Q4_K: 144-byte blocks (36 words): d, dmin, scales[12], qs[128]; Q5_K: 176 (44):
    // d, dmin, scales[12], qh[32] (bit j of byte l: value l of unit j), qs[128]
    var w0 = (r * nbk + b) * 36u;
    if (TYPE == 13u) { w0 = (r * nbk + b) * 44u; }
    let dd = unpack2x16float(wd(second, w0));
    var sc: u32;
    var m: u32;
    if (j < 4u) {
      sc = kbyte(second, w0 + 1u, j) & 63u;
      m = kbyte(second, w0 + 1u, j + 4u) & 63u;
    } else {
      sc = (kbyte(second, w0 + 1u, j + 4u) & 0xFu) | ((kbyte(second, w0 + 1u, j - 4u) >> 6u) << 4u);
      m = (kbyte(second, w0 + 1u, j + 4u) >> 4u) | ((kbyte(second, w0 + 1u, j) >> 6u) << 4u);
    }
    let sh = (j & 1u) * 4u;
    var sumi = 0;
    if (TYPE == 12u) {
      let qw = w0 + 4u + (j / 2u) * 8u;
      for (var i = 0u; i < 8u; i++) { sumi += dot4I8Packed((wd(second, qw + i) >> sh) & 0x0F0F0F0Fu, X[xq + i]); }
    } else {
      let qw = w0 + 12u + (j / 2u) * 8u;
      for (var i = 0u; i < 8u; i++) {
        let q = ((wd(second, qw + i) >> sh) & 0x0F0F0F0Fu) | (((wd(second, w0 + 4u + i) >> j) & 0x01010101u) << 4u);
        sumi += dot4I8Packed(q, X[xq + i]);
      }
    }
    let bs = p.x_bsums + (tt * nbk + b) * 16u + 2u * j;
    let bsum = bitcast<i32>(X[bs]) + bitcast<i32>(X[bs + 1u]);
    return dy * (dd.x * f32(i32(sc) * sumi) - dd.y * f32(i32(m) * bsum));
  }
  // Q6_K: 210-byte blocks (105 u16): ql[128], qh[64], scales[16], d
  let s = (r * nbk + b) * 105u;
  let h = j / 4u;
  let k = j % 4u;
  let ql16 = s + h * 32u + (k & 1u) * 16u;
  let qh16 = s + 64u + h * 16u;
  let scw = w32at16(second, s + 96u + h * 4u + k);
  let s0 = extractBits(bitcast<i32>(scw), 0u, 8u);
  let s1 = extractBits(bitcast<i32>(scw), 8u, 8u);
  var lo = 0;
  var hi = 0;
  for (var i = 0u; i < 8u; i++) {
    let ql = w32at16(second, ql16 + 2u * i);
    let qhw = w32at16(second, qh16 + 2u * i);
    let nibs = select(ql & 0x0F0F0F0Fu, (ql >> 4u) & 0x0F0F0F0Fu, k >= 2u);
    let qv = ((((nibs | (((qhw >> (2u * k)) & 0x03030303u) << 4u)) | 0x80808080u) - 0x20202020u) ^ 0x80808080u);
    let dp = dot4I8Packed(qv, X[xq + i]);
    if (i < 4u) { lo += dp; } else { hi += dp; }
  }
  return dy * f16at(second, s + 104u) * f32(s0 * lo + s1 * hi);
}

// EXACT (Q4_0, Q5_0, Q8_0; LANES = 8): ggml's x86 sums for row r and up to TN tokens.
// Q5_0/Q8_0, and Q4_0 that ggml does not repack (vec_dot and tinyBLAS alike): lane l
// keeps word l of every block, acc_l = fma(d_w d_x, dot(word l), acc_l) in block order;
// the 8-lane reduction of the includer is then hsum_float_8's. Q4_0 with rows a multiple
// of 8 (REPACKED: ggml's q4_0_8x8 gemv/gemm): one chain per row, acc = fma(block sum,
// d_w d_x, acc), in lane 0 (the other lanes add zeros).
fn row_dots_exact(second: bool, r: u32, t0: u32, lane: u32) -> array<f32, TNMAX> {
  if (TYPE == 12u || TYPE == 13u || TYPE == 14u) { return row_dots_exact_k(second, r, t0, lane); }
  var acc: array<f32, TNMAX>;
  for (var t = 0u; t < TNMAX; t++) { acc[t] = 0.0; }
  let nb = p.K / 32u;
  let bsz = bsz16();
  let row = r * nb * bsz;
  let chain = TYPE == 2u && repacked();
  if ((chain && lane != 0u) || lane >= 8u) { return acc; }  // (lanes 8+: a CHAIN kernel's row that is not one)
  for (var b = 0u; b < nb; b++) {
    let q = load_blk(second, row + b * bsz);
    var wq = q.a[lane & 3u];
    if (lane >= 4u) { wq = q.b[lane & 3u]; }
    for (var t = 0u; t < TN; t++) {
      let tt = t0 + t;
      if (tt < p.n) {
        let dd = q.d * bitcast<f32>(X[p.x_scales + tt * nb + b]);
        let xq = tt * p.x_stride + b * 8u;
        if (chain) {
          acc[t] = mad(f32(blk_dot(q, xq)), dd, acc[t]);
        } else {
          acc[t] = mad(dd, f32(dot4I8Packed(wq, X[xq + lane])), acc[t]);
        }
      }
    }
  }
  return acc;
}

// EXACT Q4_0 that ggml repacks, one token a workgroup row (the includer's CHAIN; LANES 32):
// ggml's q4_0_8x8 gemv is one fma chain a row, acc = fma(block sum, d_w d_x, acc) in block
// order. Only the additions need that order: the row's LANES threads compute the terms of
// LANES blocks at a time into workgroup memory (the includer's part and part2, which its
// reduction uses afterwards: no memory of its own, as the kernels must stay within
// WebGPU's 16 KiB default), then lane 0 runs the chain over them. Returns (W x, W2 x)
// (W2 with `two`) in lane 0, zeros elsewhere; `valid` (the row exists and is a chain) may differ
// between threads, the barriers are reached by all.
fn chain_dot(valid: bool, r: u32, tt: u32, li: u32, two: bool) -> vec2<f32> {
  let lane = li % LANES;
  let nb = p.K / 32u;
  let bsz = bsz16();
  var acc = vec2<f32>(0.0);
  for (var c = 0u; c < nb; c += LANES) {
    let b = c + lane;
    if (valid && b < nb && tt < p.n) {
      let xq = tt * p.x_stride + b * 8u;
      let dx = bitcast<f32>(X[p.x_scales + tt * nb + b]);
      let q = load_blk(false, (r * nb + b) * bsz);
      part[li] = f32(blk_dot(q, xq));
      part2[li] = q.d * dx;
      if (two) {  // W2's terms after W's (the includer sizes part and part2 for it)
        let q2 = load_blk(true, (r * nb + b) * bsz);
        part[256u + li] = f32(blk_dot(q2, xq));
        part2[256u + li] = q2.d * dx;
      }
    }
    workgroupBarrier();
    if (lane == 0u && valid && tt < p.n) {
      let m = min(LANES, nb - c);
      for (var j = 0u; j < m; j++) {
        acc.x = mad(part[li + j], part2[li + j], acc.x);
        if (two) { acc.y = mad(part[256u + li + j], part2[256u + li + j], acc.y); }
      }
    }
    workgroupBarrier();
  }
  return acc;
}

// chain_dot for a Q4_K that ggml repacks, its gemv form (one token, or a token past the last
// whole group of 4): per 256-value block, acc = fma(sum, d_w d_x, acc) and acc_min =
// fma(min sum, dmin_w d_x, acc_min), then acc - acc_min. A block's four terms fill part
// and part2 at li and 256 + li, so W2 (a GLU's up) is a second call.
fn chain_dot_k(valid: bool, r: u32, tt: u32, li: u32, second: bool) -> f32 {
  let lane = li % LANES;
  let nbk = p.K / 256u;
  var acc = 0.0;
  var accm = 0.0;
  for (var c = 0u; c < nbk; c += LANES) {
    let b = c + lane;
    if (valid && b < nbk && tt < p.n) {
      let w0 = (r * nbk + b) * 36u;
      let dd = unpack2x16float(wd(second, w0));
      let dy = bitcast<f32>(X[p.x_scales + tt * nbk + b]);
      let xq = tt * p.x_stride + b * 64u;
      var sums = vec2<i32>(0);
      for (var u = 0u; u < 8u; u++) { sums += kunit_sums(second, w0, tt, b, xq, u); }
      part[li] = f32(sums.x);
      part2[li] = dd.x * dy;
      part[256u + li] = f32(sums.y);
      part2[256u + li] = dd.y * dy;
    }
    workgroupBarrier();
    if (lane == 0u && valid && tt < p.n) {
      let m = min(LANES, nbk - c);
      for (var j = 0u; j < m; j++) {
        acc = mad(part[li + j], part2[li + j], acc);
        accm = mad(part[256u + li + j], part2[256u + li + j], accm);
      }
    }
    workgroupBarrier();
  }
  return acc - accm;
}

// whether this workgroup row's token takes chain_dot / chain_dot_k (the includer's CHAIN,
// a weight ggml repacks; Q4_K's gemm groups of 4 tokens keep row_dots_exact_k)
fn chained(tt: u32) -> bool {
  return CHAIN && repacked() && (TYPE == 2u || (TYPE == 12u && tt >= p.n - p.n % 4u));
}

fn chain_dots(valid: bool, r: u32, tt: u32, li: u32, two: bool) -> vec2<f32> {
  let ok = valid && chained(tt);
  if (TYPE == 12u) {
    var c = vec2<f32>(chain_dot_k(ok, r, tt, li, false), 0.0);
    if (two) { c.y = chain_dot_k(ok, r, tt, li, true); }
    return c;
  }
  return chain_dot(ok, r, tt, li, two);
}

// K-quants, x as Q8_K (ggml's AVX2 vec_dot for Q5_K/Q6_K; its repacked q4_K_8x8 gemv/gemm
// for Q4_K, REPACKED): the block's integer sums land in 8 lanes as there, each lane then
// acc_l = fma(d_w d_x, lane sum, acc_l). Q6_K: lane l sums scale * q (6 bits, unsigned)
// * x over words l of the block's eight 32-value groups, minus 32 * (its two sub-blocks'
// scale * bsum); Q5_K: lane l sums scale * q * x over word l of the 8 units (the mins go
// to kmins()); Q4_K: one chain per row in lane 0, acc - acc_min at the end.
fn ksc(second: bool, w0: u32, j: u32) -> vec2<i32> {  // Q4_K/Q5_K unit j's (scale, min)
  if (j < 4u) { return vec2<i32>(i32(kbyte(second, w0 + 1u, j) & 63u), i32(kbyte(second, w0 + 1u, j + 4u) & 63u)); }
  return vec2<i32>(i32((kbyte(second, w0 + 1u, j + 4u) & 0xFu) | ((kbyte(second, w0 + 1u, j - 4u) >> 6u) << 4u)),
                   i32((kbyte(second, w0 + 1u, j + 4u) >> 4u) | ((kbyte(second, w0 + 1u, j) >> 6u) << 4u)));
}

fn kq45(second: bool, w0: u32, u: u32, i: u32) -> u32 {  // Q4_K/Q5_K unit u's word i of values (unsigned)
  let sh = (u & 1u) * 4u;
  if (TYPE == 13u) {
    return ((wd(second, w0 + 12u + (u / 2u) * 8u + i) >> sh) & 0x0F0F0F0Fu) | (((wd(second, w0 + 4u + i) >> u) & 0x01010101u) << 4u);
  }
  return (wd(second, w0 + 4u + (u / 2u) * 8u + i) >> sh) & 0x0F0F0F0Fu;
}

fn kbsum(tt: u32, b: u32, i: u32) -> i32 { return bitcast<i32>(X[p.x_bsums + (tt * (p.K / 256u) + b) * 16u + i]); }

// Q4_K/Q5_K unit u (32 values) of the block at word w0 against token tt's Q8_K block b
// (its values from word xq): (scale * sum(q * x), min * sum(x)), exact integers
fn kunit_sums(second: bool, w0: u32, tt: u32, b: u32, xq: u32, u: u32) -> vec2<i32> {
  let sm = ksc(second, w0, u);
  var su = 0;
  for (var i = 0u; i < 8u; i++) { su += dot4I8Packed(kq45(second, w0, u, i), X[xq + 8u * u + i]); }
  return vec2<i32>(sm.x * su, sm.y * (kbsum(tt, b, 2u * u) + kbsum(tt, b, 2u * u + 1u)));
}

// ggml's tiled K-quant matmul (ggml-cpu/tiled, steps of 8+ tokens, Q5_K/Q6_K here): one
// chain per row, r = s1 d_w (- dmin_w s2, fused), acc = fma(r, d_x, acc) block by block,
// s1/s2 the block's exact integer sums (scale * q * x; min * bsums).
fn row_dot_tiled_k(second: bool, r: u32, tt: u32) -> f32 {
  let nbk = p.K / 256u;
  var acc = 0.0;
  for (var b = 0u; b < nbk; b++) {
    let dy = bitcast<f32>(X[p.x_scales + tt * nbk + b]);
    let xq = tt * p.x_stride + b * 64u;
    var s1 = 0;
    var rr: f32;
    if (TYPE == 14u) {
      let s = (r * nbk + b) * 105u;
      for (var u = 0u; u < 8u; u++) {
        let h = u / 4u;
        let k = u % 4u;
        let scw = w32at16(second, s + 96u + h * 4u + k);
        var lo = 0;
        var hi = 0;
        for (var i = 0u; i < 8u; i++) {
          let ql = w32at16(second, s + h * 32u + (k & 1u) * 16u + 2u * i);
          let qhw = w32at16(second, s + 64u + h * 16u + 2u * i);
          let nibs = select(ql & 0x0F0F0F0Fu, (ql >> 4u) & 0x0F0F0F0Fu, k >= 2u);
          let q = ((((nibs | (((qhw >> (2u * k)) & 0x03030303u) << 4u)) | 0x80808080u) - 0x20202020u) ^ 0x80808080u);
          let dp = dot4I8Packed(q, X[xq + 32u * h + 8u * k + i]);
          if (i < 4u) { lo += dp; } else { hi += dp; }
        }
        s1 += extractBits(bitcast<i32>(scw), 0u, 8u) * lo + extractBits(bitcast<i32>(scw), 8u, 8u) * hi;
      }
      rr = f32(s1) * f16at(second, s + 104u);
    } else {
      let w0 = (r * nbk + b) * select(36u, 44u, TYPE == 13u);
      var s2 = 0;
      for (var u = 0u; u < 8u; u++) {
        let us = kunit_sums(second, w0, tt, b, xq, u);
        s1 += us.x;
        s2 += us.y;
      }
      let dd = unpack2x16float(wd(second, w0));
      rr = mad(-dd.y, f32(s2), f32(s1) * dd.x);
    }
    acc = mad(rr, dy, acc);
  }
  return acc;
}

fn row_dots_exact_k(second: bool, r: u32, t0: u32, lane: u32) -> array<f32, TNMAX> {
  var acc: array<f32, TNMAX>;
  var accm: array<f32, TNMAX>;
  for (var t = 0u; t < TNMAX; t++) { acc[t] = 0.0; accm[t] = 0.0; }
  let nbk = p.K / 256u;
  let chain = TYPE == 12u && repacked();   // ggml's repacked q4_K_8x8
  let tiled = !chain && p.n >= 8u;
  if (((chain || tiled) && lane != 0u) || lane >= 8u) { return acc; }  // (lanes 8+: a CHAIN kernel's)
  if (tiled) {
    for (var t = 0u; t < TN; t++) { if (t0 + t < p.n) { acc[t] = row_dot_tiled_k(second, r, t0 + t); } }
    return acc;
  }
  for (var b = 0u; b < nbk; b++) {
    for (var t = 0u; t < TN; t++) {
      let tt = t0 + t;
      if (tt >= p.n) { continue; }
      let dy = bitcast<f32>(X[p.x_scales + tt * nbk + b]);
      let xq = tt * p.x_stride + b * 64u;
      if (TYPE == 14u) {
        let s = (r * nbk + b) * 105u;
        let sw = w32at16(second, s + 96u + lane);   // scales 2l, 2l + 1
        var sum = -32 * (kbsum(tt, b, 2u * lane) * extractBits(bitcast<i32>(sw), 0u, 8u)
                         + kbsum(tt, b, 2u * lane + 1u) * extractBits(bitcast<i32>(sw), 8u, 8u));
        for (var h = 0u; h < 2u; h++) {
          for (var k = 0u; k < 4u; k++) {
            let ql = w32at16(second, s + h * 32u + (k & 1u) * 16u + 2u * lane);
            let qhw = w32at16(second, s + 64u + h * 16u + 2u * lane);
            let nibs = select(ql & 0x0F0F0F0Fu, (ql >> 4u) & 0x0F0F0F0Fu, k >= 2u);
            let q = nibs | (((qhw >> (2u * k)) & 0x03030303u) << 4u);
            let scw = w32at16(second, s + 96u + h * 4u + k);
            let sc = extractBits(bitcast<i32>(scw), select(0u, 8u, lane >= 4u), 8u);
            sum += sc * dot4I8Packed(q, X[xq + 32u * h + 8u * k + lane]);
          }
        }
        acc[t] = mad(dy * f16at(second, s + 104u), f32(sum), acc[t]);
      } else {
        var w0 = (r * nbk + b) * 36u;
        if (TYPE == 13u) { w0 = (r * nbk + b) * 44u; }
        let dd = unpack2x16float(wd(second, w0));
        var sum = 0;
        var msum = 0;
        for (var u = 0u; u < 8u; u++) {
          if (!chain) {  // AVX2 vec_dot: lane l, word l of each unit
            sum += ksc(second, w0, u).x * dot4I8Packed(kq45(second, w0, u, lane), X[xq + 8u * u + lane]);
          } else {
            let us = kunit_sums(second, w0, tt, b, xq, u);
            sum += us.x;
            msum += us.y;
            // the repacked gemm (tokens in whole groups of 4) rounds after every 64 values
            if ((u & 1u) == 1u && tt < p.n - p.n % 4u) {
              acc[t] = mad(f32(sum), dd.x * dy, acc[t]);
              accm[t] = mad(f32(msum), dd.y * dy, accm[t]);
              sum = 0;
              msum = 0;
            }
          }
        }
        if (!chain) {
          acc[t] = mad(dy * dd.x, f32(sum), acc[t]);
        } else if (tt >= p.n - p.n % 4u) {  // the gemv: one rounding per block
          acc[t] = mad(f32(sum), dd.x * dy, acc[t]);
          accm[t] = mad(f32(msum), dd.y * dy, accm[t]);
        }
      }
    }
  }
  if (chain) {
    for (var t = 0u; t < TN; t++) { acc[t] = acc[t] - accm[t]; }
  }
  return acc;
}

// Q5_K's mins term, summed apart and added after the lanes (ggml: hsum(acc) + summs, with
// summs = fma(-d_x dmin_w, sum(m * bsum), summs) block by block)
// Q4_K (not repacked): acc_m = fma(-d_x dmin_w, pair sums, acc_m) in 4 lanes (lane i:
// units 2i, 2i+1), then (m0 + m2) + (m1 + m3).
fn kmins(second: bool, r: u32, tt: u32) -> f32 {
  let nbk = p.K / 256u;
  var summs = 0.0;
  var am = vec4<f32>(0.0);
  for (var b = 0u; b < nbk; b++) {
    let w0 = (r * nbk + b) * select(36u, 44u, TYPE == 13u);
    let dy = bitcast<f32>(X[p.x_scales + tt * nbk + b]);
    let dmin = -(dy * unpack2x16float(wd(second, w0)).y);
    var msum = 0;
    for (var i = 0u; i < 4u; i++) {
      var pi = 0;
      for (var u = 2u * i; u < 2u * i + 2u; u++) { pi += ksc(second, w0, u).y * (kbsum(tt, b, 2u * u) + kbsum(tt, b, 2u * u + 1u)); }
      am[i] = mad(dmin, f32(pi), am[i]);
      msum += pi;
    }
    summs = mad(dmin, f32(msum), summs);
  }
  if (TYPE == 12u) { return (am.x + am.z) + (am.y + am.w); }
  return summs;
}

fn exact_type() -> bool { return EXACT && (TYPE == 2u || TYPE == 6u || TYPE == 8u || TYPE == 12u || TYPE == 13u || TYPE == 14u); }

// one token (decode): scalars only
fn row_dot1(second: bool, r: u32, lane: u32) -> f32 {
  if (exact_type()) { return row_dots_exact(second, r, 0u, lane)[0]; }
  var acc = 0.0;
  if (TYPE == 12u || TYPE == 13u || TYPE == 14u) {
    for (var u = lane; u < (p.K / 256u) * 8u; u += LANES) { acc += kunit(second, r, u, 0u); }
  } else if (TYPE == 2u || TYPE == 3u || TYPE == 6u || TYPE == 7u || TYPE == 8u) {
    let nb = p.K / 32u;
    let bsz = bsz16();
    let row = r * nb * bsz;
    for (var b = lane; b < nb; b += LANES) {
      let q = load_blk(second, row + b * bsz);
      acc += f32(blk_dot(q, b * 8u)) * (q.d * bitcast<f32>(X[p.x_scales + b]));
      if (TYPE == 3u || TYPE == 7u) { acc += q.m * bitcast<f32>(X[p.x_bsums + b]); }  // min * d_x * sum(q_x)
    }
  } else if (TYPE == 1u) {
    let nw = p.K / 2u;
    let row = r * nw;
    for (var k = lane; k < nw; k += LANES) {
      let w = wh(second, row + k);
      let x = f16r(vec2<f32>(bitcast<f32>(X[2u * k]), bitcast<f32>(X[2u * k + 1u])));
      acc += w.x * x.x + w.y * x.y;
    }
  } else {
    let row = r * p.K;
    for (var k = lane; k < p.K; k += LANES) {
      var x = bitcast<f32>(X[k]);
      if (TYPE == 30u) { x = bf16r(x); }
      acc += bitcast<f32>(wd(second, row + k)) * x;
    }
  }
  return acc;
}

// partial dot products of rows r (this lane's share) for up to TN tokens
fn row_dots(second: bool, r: u32, t0: u32, lane: u32) -> array<f32, TNMAX> {
  if (exact_type()) { return row_dots_exact(second, r, t0, lane); }
  var acc: array<f32, TNMAX>;
  for (var t = 0u; t < TNMAX; t++) { acc[t] = 0.0; }
  if (TYPE == 12u || TYPE == 13u || TYPE == 14u) {
    for (var u = lane; u < (p.K / 256u) * 8u; u += LANES) {
      for (var t = 0u; t < TN; t++) {
        let tt = t0 + t;
        if (tt < p.n) { acc[t] += kunit(second, r, u, tt); }
      }
    }
  } else if (TYPE == 2u || TYPE == 3u || TYPE == 6u || TYPE == 7u || TYPE == 8u) {
    let nb = p.K / 32u;
    let bsz = bsz16();  // block size in u16
    let row = r * nb * bsz;
    for (var b = lane; b < nb; b += LANES) {
      let q = load_blk(second, row + b * bsz);
      for (var t = 0u; t < TN; t++) {
        let tt = t0 + t;
        if (tt < p.n) {
          acc[t] += f32(blk_dot(q, tt * p.x_stride + b * 8u)) * (q.d * bitcast<f32>(X[p.x_scales + tt * nb + b]));
          if (TYPE == 3u || TYPE == 7u) { acc[t] += q.m * bitcast<f32>(X[p.x_bsums + tt * nb + b]); }
        }
      }
    }
  } else if (TYPE == 1u) {
    let nw = p.K / 2u;  // words per row
    let row = r * nw;
    for (var k = lane; k < nw; k += LANES) {
      let w = wh(second, row + k);
      for (var t = 0u; t < TN; t++) {
        let tt = t0 + t;
        if (tt < p.n) {
          let xi = tt * p.x_stride + 2u * k;
          let x = f16r(vec2<f32>(bitcast<f32>(X[xi]), bitcast<f32>(X[xi + 1u])));
          acc[t] += w.x * x.x + w.y * x.y;
        }
      }
    }
  } else {
    let row = r * p.K;
    for (var k = lane; k < p.K; k += LANES) {
      let w = bitcast<f32>(wd(second, row + k));
      for (var t = 0u; t < TN; t++) {
        let tt = t0 + t;
        if (tt < p.n) {
          var x = bitcast<f32>(X[tt * p.x_stride + k]);
          if (TYPE == 30u) { x = bf16r(x); }
          acc[t] += w * x;
        }
      }
    }
  }
  return acc;
}


fn bf16r(v: f32) -> f32 {  // round to nearest even bf16 (ggml_compute_fp32_to_bf16)
  let u = bitcast<u32>(v);
  return bitcast<f32>((u + 0x7FFFu + ((u >> 16u) & 1u)) & 0xFFFF0000u);
}

fn tanh_safe(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }
