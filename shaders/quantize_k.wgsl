// f32 rows -> Q8_K blocks of 256, as ggml's quantize_row_q8_K_ref (what x86 uses): the
// value of largest magnitude (first on ties) sets iscale = -127/max, q = min(127,
// round_half_even(iscale * x)), d = 1/iscale (f32), and bsums: the sum of each 16 q's.
// Output: qs packed i8 [n][K/4] words, then d [n][K/256] at word `d_off`, then bsums
// as i32 [n][K/16] at word `bs_off`. One workgroup of 64 threads per block.
struct P { K: u32, n_blocks: u32, d_off: u32, bs_off: u32, x_stride: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Q: array<u32>;
@group(0) @binding(2) var<uniform> p: P;

var<workgroup> ra: array<f32, 64>;
var<workgroup> ri: array<u32, 64>;
var<workgroup> qs16: array<i32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let g = wg.y * nw.x + wg.x;
  if (g >= p.n_blocks) { return; }
  let bpr = p.K / 256u;
  let t = g / bpr;
  let b = g % bpr;
  let base = t * p.x_stride + b * 256u;
  let v = vec4<f32>(X[base + 4u * li], X[base + 4u * li + 1u], X[base + 4u * li + 2u], X[base + 4u * li + 3u]);
  var ba = abs(v.x); var bi = 4u * li;
  if (abs(v.y) > ba) { ba = abs(v.y); bi = 4u * li + 1u; }
  if (abs(v.z) > ba) { ba = abs(v.z); bi = 4u * li + 2u; }
  if (abs(v.w) > ba) { ba = abs(v.w); bi = 4u * li + 3u; }
  ra[li] = ba; ri[li] = bi;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (li < s) {
      let oa = ra[li + s]; let oi = ri[li + s];
      if (oa > ra[li] || (oa == ra[li] && oi < ri[li])) { ra[li] = oa; ri[li] = oi; }
    }
    workgroupBarrier();
  }
  let amax = ra[0];
  let mx = X[base + ri[0]];
  var q = vec4<i32>(0);
  if (amax != 0.0) {
    let iscale = -127.0 / mx;
    q = min(vec4<i32>(round(v * iscale)), vec4<i32>(127));
    if (li == 0u) { Q[p.d_off + g] = bitcast<u32>(1.0 / iscale); }
  } else if (li == 0u) {
    Q[p.d_off + g] = 0u;
  }
  Q[g * 64u + li] = pack4xI8(q);
  qs16[li] = q.x + q.y + q.z + q.w;
  workgroupBarrier();
  if (li < 16u) {
    Q[p.bs_off + g * 16u + li] = bitcast<u32>(qs16[4u * li] + qs16[4u * li + 1u] + qs16[4u * li + 2u] + qs16[4u * li + 3u]);
  }
}
