// y[t][r] = sum_k W[r][k] * x[t][k]: matrix-vector and matrix-matrix products that read
// GGUF blocks in place. One workgroup of 256 threads computes 256/LANES rows (LANES
// threads a row) for TN tokens (grid: rows*LANES/256 x tokens/TN); each weight block is
// decoded once and used for all TN tokens, so a prefill reads the weights n/TN times.
//
// TYPE (override): 0 F32, 1 F16, 2 Q4_0, 6 Q5_0, 8 Q8_0 (ggml type ids), 30 BF16 widened to F32
// at upload (then x is rounded to bf16 first, as ggml's BF16 dot converts it).
//   F32/F16: x is f32 (for F16 rounded to f16 first, as ggml's F16 dot converts it).
//   Q4_0/Q5_0/Q8_0: x is already quantized to Q8_0 blocks (quantize.wgsl), so the integer
//   block sums are exact and only the float sum order differs from ggml's CPU dot.
// Fusions the recorder applies after recording (each saves a dispatch):
//   RES: y = W x + R          (a residual add that only this product feeds)
//   GLU: y = act(W x) * (W2 x) with act = silu (GLU 1) or gelu_tanh at f16 (GLU 2)
override TYPE: u32 = 0u;
override TN: u32 = 1u;
override LANES: u32 = 32u;   // 32, 64, 128 or 256
override RES: bool = false;
override GLU: u32 = 0u;

struct P {
  K: u32,          // input features (row length)
  N: u32,          // rows of W (output features)
  x_stride: u32,   // words per x row: K (f32) or K/4 (q8 qs)
  x_scales: u32,   // word offset of the q8 scales in x (q8 only)
  y_stride: u32,   // floats per y row
  n: u32,          // tokens
  pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<storage, read> R: array<f32>;
@group(0) @binding(5) var<storage, read> W2: array<u32>;

const TNMAX = 8u;
var<workgroup> part: array<f32, 2048>;   // [TNMAX][256]
var<workgroup> part2: array<f32, 2048>;

fn f16r(v: vec2<f32>) -> vec2<f32> { return unpack2x16float(pack2x16float(v)); }
fn f16r1(v: f32) -> f32 { return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x; }

fn wd(second: bool, i: u32) -> u32 {
  if (second) { return W2[i]; }
  return W[i];
}

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

struct Blk { a: vec4<u32>, b: vec4<u32>, d: f32 }   // 32 int8 weights as 8 quads, scale

fn bsz16() -> u32 {  // block size in u16
  if (TYPE == 2u) { return 9u; }
  if (TYPE == 6u) { return 11u; }
  return 17u;
}

fn hbits(e: u32) -> u32 {  // 4 bits -> bit 4 of each of 4 bytes
  return ((e & 1u) | ((e & 2u) << 7u) | ((e & 4u) << 14u) | ((e & 8u) << 21u)) << 4u;
}
fn sub16(v: u32) -> u32 { return ((v | 0x80808080u) - 0x10101010u) ^ 0x80808080u; }

fn load_blk(second: bool, s: u32) -> Blk {  // the block at u16 index s, as int8 quads
  let d = f16at(second, s);
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
                         sub16(((w.w >> 4u) & 0x0F0F0F0Fu) | hbits((qh >> 28u) & 0xFu))), d);
  }
  let j = (s + 1u) >> 1u;
  let odd = ((s + 1u) & 1u) == 1u;
  let a0 = wd(second, j); let a1 = wd(second, j + 1u); let a2 = wd(second, j + 2u); let a3 = wd(second, j + 3u);
  var a4 = 0u;
  if (TYPE == 2u) {
    if (odd) { a4 = wd(second, j + 4u); }
    let w = vec4<u32>(funnel(a0, a1, odd), funnel(a1, a2, odd), funnel(a2, a3, odd), funnel(a3, a4, odd));
    return Blk(vec4<u32>(nib(w.x), nib(w.y), nib(w.z), nib(w.w)),
               vec4<u32>(nib(w.x >> 4u), nib(w.y >> 4u), nib(w.z >> 4u), nib(w.w >> 4u)), d);
  }
  a4 = wd(second, j + 4u);
  let a5 = wd(second, j + 5u); let a6 = wd(second, j + 6u); let a7 = wd(second, j + 7u);
  var a8 = 0u;
  if (odd) { a8 = wd(second, j + 8u); }
  return Blk(vec4<u32>(funnel(a0, a1, odd), funnel(a1, a2, odd), funnel(a2, a3, odd), funnel(a3, a4, odd)),
             vec4<u32>(funnel(a4, a5, odd), funnel(a5, a6, odd), funnel(a6, a7, odd), funnel(a7, a8, odd)), d);
}

