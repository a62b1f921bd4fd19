// Causal attention for steps of 64+ query rows, computed as ggml's CPU tiled flash
// attention computes it (ggml-cpu/ops.cpp, flash_attn_ext_tiled; its per-row arithmetic
// does not depend on the tiling of the rows), so results agree bit for bit:
//   per KV tile of 64 cells: s = (q . k as one fma chain over the head dim, q in f32) * scale;
//   M' = max(M, tile max); on a new max, output and S scale by glibc expf(M - M');
//   w = ggml's SIMD expf(s - M') (0 where masked); S += the tile's sum (each 16 cells by
//   _mm512_reduce_add_ps's tree, accumulated in double); out += w * v as one fma chain
//   over the tile's cells (simd_gemm); at the end out * (1 / S).
// One workgroup of 64 threads per (head, query row). No soft-capping (tanhf): the recorder
// takes attention.wgsl for that.
//#include f16_round
//#include f16_io
override FMA_NATIVE: bool = false;
struct P {
  hd: u32, n_head: u32, n_head_kv: u32, n: u32,
  scale: f32, softcap: f32, window: u32, n_split: u32,
  ob: u32, pad0: u32, pad1: u32, pad2: u32,   // ob: 0 (float_exact.wgsl's optimisation barrier)
}
struct Step { n_past: u32, n_tokens: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> Kc: array<h2>;  // the F16 cache (f16_io.wgsl)
@group(0) @binding(2) var<storage, read> Vc: array<h2>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> p: P;
@group(0) @binding(5) var<uniform> step: Step;

var<workgroup> qv: array<f32, 256>;
var<workgroup> w: array<f32, 64>;
var<workgroup> red: array<f32, 64>;
var<workgroup> fac: vec2<f32>;   // (ms, valid tile) from thread 0
var<private> OB: u32;

//#include float_exact

fn half_at(buf_word: h2, odd: bool) -> f32 {
  let v = h2f(buf_word);
  return select(v.x, v.y, odd);
}

fn tree16(base: u32) -> f32 {  // GCC's _mm512_reduce_add_ps over w[base .. base + 16)
  var t3: array<f32, 8>;
  for (var l = 0u; l < 8u; l++) { t3[l] = w[base + l + 8u] + w[base + l]; }
  let t6 = vec4<f32>(t3[4] + t3[0], t3[5] + t3[1], t3[6] + t3[2], t3[7] + t3[3]);
  return (t6.x + t6.z) + (t6.y + t6.w);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  OB = p.ob;
  let h = wg.x;
  let t = wg.y;
  let g = h / (p.n_head / p.n_head_kv);
  let E = p.n_head_kv * p.hd;
  let qbase = (t * p.n_head + h) * p.hd;
  for (var d = li; d < p.hd; d += 64u) { qv[d] = Q[qbase + d]; }
  let pos = step.n_past + t;
  var lo = 0u;
  if (p.window > 0u && pos + 1u > p.window) { lo = pos + 1u - p.window; }
  // a var, not a literal: Tint (Chrome) rejects a constant expression whose value is inf
  var ninf_bits = 0xff800000u;
  let NINF = bitcast<f32>(ninf_bits);
  var M = NINF;   // -inf
  var S = 0.0;
  var acc = vec4<f32>(0.0);            // dims li, li + 64, li + 128, li + 192
  workgroupBarrier();
  for (var t0 = (lo / 64u) * 64u; t0 <= pos; t0 += 64u) {
    let cell = t0 + li;
    let valid = cell >= lo && cell <= pos;
    var s = NINF;
    if (valid) {
      let kb = cell * E + g * p.hd;   // in halves
      var dot = 0.0;
      for (var d = 0u; d < p.hd; d++) {
        dot = mad(qv[d], half_at(Kc[(kb + d) / 2u], ((kb + d) & 1u) == 1u), dot);
      }
      s = dot * p.scale;
    }
    red[li] = s;
    workgroupBarrier();
    if (li == 0u) {
      var tmax = red[0];
      for (var c = 1u; c < 64u; c++) { tmax = max(tmax, red[c]); }
      var ms = 1.0;
      let mnew = max(M, tmax);
      if (mnew > M) { ms = expf_glibc(ob(M - mnew)); }
      fac = vec2<f32>(ms, mnew);
    }
    workgroupBarrier();
    let ms = fac.x;
    if (fac.y > M) {
      acc = acc * ms;
      S = S * ms;
      M = fac.y;
    }
    var wc = 0.0;
    if (valid) { wc = vexpf_ggml(ob(s - M)); }
    w[li] = wc;
    workgroupBarrier();
    // S += the tile's sum: each 16 cells by the reduce tree, the four summed in double
    var sum = vec2<f32>(S, 0.0);
    for (var q = 0u; q < 64u; q += 16u) { sum = ff_add(sum, vec2<f32>(tree16(q), 0.0)); }
    S = ob(sum.x + sum.y);
    // out += w * v, one fused multiply-add per cell, in cell order
    let n_cells = min(64u, pos + 1u - t0);
    for (var c = 0u; c < n_cells; c++) {
      let wv = w[c];
      if (wv == 0.0) { continue; }   // masked: fma(0, v, acc) == acc
      let vb = (t0 + c) * E + g * p.hd;
      for (var r = 0u; r < 4u; r++) {
        let d = li + 64u * r;
        if (d < p.hd) { acc[r] = mad(wv, half_at(Vc[(vb + d) / 2u], ((vb + d) & 1u) == 1u), acc[r]); }
      }
    }
    workgroupBarrier();
  }
  let inv = div_exact(1.0, S);
  for (var r = 0u; r < 4u; r++) {
    let d = li + 64u * r;
    if (d < p.hd) { Y[qbase + d] = acc[r] * inv; }
  }
}
