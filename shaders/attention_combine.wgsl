// Merge the chunk partials of attention_split.wgsl: y = sum_i acc_i e^(m_i - M) /
// sum_i l_i e^(m_i - M), one workgroup per (head, token). QUANT (a fusion the recorder
// applies): also write the output row as Q8_0 blocks for the output projection.
//#include f16_round
override QUANT: bool = false;
override FMA_NATIVE: bool = false;  // float_exact.wgsl's mad() (unused here)
var<private> OB: u32;
//#include float_exact
struct P { hd: u32, n_head: u32, n_split: u32, scales: u32 }
@group(0) @binding(0) var<storage, read> Part: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
@group(0) @binding(3) var<storage, read_write> Qo: array<u32>;

var<workgroup> outv: array<f32, 256>;
const NEG = -3.4028234663852886e38;  // -FLT_MAX exactly (Tint rejects a literal past it)

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  OB = select(0u, 1u, p.scales == 0xffffffffu);  // 0, unknown to the compiler (float_exact.wgsl)
  let h = wg.x;
  let t = wg.y;
  let stride = 2u + p.hd;
  let base = (t * p.n_head + h) * p.n_split * stride;
  var M = NEG;
  for (var c = 0u; c < p.n_split; c++) {
    let o = base + c * stride;
    if (Part[o + 1u] > 0.0) { M = max(M, Part[o]); }
  }
  var L = 0.0;
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  for (var c = 0u; c < p.n_split; c++) {
    let o = base + c * stride;
    let l = Part[o + 1u];
    if (l > 0.0) {
      let e = exp(Part[o] - M);
      L += l * e;
      for (var r = 0u; r < 4u; r++) {
        let d = li + 64u * r;
        if (d < p.hd) { acc[r] += Part[o + 2u + d] * e; }
      }
    }
  }
  let ybase = (t * p.n_head + h) * p.hd;
  let inv = div_exact(1.0, L);  // ggml scales by 1/S (divisions rounded as the CPU's)
  for (var r = 0u; r < 4u; r++) {
    let d = li + 64u * r;
    if (d < p.hd) {
      let v = acc[r] * inv;
      Y[ybase + d] = v;
      outv[d] = v;
    }
  }
  if (QUANT) {
    workgroupBarrier();
    let nbh = p.hd / 32u;                 // blocks in this head's slice of the row
    if (li < nbh) {
      var amax = 0.0;
      for (var i = 0u; i < 32u; i++) { amax = max(amax, abs(outv[32u * li + i])); }
      let d = div_exact(amax, 127.0);
      let id = select(0.0, div_exact(127.0, amax), amax != 0.0);
      let blk = (t * p.n_head + h) * nbh + li;   // rows are contiguous: block index in [n][K/32]
      for (var w = 0u; w < 8u; w++) {
        let o = 32u * li + 4u * w;
        let v = vec4<f32>(outv[o], outv[o + 1u], outv[o + 2u], outv[o + 3u]);
        Qo[blk * 8u + w] = pack4xI8(vec4<i32>(round(v * id)));
      }
      Qo[p.scales + blk] = bitcast<u32>(unpack2x16float(pack_f16x2(vec2<f32>(d, 0.0))).x);
    }
  }
}
