// y[i] = UA(A[view_a(i)]) (BIN) UB(B[view_b(i / bdiv % nb)]) over n elements, y contiguous
// (bdiv > 1: b [1, m] broadcast over a [d, m, ...], as ggml repeats a dimension of 1):
// the element-wise ops of the recurrent models on views (cont, silu, sigmoid, softplus,
// add, mul, swiglu), so a split or a pending unary op costs no extra pass.
//   BIN: 0 y = a, 1 a + b, 2 a * b;  UA, UB: unary op codes (rec_view.wgsl)
//   QUANT (a fusion the recorder applies when a Q8_0 quantization reads y): a thread a
//   32-value block, also writing y as Q8_0 (quantize.wgsl's layout and rounding)
//#include rec_view
//#include f16_round
override BIN: u32 = 0u;
override UA: u32 = 0u;
override UB: u32 = 0u;
override QUANT: bool = false;
struct P { va: vec4<u32>, vb: vec4<u32>, ex: vec4<u32>, ex2: vec4<u32> }  // ex: nb2 of a, nb2 of b, n, nb; ex2: bdiv, Q8 scales
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<storage, read_write> Q8: array<u32>;

fn value(i: u32) -> f32 {
  var y = unary(UA, A[vidx(p.va, p.ex.x, i)]);
  if (BIN != 0u) {
    let b = unary(UB, B[vidx(p.vb, p.ex.y, (i / p.ex2.x) % p.ex.w)]);
    if (BIN == 1u) { y = y + b; } else { y = y * b; }
  }
  return y;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.y * nw.x * 256u + gid.x;
  if (!QUANT) {
    if (i < p.ex.z) { Y[i] = value(i); }
    return;
  }
  let g = i;  // block
  if (g >= p.ex.z / 32u) { return; }
  var v: array<f32, 32>;
  var amax = 0.0;
  for (var e = 0u; e < 32u; e++) {
    v[e] = value(32u * g + e);
    Y[32u * g + e] = v[e];
    amax = max(amax, abs(v[e]));
  }
  let id = select(0.0, 127.0 / amax, amax != 0.0);
  for (var w = 0u; w < 8u; w++) {
    Q8[g * 8u + w] = pack4xI8(vec4<i32>(round(vec4<f32>(v[4u * w], v[4u * w + 1u], v[4u * w + 2u], v[4u * w + 3u]) * id)));
  }
  Q8[p.ex2.y + g] = bitcast<u32>(unpack2x16float(pack_f16x2(vec2<f32>(amax / 127.0, 0.0))).x);
}