fn blk_dot(q: Blk, xq: u32) -> i32 {
  return dot4I8Packed(q.a.x, X[xq]) + dot4I8Packed(q.a.y, X[xq + 1u]) + dot4I8Packed(q.a.z, X[xq + 2u])
       + dot4I8Packed(q.a.w, X[xq + 3u]) + dot4I8Packed(q.b.x, X[xq + 4u]) + dot4I8Packed(q.b.y, X[xq + 5u])
       + dot4I8Packed(q.b.z, X[xq + 6u]) + dot4I8Packed(q.b.w, X[xq + 7u]);
}

// one token (decode): scalars only
fn row_dot1(second: bool, r: u32, lane: u32) -> f32 {
  var acc = 0.0;
  if (TYPE == 2u || TYPE == 6u || TYPE == 8u) {
    let nb = p.K / 32u;
    let bsz = bsz16();
    let row = r * nb * bsz;
    for (var b = lane; b < nb; b += LANES) {
      let q = load_blk(second, row + b * bsz);
      acc += f32(blk_dot(q, b * 8u)) * (q.d * bitcast<f32>(X[p.x_scales + b]));
    }
  } else if (TYPE == 1u) {
    let nw = p.K / 2u;
    let row = r * nw;
    for (var k = lane; k < nw; k += LANES) {
      let w = unpack2x16float(wd(second, row + k));
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
  var acc: array<f32, TNMAX>;
  for (var t = 0u; t < TNMAX; t++) { acc[t] = 0.0; }
  if (TYPE == 2u || TYPE == 6u || TYPE == 8u) {
    let nb = p.K / 32u;
    let bsz = bsz16();  // block size in u16
    let row = r * nb * bsz;
    for (var b = lane; b < nb; b += LANES) {
      let q = load_blk(second, row + b * bsz);
      for (var t = 0u; t < TN; t++) {
        let tt = t0 + t;
        if (tt < p.n) {
          acc[t] += f32(blk_dot(q, tt * p.x_stride + b * 8u)) * (q.d * bitcast<f32>(X[p.x_scales + tt * nb + b]));
        }
      }
    }
  } else if (TYPE == 1u) {
    let nw = p.K / 2u;  // words per row
    let row = r * nw;
    for (var k = lane; k < nw; k += LANES) {
      let w = unpack2x16float(wd(second, row + k));
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

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let lane = li % LANES;
  let r = wg.x * (256u / LANES) + li / LANES;
  let t0 = wg.y * TN;
  if (TN == 1u) {
    var a1 = 0.0;
    var a2 = 0.0;
    if (r < p.N) {
      a1 = row_dot1(false, r, lane);
      if (GLU != 0u) { a2 = row_dot1(true, r, lane); }
    }
    part[li] = a1;
    part2[li] = a2;
  } else {
    var acc: array<f32, TNMAX>;
    var acc2: array<f32, TNMAX>;
    if (r < p.N) {
      acc = row_dots(false, r, t0, lane);
      if (GLU != 0u) { acc2 = row_dots(true, r, t0, lane); }
    }
    for (var t = 0u; t < TN; t++) {
      part[t * 256u + li] = acc[t];
      if (GLU != 0u) { part2[t * 256u + li] = acc2[t]; }
    }
  }
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var t = 0u; t < TN; t++) {
        part[t * 256u + li] += part[t * 256u + li + s];
        if (GLU != 0u) { part2[t * 256u + li] += part2[t * 256u + li + s]; }
      }
    }
    workgroupBarrier();
  }
  if (lane < TN && r < p.N) {
    let tt = t0 + lane;
    if (tt < p.n) {
      var v = part[lane * 256u + (li - lane)];
      let o = tt * p.y_stride + r;
      if (GLU == 1u) {
        v = v / (1.0 + exp(-v)) * part2[lane * 256u + (li - lane)];
      } else if (GLU == 2u) {
        var g: f32;
        if (v <= -10.0) { g = 0.0; } else if (v >= 10.0) { g = v; } else {
          let x = f16r1(v);
          g = f16r1(0.5 * x * (1.0 + tanh_safe(0.79788456080286535587989211986876 * x * (1.0 + 0.044715 * x * x))));
        }
        v = g * part2[lane * 256u + (li - lane)];
      }
      if (RES) { v += R[o]; }
      Y[o] = v;
    }
  }
}
