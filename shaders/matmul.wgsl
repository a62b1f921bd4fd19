// Y[t][r] = sum_k W[r][k] x[t][k] for many tokens (prefill): a 64-row x 64-token tile per
// workgroup of 256 threads, each thread 4 rows x 4 tokens. K advances one 32-value block
// at a time: the tile's weight blocks (GGUF Q4_0/Q8_0, read in place) are unpacked to
// int8 quads in shared memory next to the tokens' Q8_0 activation blocks, then every
// thread does integer dot products (dot4I8Packed) and scales each block sum by d_w*d_x,
// as ggml's CPU q4_0/q8_0 x q8_0 dot does. Same bindings, parameters and fusions (RES,
// GLU) as matvec.wgsl, which handles decode and short steps.
override TYPE: u32 = 2u;   // 2 Q4_0, 8 Q8_0
override RES: bool = false;
override GLU: u32 = 0u;

struct P {
  K: u32, N: u32, x_stride: u32, x_scales: u32, y_stride: u32, n: u32, pad0: u32, pad1: u32,
}
@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<storage, read> R: array<f32>;
@group(0) @binding(5) var<storage, read> W2: array<u32>;

var<workgroup> ws: array<u32, 512>;    // [8 words][64 rows]
var<workgroup> wsd: array<f32, 64>;
var<workgroup> ws2: array<u32, 512>;
var<workgroup> wsd2: array<f32, 64>;
var<workgroup> xs: array<u32, 512>;    // [8 words][64 tokens]
var<workgroup> xsd: array<f32, 64>;

fn wd(second: bool, i: u32) -> u32 {
  if (second) { return W2[i]; }
  return W[i];
}
fn funnel(a: u32, b: u32, odd: bool) -> u32 { return select(a, (a >> 16u) | (b << 16u), odd); }
fn nib(q: u32) -> u32 { return (((q & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u; }
fn f16r1(v: f32) -> f32 { return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x; }
fn tanh_safe(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }

// thread li loads quarter q = li % 4 of block b of tile row li / 4
fn stage_w(second: bool, row: u32, q: u32, b: u32) {
  let lr = row % 64u;
  var w0 = 0u; var w1 = 0u; var d = 0.0;
  if (row < p.N) {
    let nb = p.K / 32u;
    let bsz = select(17u, 9u, TYPE == 2u);
    let s = (row * nb + b) * bsz;   // u16 index of the block
    if (q == 0u) {
      let wv = wd(second, s >> 1u);
      d = unpack2x16float(select(wv, wv >> 16u, (s & 1u) == 1u)).x;
    }
    let odd = ((s + 1u) & 1u) == 1u;
    let j = (s + 1u) >> 1u;
    if (TYPE == 2u) {
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
  if (TYPE == 2u) {   // quad q holds values 4q..4q+3 (low nibbles) and 16+4q.. (high)
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

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let m0 = wg.x * 64u;
  let n0 = wg.y * 64u;
  let tr = li % 16u;
  let tc = li / 16u;
  let nb = p.K / 32u;
  var acc: array<f32, 16>;
  var acc2: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; acc2[i] = 0.0; }
  for (var b = 0u; b < nb; b++) {
    stage_w(false, m0 + li / 4u, li % 4u, b);
    if (GLU != 0u) { stage_w(true, m0 + li / 4u, li % 4u, b); }
    {
      let tok = li / 4u;
      let q = li % 4u;
      let tt = n0 + tok;
      var x0 = 0u; var x1 = 0u; var xd = 0.0;
      if (tt < p.n) {
        let o = tt * p.x_stride + b * 8u + 2u * q;
        x0 = X[o]; x1 = X[o + 1u];
        if (q == 0u) { xd = bitcast<f32>(X[p.x_scales + tt * nb + b]); }
      }
      xs[(2u * q) * 64u + tok] = x0;
      xs[(2u * q + 1u) * 64u + tok] = x1;
      if (q == 0u) { xsd[tok] = xd; }
    }
    workgroupBarrier();
    var si: array<i32, 16>;
    var si2: array<i32, 16>;
    for (var i = 0u; i < 16u; i++) { si[i] = 0; si2[i] = 0; }
    for (var w = 0u; w < 8u; w++) {
      var xv: array<u32, 4>;
      for (var j = 0u; j < 4u; j++) { xv[j] = xs[w * 64u + tc + 16u * j]; }
      for (var i = 0u; i < 4u; i++) {
        let a = ws[w * 64u + tr + 16u * i];
        for (var j = 0u; j < 4u; j++) { si[i * 4u + j] += dot4I8Packed(a, xv[j]); }
        if (GLU != 0u) {
          let a2 = ws2[w * 64u + tr + 16u * i];
          for (var j = 0u; j < 4u; j++) { si2[i * 4u + j] += dot4I8Packed(a2, xv[j]); }
        }
      }
    }
    for (var i = 0u; i < 4u; i++) {
      let dw = wsd[tr + 16u * i];
      var dw2 = 0.0;
      if (GLU != 0u) { dw2 = wsd2[tr + 16u * i]; }
      for (var j = 0u; j < 4u; j++) {
        let dx = xsd[tc + 16u * j];
        acc[i * 4u + j] += f32(si[i * 4u + j]) * (dw * dx);
        if (GLU != 0u) { acc2[i * 4u + j] += f32(si2[i * 4u + j]) * (dw2 * dx); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let row = m0 + tr + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let tt = n0 + tc + 16u * j;
      if (row < p.N && tt < p.n) {
        let o = tt * p.y_stride + row;
        var v = acc[i * 4u + j];
        if (GLU == 1u) {
          v = v / (1.0 + exp(-v)) * acc2[i * 4u + j];
        } else if (GLU == 2u) {
          var g: f32;
          if (v <= -10.0) { g = 0.0; } else if (v >= 10.0) { g = v; } else {
            let x = f16r1(v);
            g = f16r1(0.5 * x * (1.0 + tanh_safe(0.79788456080286535587989211986876 * x * (1.0 + 0.044715 * x * x))));
          }
          v = g * acc2[i * 4u + j];
        }
        if (RES) { v += R[o]; }
        Y[o] = v;
      }
    }
  }
}
