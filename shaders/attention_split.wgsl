// Decode attention split over the KV length (flash-decoding): one workgroup per
// (head, chunk of CHUNK cells, token) writes a partial (max m, sum l, unnormalised
// output); attention_combine.wgsl merges the chunks. Within a chunk the scores are
// computed in parallel, then the cells are visited in order with the output accumulated
// in f16 and q rounded to f16, as ggml's CPU one-chunk flash attention (whose own
// split-KV path merges per-thread chunk partials the same way); V goes through shared
// memory a tile at a time, and the running max and each cell's softmax factors are found
// before the walk, which then only rescales, fma's and rounds.
// EXACT also takes ggml's arithmetic where it is known: the score is ggml_vec_dot_f16's
// AVX-512 sum (4 x 16 fma lanes, then its reduction tree; head_dim a multiple of 64), the
// softmax factors are glibc's expf (float_exact.wgsl) and the f16 accumulator update is a
// fused multiply-add (emulated where the device does not fuse: FMA_NATIVE false).
//#include f16_round
//#include f16_io
override CHUNK: u32 = 256u;   // a multiple of 64, at most 256
// > 0 (exact mode): while the whole context fits in ONE_CHUNK cells (at most 256), workgroup 0
// walks all of it as ggml's one-chunk path does; past that, chunks of CHUNK (where ggml
// itself walks differently) keep the grid busy
override ONE_CHUNK: u32 = 0u;
override EXACT: bool = true;  // false: plain f32 accumulation (no f16 rounding, q in f32)
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
@group(0) @binding(3) var<storage, read_write> Part: array<f32>;
@group(0) @binding(4) var<uniform> p: P;
@group(0) @binding(5) var<uniform> step: Step;

var<workgroup> qv: array<f32, 256>;
var<workgroup> sc: array<f32, 256>;
var<workgroup> pm: array<f32, 256>;
var<workgroup> msa: array<f32, 256>;
var<workgroup> vsa: array<f32, 256>;
var<workgroup> vt: array<h2, 2048>;   // a tile of V: 32 cells (16 for head_dim 256)
var<private> OB: u32;

const NEG = -3.4028234663852886e38;  // -FLT_MAX exactly (Tint rejects a literal past it)

//#include float_exact

fn kq_ggml(kb: u32) -> f32 {  // q . k as ggml_vec_dot_f16 sums it on AVX-512 (GCC's reduce)
  var t3: array<f32, 8>;
  for (var l = 0u; l < 8u; l++) {
    var x2: vec2<f32>;   // lanes l and l + 8
    for (var h = 0u; h < 2u; h++) {
      let ln = l + 8u * h;
      var a = vec4<f32>(0.0);  // the four 16-lane accumulators, this lane
      for (var i = 0u; i < p.hd; i += 64u) {
        for (var j = 0u; j < 4u; j++) {
          let e = i + 16u * j + ln;
          let kw = h2f(Kc[kb + e / 2u]);
          a[j] = a[j] + select(kw.x, kw.y, (e & 1u) == 1u) * qv[e];  // the product is exact
        }
      }
      x2[h] = (a.x + a.z) + (a.y + a.w);
    }
    t3[l] = x2.y + x2.x;
  }
  let t6 = vec4<f32>(t3[4] + t3[0], t3[5] + t3[1], t3[6] + t3[2], t3[7] + t3[3]);
  return (t6.x + t6.z) + (t6.y + t6.w);
}


fn f16r(v: f32) -> f32 {
  if (!EXACT) { return v; }
  return unpack2x16float(pack_f16x2(vec2<f32>(v, 0.0))).x;
}

