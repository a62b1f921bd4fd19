// Shared by the recurrent-layer kernels (included with //#include rec_view).
// A view reads a tensor through a map from its logical flat index i (ggml order) to an
// element of its buffer, as the split / split_heads / reshape views the recurrent models
// take: off + i % ne0 + (i / ne0 % ne1) * nb1 + i / (ne0 * ne1) * nb2, packed as
// v = vec4(off, ne0, ne1, nb1) and nb2. A contiguous tensor is (0, numel, 1, 0), 0.
fn vidx(v: vec4<u32>, nb2: u32, i: u32) -> u32 {
  let a = i / v.y;
  return v.x + (i - a * v.y) + (a % v.z) * v.w + (a / v.z) * nb2;
}

// Unary ops applied on read (op codes of app/backends/webgpu/recurrent.py):
// 0 none, 1 silu, 2 sigmoid, 3 softplus (ggml's: x above 20 passes through).
fn unary(op: u32, x: f32) -> f32 {
  if (op == 1u) { return x / (1.0 + exp(-x)); }
  if (op == 2u) { return 1.0 / (1.0 + exp(-x)); }
  if (op == 3u) {
    if (x > 20.0) { return x; }
    return log(1.0 + exp(x));
  }
  return x;
}
