// Row norms over views, 32 threads a row, 8 rows a workgroup:
//   y = UA(x) / sqrt(sum(UA(x)^2) / D + eps) [* w[(row * D + e) % w_len]] * post
// RMSNorm of strided heads (Qwen 3.5's q-norm on the q half of each q|gate head,
// Falcon-Mamba's dt/B/C norms), a weight spanning several rows (Mamba-2's grouped norm),
// and ggml's L2-norm form (eps / D, then post = 1 / sqrt(D)). y is contiguous.
// DUAL (a fusion the recorder applies): rows from rows1 on are a second tensor's (X2, W2,
// Y2, its own view and weight length), so two norms of one shape cost one dispatch
// (Qwen 3.5's q and k head norms).
//#include rec_view
override HAS_W: bool = true;
override UA: u32 = 0u;
override DUAL: bool = false;
struct P {
  v: vec4<u32>, D: u32, rows: u32, nb2: u32, w_len: u32, eps: f32, post: f32, rows1: u32, pad1: u32,
  v2: vec4<u32>, nb2_2: u32, w_len2: u32, pad2: u32, pad3: u32,
}
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> Wt: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<storage, read> X2: array<f32>;
@group(0) @binding(5) var<storage, read> W2: array<f32>;
@group(0) @binding(6) var<storage, read_write> Y2: array<f32>;

var<workgroup> part: array<f32, 256>;

fn load(second: bool, r: u32, e: u32) -> f32 {
  if (second) { return unary(UA, X2[vidx(p.v2, p.nb2_2, r * p.D + e)]); }
  return unary(UA, X[vidx(p.v, p.nb2, r * p.D + e)]);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let lane = li % 32u;
  let row = (wg.y * nw.x + wg.x) * 8u + li / 32u;
  let live = row < p.rows;
  let second = DUAL && row >= p.rows1;
  var r = row;
  if (second) { r = row - p.rows1; }
  var s = 0.0;
  if (live) {
    for (var e = lane; e < p.D; e += 32u) {
      let v = load(second, r, e);
      s += v * v;
    }
  }
  part[li] = s;
  workgroupBarrier();
  for (var k = 16u; k > 0u; k >>= 1u) {
    if (lane < k) { part[li] += part[li + k]; }
    workgroupBarrier();
  }
  if (!live) { return; }
  let scale = 1.0 / sqrt(part[li - lane] / f32(p.D) + p.eps);
  for (var e = lane; e < p.D; e += 32u) {
    let i = r * p.D + e;
    var v = load(second, r, e) * scale;
    if (second) {
      if (HAS_W) { v *= W2[i % p.w_len2]; }
      Y2[i] = v * p.post;
    } else {
      if (HAS_W) { v *= Wt[i % p.w_len]; }
      Y[i] = v * p.post;
    }
  }
}
