// Y[t][r] = sum_k W[r][k] x[t][k] for many tokens (prefill): a 64-row x 64-token tile per
// workgroup of 256 threads, each thread 4 rows x 4 tokens. K advances one 32-value block
// at a time: the tile's weight blocks (GGUF Q4_0/Q8_0, read in place) are unpacked to
// int8 quads in shared memory next to the tokens' Q8_0 activation blocks, then every
// thread does integer dot products (dot4I8Packed) and scales each block sum by d_w*d_x,
// as ggml's CPU q4_0/q8_0 x q8_0 dot does. Same bindings, parameters and fusions (RES,
// GLU) as matvec.wgsl, which handles decode and short steps.
//
// EXACT (Q4_0 that ggml repacks): each output is ggml's q4_0_8x8 gemm chain, acc =
// fma(block sum, d_w d_x, acc) block by block, which is the order the tile already sums
// in; only the fma and the GLU's functions (ggml's silu, its gelu table) change.
//#include f16_round
override TYPE: u32 = 2u;   // 2 Q4_0, 6 Q5_0, 8 Q8_0 (x as Q8_0); 12 Q4_K, 13 Q5_K, 14 Q6_K (x as Q8_K)
override RES: bool = false;
override GLU: u32 = 0u;
override EXACT: bool = false;
override FMA_NATIVE: bool = false;

struct P {
  K: u32, N: u32, x_stride: u32, x_scales: u32, y_stride: u32, n: u32, x_bsums: u32, y_row0: u32,
}
@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<storage, read> R: array<f32>;
@group(0) @binding(5) var<storage, read> W2: array<u32>;
@group(0) @binding(6) var<storage, read> gelu_tab: array<f32>;  // EXACT GLU 2: ggml's f16 gelu table

var<private> OB: u32;
//#include float_exact

var<workgroup> ws: array<u32, 512>;    // [8 words][64 rows]
var<workgroup> wsd: array<f32, 64>;
var<workgroup> ws2: array<u32, 512>;
var<workgroup> wsd2: array<f32, 64>;
var<workgroup> xs: array<u32, 512>;    // [8 words][64 tokens]
var<workgroup> xsd: array<f32, 64>;
// K-quants: per row of the tile the unit's integer scale (Q4_K/Q5_K sc, Q6_K first scale) and
// min (Q4_K/Q5_K m, Q6_K second scale), and dmin (Q4_K/Q5_K); per token the unit's bsum (Q4_K)
var<workgroup> wsc: array<i32, 64>;
var<workgroup> wmi: array<i32, 64>;
var<workgroup> wsm: array<f32, 64>;
var<workgroup> wsc2: array<i32, 64>;
var<workgroup> wmi2: array<i32, 64>;
var<workgroup> wsm2: array<f32, 64>;
var<workgroup> xbs: array<i32, 64>;

