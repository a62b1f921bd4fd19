// Causal attention of this step's queries over a layer's F16 KV cache (grouped-query,
// optional sliding window and soft-cap), one workgroup per (head, token): the KV length
// is walked in chunks of 64 with an online softmax (flash-decoding within a workgroup).
// Q_F16 follows ggml's CPU flash attention for fewer than 64 query rows (its one-chunk
// path): q rounded to f16, keys visited in order with the output accumulated in f16.
// Without it (64+ rows, ggml's tiled path) the chunk's scores go through an f32 online
// softmax.
//#include f16_round
//#include f16_io
override Q_F16: bool = true;
struct P {
  hd: u32, n_head: u32, n_head_kv: u32, n: u32,
  scale: f32, softcap: f32, window: u32, pad: u32,
}
struct Step { n_past: u32, n_tokens: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> Kc: array<h2>;  // the F16 cache (f16_io.wgsl)
@group(0) @binding(2) var<storage, read> Vc: array<h2>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> p: P;
@group(0) @binding(5) var<uniform> step: Step;

var<workgroup> qv: array<f32, 256>;
var<workgroup> sc: array<f32, 64>;
var<workgroup> red: array<f32, 64>;

const NEG = -3.4028234663852886e38;  // -FLT_MAX exactly (Tint rejects a literal past it)

fn f16r(v: f32) -> f32 { return unpack2x16float(pack_f16x2(vec2<f32>(v, 0.0))).x; }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let h = wg.x;
  let t = wg.y;
  let g = h / (p.n_head / p.n_head_kv);
  let E = p.n_head_kv * p.hd;          // halves per cache row
  let qbase = (t * p.n_head + h) * p.hd;
  for (var d = li; d < p.hd; d += 64u) {
    var v = Q[qbase + d];
    if (Q_F16) { v = unpack2x16float(pack_f16x2(vec2<f32>(v, 0.0))).x; }
    qv[d] = v;
  }
  workgroupBarrier();
  let qpos = step.n_past + t;
  var lo = 0u;
  if (p.window > 0u && qpos + 1u > p.window) { lo = qpos + 1u - p.window; }
  var scale = p.scale;
  if (p.softcap != 0.0) { scale = scale / p.softcap; }
  var m = NEG;
  var l = 0.0;
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  for (var c0 = lo; c0 <= qpos; c0 += 64u) {
    let j = c0 + li;
    var s = NEG;
    if (j <= qpos) {
      let kb = (j * E + g * p.hd) / 2u;
      var dot = 0.0;
      for (var w = 0u; w < p.hd / 2u; w++) {
        let kv = h2f(Kc[kb + w]);
        dot += qv[2u * w] * kv.x + qv[2u * w + 1u] * kv.y;
      }
      s = dot * scale;
      if (p.softcap != 0.0) { s = p.softcap * tanh(clamp(s, -15.0, 15.0)); }
    }
    if (Q_F16) {
      // ggml's one-chunk path, step by step: a running max M and sum S, and the output
      // accumulated in f16 (VKQ16: scaled on a new max, then fma'd with v and rounded)
      sc[li] = s;
      workgroupBarrier();
      let cnt = min(64u, qpos + 1u - c0);
      for (var jj = 0u; jj < cnt; jj++) {
        let sj = sc[jj];
        var ms = 1.0;
        var vs = 1.0;
        if (sj > m) {
          ms = exp(m - sj);
          m = sj;
          for (var r = 0u; r < 4u; r++) { acc[r] = f16r(acc[r] * ms); }
        } else {
          vs = exp(sj - m);
        }
        for (var r = 0u; r < 4u; r++) {
          let d = li + 64u * r;
          if (d < p.hd) {
            let hv = (c0 + jj) * E + g * p.hd + d;
            let vv = h2f(Vc[hv / 2u]);
            acc[r] = f16r(fma(select(vv.x, vv.y, (hv & 1u) == 1u), vs, acc[r]));
          }
        }
        l = l * ms + vs;
      }
      workgroupBarrier();
      continue;
    }
    red[li] = s;
    workgroupBarrier();
    for (var k = 32u; k > 0u; k >>= 1u) {
      if (li < k) { red[li] = max(red[li], red[li + k]); }
      workgroupBarrier();
    }
    let m_new = max(m, red[0]);
    workgroupBarrier();
    let alpha = exp(m - m_new);
    var pj = 0.0;
    if (j <= qpos) { pj = exp(s - m_new); }
    sc[li] = pj;
    red[li] = pj;
    workgroupBarrier();
    for (var k = 32u; k > 0u; k >>= 1u) {
      if (li < k) { red[li] += red[li + k]; }
      workgroupBarrier();
    }
    l = l * alpha + red[0];
    let cnt = min(64u, qpos + 1u - c0);
    for (var r = 0u; r < 4u; r++) {
      let d = li + 64u * r;
      if (d < p.hd) {
        var a = acc[r] * alpha;
        for (var jj = 0u; jj < cnt; jj++) {
          let hv = (c0 + jj) * E + g * p.hd + d;
          let vv = h2f(Vc[hv / 2u]);
          a += sc[jj] * select(vv.x, vv.y, (hv & 1u) == 1u);
        }
        acc[r] = a;
      }
    }
    m = m_new;
    workgroupBarrier();
  }
  for (var r = 0u; r < 4u; r++) {
    let d = li + 64u * r;
    if (d < p.hd) { Y[qbase + d] = acc[r] / l; }
  }
}
