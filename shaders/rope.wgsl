// Rotary position embedding of [hd, n_head, n] by this step's positions (n_past + t),
// with cos/sin from a table computed on the host exactly as ggml's rope cache
// (table[pos][i] = (cos, sin) of pair i). NEOX rotates (i, i + n_dims/2), else (2i, 2i+1).
override NEOX: bool = false;
struct P { hd: u32, n_head: u32, n: u32, n_dims: u32 }
struct Step { n_past: u32, n_tokens: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<uniform> step: Step;
override FMA_NATIVE: bool = false;
var<private> OB: u32;

//#include float_exact


@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  OB = step.pad0;
  let half = p.hd / 2u;
  let g = gid.y * nw.x * 64u + gid.x;
  if (g >= half * p.n_head * p.n) { return; }
  let i = g % half;
  let row = g / half;             // head + n_head * t
  let t = row / p.n_head;
  let base = row * p.hd;
  let nd2 = p.n_dims / 2u;
  let pos = step.n_past + t;
  if (i < nd2) {
    let c = cs[pos * nd2 + i];
    var i0: u32; var i1: u32;
    if (NEOX) { i0 = i; i1 = i + nd2; } else { i0 = 2u * i; i1 = 2u * i + 1u; }
    let x0 = X[base + i0];
    let x1 = X[base + i1];
    Y[base + i0] = mad(x0, c.x, -(x1 * c.y));  // ggml's x0*cos - x1*sin as GCC contracts it
    Y[base + i1] = mad(x0, c.y, x1 * c.x);
  } else {
    // dims past n_dims pass through: pair i covers elements 2i, 2i+1 of the tail
    let e = 2u * i;
    Y[base + e] = X[base + e];
    Y[base + e + 1u] = X[base + e + 1u];
  }
}
