// y = x / sqrt(mean(x^2) + eps) [* w], over rows of length D; one workgroup a row,
// rounded as ggml's rms_norm (double sum of squares, then f32 1/sqrtf, x * scale * w).
// QUANT (a fusion the recorder applies): also write y as Q8_0 blocks for the mat-vecs
// that read it (same layout and rounding as quantize.wgsl), saving a dispatch.
//#include f16_round
override HAS_W: bool = true;
override QUANT: bool = false;
override FMA_NATIVE: bool = false;  // float_exact.wgsl's mad()
struct P { D: u32, n_rows: u32, eps: f32, w_len: u32, scales: u32, pad0: u32, pad1: u32, pad2: u32 }  // pad0: 0 (OB)
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> Wt: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<storage, read_write> Q: array<u32>;

var<workgroup> part: array<vec2<f32>, 256>;
var<workgroup> amx: array<f32, 256>;   // QUANT: each thread's |max| of its 4 values
var<private> OB: u32;

//#include float_exact

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row = wg.y * nw.x + wg.x;
  if (row >= p.n_rows) { return; }  // uniform per workgroup
  OB = p.pad0;
  let base = row * p.D;
  // ggml sums the f32 squares in double: a float-float sum (~46 bits) rounds to the same
  // f32 mean but where the double lies within ~2^-46 of a rounding boundary
  var s = vec2<f32>(0.0);
  for (var i = li; i < p.D; i += 256u) { let v = X[base + i]; s = ff_add(s, vec2<f32>(ob(v * v), 0.0)); }  // ob: no fma contraction
  part[li] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (li < k) { part[li] = ff_add(part[li], part[li + k]); }
    workgroupBarrier();
  }
  let sum = part[0];
  let n = f32(p.D);
  let q = sum.x / n;  // mean = sum / D rounded once: q plus the remainder's share
  let qn = ff_two_prod(q, n);
  let mean = ob(q + ob(ob(ob(sum.x - qn.x) - qn.y) + sum.y) / n);
  let scale = div_exact(1.0, sqrt_exact(mean + p.eps));
  for (var i = li; i < p.D; i += 256u) {
    var v = X[base + i] * scale;
    if (HAS_W) { v *= Wt[i % p.w_len]; }
    Y[base + i] = v;
  }
  if (QUANT) {
    // 8 threads a block, 4 values each, recomputed from x (the same products as y): the
    // block's |max| through workgroup memory, so no thread waits on another's y writes
    let nb = p.D / 32u;
    for (var b0 = 0u; b0 < nb; b0 += 32u) {
      let b = b0 + li / 8u;
      let w = li % 8u;
      var v = vec4<f32>(0.0);
      if (b < nb) {
        for (var j = 0u; j < 4u; j++) {
          let i = 32u * b + 4u * w + j;
          var e = X[base + i] * scale;
          if (HAS_W) { e *= Wt[i % p.w_len]; }
          v[j] = e;
        }
      }
      let a = abs(v);
      amx[li] = max(max(a.x, a.y), max(a.z, a.w));
      workgroupBarrier();
      var amax = 0.0;
      for (var k = 0u; k < 8u; k++) { amax = max(amax, amx[li - w + k]); }
      workgroupBarrier();
      if (b < nb) {
        let d = div_exact(amax, 127.0);
        let id = select(0.0, div_exact(127.0, amax), amax != 0.0);
        let g = row * nb + b;
        Q[g * 8u + w] = pack4xI8(vec4<i32>(round(v * id)));
        if (w == 0u) { Q[p.scales + g] = bitcast<u32>(unpack2x16float(pack_f16x2(vec2<f32>(d, 0.0))).x); }
      }
    }
  }
}
