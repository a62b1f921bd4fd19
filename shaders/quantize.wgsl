// f32 rows -> Q8_0 (or Q8_1) blocks, as ggml's quantize_row_q8_0 / q8_1 (x86): d = amax/127 stored as
// f16, q = round_half_even(x * 127/amax). Output: qs as packed i8 words
// [n][K/4], then the f16-rounded scales as f32 [n][K/32] at word offset `scales`.
//#include f16_round
override SUMS: bool = false;  // Q8_1 (Q4_1/Q5_1 products): also s = f16(d * sum(q)) per block
struct P {
  K: u32,
  n_blocks: u32,   // total blocks = n * K / 32
  scales: u32,
  x_stride: u32,   // floats per x row
  sums: u32,       // word offset of the Q8_1 sums (as f32 of the f16), SUMS only
  pad0: u32, pad1: u32, pad2: u32,
}
override FMA_NATIVE: bool = false;  // float_exact.wgsl's mad() (unused here)
var<private> OB: u32;

//#include float_exact

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Q: array<u32>;
@group(0) @binding(2) var<uniform> p: P;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let g = gid.y * nw.x * 64u + gid.x;
  if (g >= p.n_blocks) { return; }
  OB = p.pad0;  // 0, unknown to the compiler (float_exact.wgsl)
  let bpr = p.K / 32u;
  let t = g / bpr;
  let b = g % bpr;
  let base = t * p.x_stride + b * 32u;
  var amax = 0.0;
  for (var i = 0u; i < 32u; i++) { amax = max(amax, abs(X[base + i])); }
  let d = div_exact(amax, 127.0);  // divisions rounded as the CPU's, whatever the driver's
  let id = select(0.0, div_exact(127.0, amax), amax != 0.0);
  var sum = 0;
  for (var w = 0u; w < 8u; w++) {
    var v = vec4<f32>(X[base + 4u * w], X[base + 4u * w + 1u], X[base + 4u * w + 2u], X[base + 4u * w + 3u]);
    let q = vec4<i32>(round(v * id));
    Q[g * 8u + w] = pack4xI8(q);
    sum += q.x + q.y + q.z + q.w;
  }
  if (SUMS) { Q[p.sums + g] = bitcast<u32>(unpack2x16float(pack_f16x2(vec2<f32>(d * f32(sum), 0.0))).x); }
  Q[p.scales + g] = bitcast<u32>(unpack2x16float(pack_f16x2(vec2<f32>(d, 0.0))).x);
}
