// One dispatch for a layer's RoPE of q and k and the F16 cache store of k and v (a
// fusion the recorder applies to rope(q), rope(k), kv_store): each thread makes one
// pair of adjacent output elements, so the cache gets whole u32 words even for NeoX
// pairs (i, i + n_dims/2). Same rotation, table and rounding as rope.wgsl.
//#include f16_round
override NEOX: bool = false;
struct P { hd: u32, n_head: u32, n_head_kv: u32, n: u32, n_dims: u32, pad0: u32, pad1: u32, pad2: u32 }
struct Step { n_past: u32, n_tokens: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
@group(0) @binding(3) var<storage, read> cs: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> Qo: array<f32>;
@group(0) @binding(5) var<storage, read_write> Kc: array<u32>;
@group(0) @binding(6) var<storage, read_write> Vc: array<u32>;
@group(0) @binding(7) var<uniform> p: P;
@group(0) @binding(8) var<uniform> step: Step;
override FMA_NATIVE: bool = false;
var<private> OB: u32;

//#include float_exact


fn rot_q(base: u32, e: u32, pos: u32) -> f32 {
  if (e >= p.n_dims) { return Q[base + e]; }
  let nd2 = p.n_dims / 2u;
  if (NEOX) {
    if (e < nd2) { let c = cs[pos * nd2 + e]; return mad(Q[base + e], c.x, -(Q[base + e + nd2] * c.y)); }
    let i = e - nd2; let c = cs[pos * nd2 + i];
    return mad(Q[base + i], c.y, Q[base + e] * c.x);
  }
  let c = cs[pos * nd2 + e / 2u];
  if ((e & 1u) == 0u) { return mad(Q[base + e], c.x, -(Q[base + e + 1u] * c.y)); }
  return mad(Q[base + e - 1u], c.y, Q[base + e] * c.x);
}

fn rot_k(base: u32, e: u32, pos: u32) -> f32 {
  if (e >= p.n_dims) { return K[base + e]; }
  let nd2 = p.n_dims / 2u;
  if (NEOX) {
    if (e < nd2) { let c = cs[pos * nd2 + e]; return mad(K[base + e], c.x, -(K[base + e + nd2] * c.y)); }
    let i = e - nd2; let c = cs[pos * nd2 + i];
    return mad(K[base + i], c.y, K[base + e] * c.x);
  }
  let c = cs[pos * nd2 + e / 2u];
  if ((e & 1u) == 0u) { return mad(K[base + e], c.x, -(K[base + e + 1u] * c.y)); }
  return mad(K[base + e - 1u], c.y, K[base + e] * c.x);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  OB = step.pad0;
  let half = p.hd / 2u;
  let heads = p.n_head + p.n_head_kv;
  let g = gid.y * nw.x * 64u + gid.x;
  if (g >= half * heads * p.n) { return; }
  let e = 2u * (g % half);
  let row = g / half;
  let t = row / heads;
  let hh = row % heads;
  let pos = step.n_past + t;
  if (hh < p.n_head) {
    let base = (t * p.n_head + hh) * p.hd;
    Qo[base + e] = rot_q(base, e, pos);
    Qo[base + e + 1u] = rot_q(base, e + 1u, pos);
  } else {
    let kh = hh - p.n_head;
    let base = (t * p.n_head_kv + kh) * p.hd;
    let E = p.n_head_kv * p.hd;
    let dst = (pos * E + kh * p.hd + e) / 2u;
    Kc[dst] = pack_f16x2(vec2<f32>(rot_k(base, e, pos), rot_k(base, e + 1u, pos)));
    Vc[dst] = pack_f16x2(vec2<f32>(V[base + e], V[base + e + 1u]));
  }
}