fn wd(second: bool, i: u32) -> u32 {
  if (second) { return W2[i]; }
  return W[i];
}
fn funnel(a: u32, b: u32, odd: bool) -> u32 { return select(a, (a >> 16u) | (b << 16u), odd); }
fn hbits(e: u32) -> u32 { return ((e & 1u) | ((e & 2u) << 7u) | ((e & 4u) << 14u) | ((e & 8u) << 21u)) << 4u; }
fn sub16(v: u32) -> u32 { return ((v | 0x80808080u) - 0x10101010u) ^ 0x80808080u; }
fn nib(q: u32) -> u32 { return (((q & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u; }
fn f16r1(v: f32) -> f32 { return unpack2x16float(pack_f16x2(vec2<f32>(v, 0.0))).x; }
fn tanh_safe(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }

fn w32at16(second: bool, i: u32) -> u32 { return funnel(wd(second, i >> 1u), wd(second, (i >> 1u) + 1u), (i & 1u) == 1u); }
fn kbyte(second: bool, w0: u32, k: u32) -> u32 { return (wd(second, w0 + (k >> 2u)) >> ((k & 3u) * 8u)) & 0xFFu; }

// K-quants: unit u (32 values) of the rows: 2 of its 8 int8 quads, and (q == 0) its scales
fn stage_k(second: bool, row: u32, q: u32, u: u32) {
  let lr = row % 64u;
  let nbk = p.K / 256u;
  let bb = u / 8u;
  let j = u % 8u;
  var w0 = 0u; var w1 = 0u; var d = 0.0; var dm = 0.0; var sc = 0; var mi = 0;
  if (row < p.N) {
    if (TYPE == 12u || TYPE == 13u) {
      var wb = (row * nbk + bb) * 36u;
      var qw = wb + 4u + (j / 2u) * 8u;
      if (TYPE == 13u) { wb = (row * nbk + bb) * 44u; qw = wb + 12u + (j / 2u) * 8u; }
      let sh = (j & 1u) * 4u;
      w0 = (wd(second, qw + 2u * q) >> sh) & 0x0F0F0F0Fu;
      w1 = (wd(second, qw + 2u * q + 1u) >> sh) & 0x0F0F0F0Fu;
      if (TYPE == 13u) {  // Q5_K: the fifth bit, bit j of qh byte l
        w0 |= ((wd(second, wb + 4u + 2u * q) >> j) & 0x01010101u) << 4u;
        w1 |= ((wd(second, wb + 5u + 2u * q) >> j) & 0x01010101u) << 4u;
      }
      if (q == 0u) {
        let dd = unpack2x16float(wd(second, wb));
        d = dd.x; dm = dd.y;
        if (j < 4u) {
          sc = i32(kbyte(second, wb + 1u, j) & 63u);
          mi = i32(kbyte(second, wb + 1u, j + 4u) & 63u);
        } else {
          sc = i32((kbyte(second, wb + 1u, j + 4u) & 0xFu) | ((kbyte(second, wb + 1u, j - 4u) >> 6u) << 4u));
          mi = i32((kbyte(second, wb + 1u, j + 4u) >> 4u) | ((kbyte(second, wb + 1u, j) >> 6u) << 4u));
        }
      }
    } else {
      let s = (row * nbk + bb) * 105u;
      let h = j / 4u;
      let k = j % 4u;
      let ql16 = s + h * 32u + (k & 1u) * 16u;
      let qh16 = s + 64u + h * 16u;
      for (var i = 0u; i < 2u; i++) {
        let wi = 2u * q + i;
        let ql = w32at16(second, ql16 + 2u * wi);
        let qhw = w32at16(second, qh16 + 2u * wi);
        let nibs = select(ql & 0x0F0F0F0Fu, (ql >> 4u) & 0x0F0F0F0Fu, k >= 2u);
        let qv = ((((nibs | (((qhw >> (2u * k)) & 0x03030303u) << 4u)) | 0x80808080u) - 0x20202020u) ^ 0x80808080u);
        if (i == 0u) { w0 = qv; } else { w1 = qv; }
      }
      if (q == 0u) {
        let dw = wd(second, (s + 104u) >> 1u);
        d = unpack2x16float(select(dw, dw >> 16u, ((s + 104u) & 1u) == 1u)).x;
        let scw = w32at16(second, s + 96u + h * 4u + k);
        sc = extractBits(bitcast<i32>(scw), 0u, 8u);
        mi = extractBits(bitcast<i32>(scw), 8u, 8u);
      }
    }
  }
  if (second) {
    ws2[(2u * q) * 64u + lr] = w0; ws2[(2u * q + 1u) * 64u + lr] = w1;
    if (q == 0u) { wsd2[lr] = d; wsm2[lr] = dm; wsc2[lr] = sc; wmi2[lr] = mi; }
  } else {
    ws[(2u * q) * 64u + lr] = w0; ws[(2u * q + 1u) * 64u + lr] = w1;
    if (q == 0u) { wsd[lr] = d; wsm[lr] = dm; wsc[lr] = sc; wmi[lr] = mi; }
  }
}

// the unit's contribution: Q4_K/Q5_K d*sc*sumi - dmin*m*bsum, Q6_K d*(sc0*lo + sc1*hi), else
// d_w*sumi; all times the token's d_x
fn combine(second: bool, r: u32, lo: vec4<i32>, hi: vec4<i32>, dx: vec4<f32>, bs: vec4<i32>) -> vec4<f32> {
  var d = wsd[r]; var dm = wsm[r]; var sc = wsc[r]; var mi = wmi[r];
  if (second) { d = wsd2[r]; dm = wsm2[r]; sc = wsc2[r]; mi = wmi2[r]; }
  if (TYPE == 12u || TYPE == 13u) { return dx * (d * vec4<f32>(sc * (lo + hi)) - dm * vec4<f32>(mi * bs)); }
  if (TYPE == 14u) { return dx * (d * vec4<f32>(sc * lo + mi * hi)); }
  return vec4<f32>(lo + hi) * (d * dx);
}

// c + the unit's contribution: EXACT as one fma (Q4_0 only), else as combine()
fn accum(second: bool, r: u32, c: vec4<f32>, lo: vec4<i32>, hi: vec4<i32>, dx: vec4<f32>, bs: vec4<i32>) -> vec4<f32> {
  if (!EXACT) { return c + combine(second, r, lo, hi, dx, bs); }
  var d = wsd[r];
  if (second) { d = wsd2[r]; }
  let s = vec4<f32>(lo + hi);
  let dd = d * dx;
  return vec4<f32>(mad(s.x, dd.x, c.x), mad(s.y, dd.y, c.y), mad(s.z, dd.z, c.z), mad(s.w, dd.w, c.w));
}

// thread li loads quarter q = li % 4 of block b of tile row li / 4
fn stage_w(second: bool, row: u32, q: u32, b: u32) {
  if (TYPE == 12u || TYPE == 13u || TYPE == 14u) { stage_k(second, row, q, b); return; }
  let lr = row % 64u;
  var w0 = 0u; var w1 = 0u; var d = 0.0;
  if (row < p.N) {
    let nb = p.K / 32u;
    var bsz = 17u;
    if (TYPE == 2u) { bsz = 9u; } else if (TYPE == 6u) { bsz = 11u; }
    let s = (row * nb + b) * bsz;   // u16 index of the block
    if (q == 0u) {
      let wv = wd(second, s >> 1u);
      d = unpack2x16float(select(wv, wv >> 16u, (s & 1u) == 1u)).x;
    }
    let odd = ((s + 1u) & 1u) == 1u;
    let j = (s + 1u) >> 1u;
    if (TYPE == 6u) {  // Q5_0: qh at u16 s+1 (2 u16), low nibbles from s+3
      let qh = funnel(wd(second, j), wd(second, j + 1u), odd);
      var bw = 0u;
      if (odd) { bw = wd(second, j + q + 2u); }
      let w = funnel(wd(second, j + q + 1u), bw, odd);
      w0 = sub16((w & 0x0F0F0F0Fu) | hbits((qh >> (4u * q)) & 0xFu));
      w1 = sub16(((w >> 4u) & 0x0F0F0F0Fu) | hbits((qh >> (16u + 4u * q)) & 0xFu));
    } else if (TYPE == 2u) {
      let a = wd(second, j + q);
      var bw = 0u;
      if (odd) { bw = wd(second, j + q + 1u); }
      let w = funnel(a, bw, odd);
      w0 = nib(w); w1 = nib(w >> 4u);
    } else {
      let a0 = wd(second, j + 2u * q);
      let a1 = wd(second, j + 2u * q + 1u);
      var a2 = 0u;
      if (odd) { a2 = wd(second, j + 2u * q + 2u); }
      w0 = funnel(a0, a1, odd); w1 = funnel(a1, a2, odd);
    }
  }
  if (TYPE == 2u || TYPE == 6u) {   // quad q: values 4q..4q+3 (low nibbles) and 16+4q.. (high)
    if (second) { ws2[q * 64u + lr] = w0; ws2[(4u + q) * 64u + lr] = w1; }
    else { ws[q * 64u + lr] = w0; ws[(4u + q) * 64u + lr] = w1; }
  } else {
    if (second) { ws2[(2u * q) * 64u + lr] = w0; ws2[(2u * q + 1u) * 64u + lr] = w1; }
    else { ws[(2u * q) * 64u + lr] = w0; ws[(2u * q + 1u) * 64u + lr] = w1; }
  }
  if (q == 0u) {
    if (second) { wsd2[lr] = d; } else { wsd[lr] = d; }
  }
}

fn store(row: u32, t0: u32, v4: vec4<f32>, g4: vec4<f32>) {
  if (row >= p.N) { return; }
  for (var j = 0u; j < 4u; j++) {
    let tt = t0 + 16u * j;
    if (tt < p.n) {
      let o = tt * p.y_stride + p.y_row0 + row;
      var v = v4[j];
      if (GLU == 1u) {
        if (EXACT) { v = silu_ggml(v) * g4[j]; } else { v = v / (1.0 + exp(-v)) * g4[j]; }
      } else if (GLU == 2u) {
        var g: f32;
        if (v <= -10.0) { g = 0.0; } else if (v >= 10.0) { g = v; } else if (EXACT) {
          g = gelu_tab[pack_f16x2(vec2<f32>(v, 0.0)) & 0xFFFFu];
        } else {
          let x = f16r1(v);
          g = f16r1(0.5 * x * (1.0 + tanh_safe(0.79788456080286535587989211986876 * x * (1.0 + 0.044715 * x * x))));
        }
        v = g * g4[j];
      }
      if (RES) { v += R[o]; }
      Y[o] = v;
    }
  }
}

struct Tile { a: vec4<i32>, b: vec4<i32>, c: vec4<i32>, d: vec4<i32> }

// words w0 .. w0 + 3 of the staged unit: rows tr + 16i (a..d) x tokens tc + 16j (x..w)
fn tile_dots(second: bool, w0: u32) -> Tile {
  let tr = lid % 16u;
  let tc = lid / 16u;
  var t = Tile(vec4<i32>(0), vec4<i32>(0), vec4<i32>(0), vec4<i32>(0));
  for (var w = w0; w < w0 + 4u; w++) {
    let o = w * 64u;
    let x = vec4<u32>(xs[o + tc], xs[o + tc + 16u], xs[o + tc + 32u], xs[o + tc + 48u]);
    var a0: u32; var a1: u32; var a2: u32; var a3: u32;
    if (second) { a0 = ws2[o + tr]; a1 = ws2[o + tr + 16u]; a2 = ws2[o + tr + 32u]; a3 = ws2[o + tr + 48u]; }
    else { a0 = ws[o + tr]; a1 = ws[o + tr + 16u]; a2 = ws[o + tr + 32u]; a3 = ws[o + tr + 48u]; }
    t.a += vec4<i32>(dot4I8Packed(a0, x.x), dot4I8Packed(a0, x.y), dot4I8Packed(a0, x.z), dot4I8Packed(a0, x.w));
    t.b += vec4<i32>(dot4I8Packed(a1, x.x), dot4I8Packed(a1, x.y), dot4I8Packed(a1, x.z), dot4I8Packed(a1, x.w));
    t.c += vec4<i32>(dot4I8Packed(a2, x.x), dot4I8Packed(a2, x.y), dot4I8Packed(a2, x.z), dot4I8Packed(a2, x.w));
    t.d += vec4<i32>(dot4I8Packed(a3, x.x), dot4I8Packed(a3, x.y), dot4I8Packed(a3, x.z), dot4I8Packed(a3, x.w));
  }
  return t;
}

var<private> lid: u32;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  lid = li;
  OB = p.K >> 31u;  // 0, unknown to the compiler (float_exact.wgsl)
  let m0 = wg.x * 64u;
  let n0 = wg.y * 64u;
  let tr = li % 16u;
  let tc = li / 16u;
  let nb = p.K / 32u;
  var c0 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0);
  var e0 = vec4<f32>(0.0); var e1 = vec4<f32>(0.0); var e2 = vec4<f32>(0.0); var e3 = vec4<f32>(0.0);
  for (var b = 0u; b < nb; b++) {
    stage_w(false, m0 + li / 4u, li % 4u, b);
    if (GLU != 0u) { stage_w(true, m0 + li / 4u, li % 4u, b); }
    {
      let tok = li / 4u;
      let q = li % 4u;
      let tt = n0 + tok;
      var x0 = 0u; var x1 = 0u; var xd = 0.0; var bsum = 0;
      if (tt < p.n) {
        let o = tt * p.x_stride + b * 8u + 2u * q;   // K-quants too: unit b's words are 8b..
        x0 = X[o]; x1 = X[o + 1u];
        if (q == 0u) {
          if (TYPE == 12u || TYPE == 13u || TYPE == 14u) {
            let nbk = p.K / 256u;
            xd = bitcast<f32>(X[p.x_scales + tt * nbk + b / 8u]);
            let bo = p.x_bsums + (tt * nbk + b / 8u) * 16u + 2u * (b % 8u);
            bsum = bitcast<i32>(X[bo]) + bitcast<i32>(X[bo + 1u]);
          } else {
            xd = bitcast<f32>(X[p.x_scales + tt * nb + b]);
          }
        }
      }
      xs[(2u * q) * 64u + tok] = x0;
      xs[(2u * q + 1u) * 64u + tok] = x1;
      if (q == 0u) { xsd[tok] = xd; xbs[tok] = bsum; }
    }
    workgroupBarrier();
    // straight-line 4x4 integer tiles (vectors, no dynamically indexed private arrays),
    // the unit's two halves apart (Q6_K scales each half of 16 on its own)
    let dx = vec4<f32>(xsd[tc], xsd[tc + 16u], xsd[tc + 32u], xsd[tc + 48u]);
    let bs = vec4<i32>(xbs[tc], xbs[tc + 16u], xbs[tc + 32u], xbs[tc + 48u]);
    let lo = tile_dots(false, 0u);
    let hi = tile_dots(false, 4u);
    c0 = accum(false, tr, c0, lo.a, hi.a, dx, bs);
    c1 = accum(false, tr + 16u, c1, lo.b, hi.b, dx, bs);
    c2 = accum(false, tr + 32u, c2, lo.c, hi.c, dx, bs);
    c3 = accum(false, tr + 48u, c3, lo.d, hi.d, dx, bs);
    if (GLU != 0u) {
      let lo2 = tile_dots(true, 0u);
      let hi2 = tile_dots(true, 4u);
      e0 = accum(true, tr, e0, lo2.a, hi2.a, dx, bs);
      e1 = accum(true, tr + 16u, e1, lo2.b, hi2.b, dx, bs);
      e2 = accum(true, tr + 32u, e2, lo2.c, hi2.c, dx, bs);
      e3 = accum(true, tr + 48u, e3, lo2.d, hi2.d, dx, bs);
    }
    workgroupBarrier();
  }
  store(m0 + tr, n0 + tc, c0, e0);
  store(m0 + tr + 16u, n0 + tc, c1, e1);
  store(m0 + tr + 32u, n0 + tc, c2, e2);
  store(m0 + tr + 48u, n0 + tc, c3, e3);
}
