// y = x / sqrt(mean(x^2) + eps) [* w], over rows of length D; one workgroup a row.
override HAS_W: bool = true;
struct P { D: u32, n_rows: u32, eps: f32, w_len: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> Wt: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row = wg.y * nw.x + wg.x;
  if (row >= p.n_rows) { return; }  // uniform per workgroup
  let base = row * p.D;
  var s = 0.0;
  for (var i = li; i < p.D; i += 256u) { let v = X[base + i]; s += v * v; }
  part[li] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (li < k) { part[li] += part[li + k]; }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(part[0] / f32(p.D) + p.eps);
  for (var i = li; i < p.D; i += 256u) {
    var v = X[base + i] * scale;
    if (HAS_W) { v *= Wt[i % p.w_len]; }
    Y[base + i] = v;
  }
}
