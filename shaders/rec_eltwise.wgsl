// y[i] = UA(A[view_a(i)]) (BIN) UB(B[view_b(i / bdiv % nb)]) over n elements, y contiguous
// (bdiv > 1: b [1, m] broadcast over a [d, m, ...], as ggml repeats a dimension of 1):
// the element-wise ops of the recurrent models on views (cont, silu, sigmoid, softplus,
// add, mul, swiglu), so a split or a pending unary op costs no extra pass.
//   BIN: 0 y = a, 1 a + b, 2 a * b;  UA, UB: unary op codes (rec_view.wgsl)
//#include rec_view
override BIN: u32 = 0u;
override UA: u32 = 0u;
override UB: u32 = 0u;
struct P { va: vec4<u32>, vb: vec4<u32>, ex: vec4<u32>, ex2: vec4<u32> }  // ex: nb2 of a, nb2 of b, n, nb; ex2.x: bdiv
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.y * nw.x * 256u + gid.x;
  if (i >= p.ex.z) { return; }
  var y = unary(UA, A[vidx(p.va, p.ex.x, i)]);
  if (BIN != 0u) {
    let b = unary(UB, B[vidx(p.vb, p.ex.y, (i / p.ex2.x) % p.ex.w)]);
    if (BIN == 1u) { y = y + b; } else { y = y * b; }
  }
  Y[i] = y;
}
