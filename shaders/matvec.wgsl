// y[t][r] = sum_k W[r][k] * x[t][k]: matrix-vector (and few-token) products that read
// GGUF blocks in place. One workgroup of 256 threads computes 8 rows (32 lanes a row)
// for one token (grid: rows/8 x tokens).
//
// TYPE (override): 0 F32, 1 F16, 2 Q4_0, 8 Q8_0 (ggml type ids).
//   F32/F16: x is f32 (for F16 rounded to f16 first, as ggml's F16 dot converts it).
//   Q4_0/Q8_0: x is already quantized to Q8_0 blocks (quantize.wgsl), so the integer
//   block sums are exact and only the float sum order differs from ggml's CPU dot.
override TYPE: u32 = 0u;

struct P {
  K: u32,          // input features (row length)
  N: u32,          // rows of W (output features)
  x_stride: u32,   // words per x row: K (f32) or K/4 (q8 qs)
  x_scales: u32,   // word offset of the q8 scales in x (q8 only)
  y_stride: u32,   // floats per y row
  w_off: u32,      // u16 offset (quantized) / word offset (float) of row 0 in W
}

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;

var<workgroup> part: array<f32, 256>;

fn f16at(i: u32) -> f32 {  // the f16 at u16 index i of W
  let w = W[i >> 1u];
  return unpack2x16float(select(w, w >> 16u, (i & 1u) == 1u)).x;
}

fn funnel(a: u32, b: u32, odd: bool) -> u32 {  // 32 bits starting at a u16 boundary
  return select(a, (a >> 16u) | (b << 16u), odd);
}

fn dot_q4_0(s: u32, xq: u32, xd: f32) -> f32 {  // block at u16 index s, x block words from xq
  let d = f16at(s);
  let j = (s + 1u) >> 1u;
  let odd = ((s + 1u) & 1u) == 1u;
  let a0 = W[j]; let a1 = W[j + 1u]; let a2 = W[j + 2u]; let a3 = W[j + 3u];
  let a4 = select(0u, W[j + 4u], odd);
  let q = array<u32, 4>(funnel(a0, a1, odd), funnel(a1, a2, odd), funnel(a2, a3, odd), funnel(a3, a4, odd));
  var sumi: i32 = 0;
  for (var i = 0u; i < 4u; i++) {
    let lo = (((q[i] & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
    let hi = ((((q[i] >> 4u) & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
    sumi += dot4I8Packed(lo, X[xq + i]) + dot4I8Packed(hi, X[xq + 4u + i]);
  }
  return f32(sumi) * (d * xd);
}

fn dot_q8_0(s: u32, xq: u32, xd: f32) -> f32 {
  let d = f16at(s);
  let j = (s + 1u) >> 1u;
  let odd = ((s + 1u) & 1u) == 1u;
  var sumi: i32 = 0;
  var a = W[j];
  for (var i = 0u; i < 8u; i++) {
    let b = select(0u, W[j + i + 1u], odd || i < 7u);
    sumi += dot4I8Packed(funnel(a, b, odd), X[xq + i]);
    a = b;
  }
  return f32(sumi) * (d * xd);
}

fn f16r(v: vec2<f32>) -> vec2<f32> { return unpack2x16float(pack2x16float(v)); }

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let lane = li & 31u;
  let r = wg.x * 8u + (li >> 5u);
  let t = wg.y;
  var acc = 0.0;
  if (r < p.N) {
    if (TYPE == 2u || TYPE == 8u) {
      let nb = p.K / 32u;
      let bsz = select(17u, 9u, TYPE == 2u);  // block size in u16
      let row = p.w_off + r * nb * bsz;
      for (var b = lane; b < nb; b += 32u) {
        let xq = t * p.x_stride + b * 8u;
        let xd = bitcast<f32>(X[p.x_scales + t * nb + b]);
        if (TYPE == 2u) {
          acc += dot_q4_0(row + b * bsz, xq, xd);
        } else {
          acc += dot_q8_0(row + b * bsz, xq, xd);
        }
      }
    } else if (TYPE == 1u) {
      let nw = p.K / 2u;  // words per row
      let row = p.w_off + r * nw;
      for (var k = lane; k < nw; k += 32u) {
        let w = unpack2x16float(W[row + k]);
        let xi = t * p.x_stride + 2u * k;
        let x = f16r(vec2<f32>(bitcast<f32>(X[xi]), bitcast<f32>(X[xi + 1u])));
        acc += w.x * x.x + w.y * x.y;
      }
    } else {
      let row = p.w_off + r * p.K;
      for (var k = lane; k < p.K; k += 32u) {
        acc += bitcast<f32>(W[row + k]) * bitcast<f32>(X[t * p.x_stride + k]);
      }
    }
  }
  part[li] = acc;
  workgroupBarrier();
  for (var s = 16u; s > 0u; s >>= 1u) {
    if (lane < s) { part[li] += part[li + s]; }
    workgroupBarrier();
  }
  if (lane == 0u && r < p.N) {
    Y[t * p.y_stride + r] = part[li];
  }
}