fn vval(vb: u32, d: u32) -> f32 {  // V of dim d (< head_dim, else 0) for the tile row at word vb
  if (d >= p.hd) { return 0.0; }
  let vv = h2f(vt[vb + d / 2u]);
  return select(vv.x, vv.y, (d & 1u) == 1u);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  OB = p.ob;
  let h = wg.x;
  let c = wg.y;
  let t = wg.z;
  let g = h / (p.n_head / p.n_head_kv);
  let E = p.n_head_kv * p.hd;
  let qpos = step.n_past + t;
  var lo = 0u;
  if (p.window > 0u && qpos + 1u > p.window) { lo = qpos + 1u - p.window; }
  var span = CHUNK;
  if (step.n_past + step.n_tokens <= ONE_CHUNK) { span = ONE_CHUNK; }
  let c0 = max(c * span, lo);
  let c1 = min(c * span + span - 1u, qpos);   // inclusive
  let pbase = ((t * p.n_head + h) * p.n_split + c) * (2u + p.hd);
  if (c0 > c1) {
    if (li == 0u) { Part[pbase] = NEG; Part[pbase + 1u] = 0.0; }
    return;
  }
  let qbase = (t * p.n_head + h) * p.hd;
  for (var d = li; d < p.hd; d += 64u) { qv[d] = f16r(Q[qbase + d]); }
  workgroupBarrier();
  var scale = p.scale;
  if (p.softcap != 0.0) { scale = div_exact(scale, p.softcap); }
  let cnt = c1 + 1u - c0;
  for (var i = li; i < cnt; i += 64u) {
    let kb = ((c0 + i) * E + g * p.hd) / 2u;
    var dot = 0.0;
    if (EXACT && p.hd % 64u == 0u) {
      dot = kq_ggml(kb);
    } else {
      for (var w = 0u; w < p.hd / 2u; w++) {
        let kv = h2f(Kc[kb + w]);
        dot += qv[2u * w] * kv.x + qv[2u * w + 1u] * kv.y;
      }
    }
    var s = dot * scale;
    if (p.softcap != 0.0) { s = p.softcap * tanh(clamp(s, -15.0, 15.0)); }
    sc[i] = s;
  }
  workgroupBarrier();
  // the running max before each cell (ggml's M, updated when s > M), by one thread...
  if (li == 0u) {
    var run = NEG;
    for (var j = 0u; j < cnt; j++) {
      pm[j] = run;
      if (sc[j] > run) { run = sc[j]; }
    }
  }
  workgroupBarrier();
  // ...then each cell's factors in parallel: ms rescales the output on a new max, vs
  // weighs the cell (ms = 1 or vs = 1 exactly as ggml's branches give them)
  for (var j = li; j < cnt; j += 64u) {
    let s = sc[j];
    let mp = pm[j];
    if (EXACT) {
      if (s > mp) { msa[j] = expf_glibc(mp - s); vsa[j] = 1.0; } else { msa[j] = 1.0; vsa[j] = expf_glibc(s - mp); }
    } else {
      if (s > mp) { msa[j] = exp(mp - s); vsa[j] = 1.0; } else { msa[j] = 1.0; vsa[j] = exp(s - mp); }
    }
  }
  var m = max(pm[cnt - 1u], sc[cnt - 1u]);
  var l = 0.0;
  var acc = vec4<f32>(0.0);   // dims li, li + 64, li + 128, li + 192
  let wpr = p.hd / 2u;
  let tile = min(32u, 4096u / p.hd);
  for (var t0 = 0u; t0 < cnt; t0 += tile) {
    let tn = min(tile, cnt - t0);
    for (var i = li; i < tn * wpr; i += 64u) {
      let cell = i / wpr;
      vt[i] = Vc[((c0 + t0 + cell) * E + g * p.hd) / 2u + i % wpr];
    }
    workgroupBarrier();
    for (var jj = 0u; jj < tn; jj++) {
      let ms = msa[t0 + jj];
      let vs = vsa[t0 + jj];
      let vb = jj * wpr;
      acc.x = f16r(mad(vval(vb, li), vs, f16r(acc.x * ms)));
      if (p.hd > 64u) {
        acc.y = f16r(mad(vval(vb, li + 64u), vs, f16r(acc.y * ms)));
        acc.z = f16r(mad(vval(vb, li + 128u), vs, f16r(acc.z * ms)));
        acc.w = f16r(mad(vval(vb, li + 192u), vs, f16r(acc.w * ms)));
      }
      l = mad(l, ms, vs);  // GCC contracts ggml's S = S*ms + vs into one fma
    }
    workgroupBarrier();
  }
  if (li == 0u) { Part[pbase] = m; Part[pbase + 1u] = l; }
  if (li < p.hd) { Part[pbase + 2u + li] = acc.x; }
  if (li + 64u < p.hd) { Part[pbase + 66u + li] = acc.y; }
  if (li + 128u < p.hd) { Part[pbase + 130u + li] = acc.z; }
  if (li + 192u < p.hd) { Part[pbase + 194u + li] = acc.w; }
}
