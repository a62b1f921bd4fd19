// Append this step's keys and values ([E, n] f32) to a layer's F16 cache
// ([kv_size, E] halves packed in u32) at cells n_past .. n_past + n - 1.
//#include f16_round
struct P { E: u32, n: u32, pad0: u32, pad1: u32 }
struct Step { n_past: u32, n_tokens: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> K: array<f32>;
@group(0) @binding(1) var<storage, read> V: array<f32>;
@group(0) @binding(2) var<storage, read_write> Kc: array<u32>;
@group(0) @binding(3) var<storage, read_write> Vc: array<u32>;
@group(0) @binding(4) var<uniform> p: P;
@group(0) @binding(5) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let g = gid.y * nw.x * 64u + gid.x;   // pair index over E/2 * n
  let half = p.E / 2u;
  if (g >= half * p.n) { return; }
  let t = g / half;
  let e = 2u * (g % half);
  let src = t * p.E + e;
  let dst = (step.n_past + t) * half + e / 2u;
  Kc[dst] = pack_f16x2(vec2<f32>(K[src], K[src + 1u]));
  Vc[dst] = pack_f16x2(vec2<f32>(V[src], V[src + 1u]));
}
