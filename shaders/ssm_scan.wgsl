// Mamba's selective scan over a persistent state, as ggml_ssm_scan: one thread a channel
// (Mamba-1: d_inner channels, A [d_state] per channel) or a (head, head_dim lane) pair
// (MAMBA2: one scalar A per head, B and C shared by the heads of a group), its d_state
// values of h in registers, sequential over the step's tokens:
//   dt' = softplus(dt),  h = h * exp(dt' A) + B (x dt'),  y = C . h
// Only the step's real tokens (step.n_tokens) advance the state; padded rows get 0.
// Fusions the recorder applies: UX, UBC (unary ops pending on x, on B and C), SKIP (y += D x),
// GATE (y *= silu(z), z read through a view).
// B and C are read through their views from one binding (the recorder puts them in one
// buffer): 8 storage buffers a shader stage, WebGPU's default limit.
//#include rec_view
override MAMBA2: bool = false;
override UX: u32 = 0u;
override UBC: u32 = 0u;  // a unary op pending on B and C (Mamba-2: they share x's conv and silu)
override SKIP: bool = false;
override GATE: bool = false;
const NMAX = 128u;  // d_state
struct P {
  vx: vec4<u32>, vb: vec4<u32>, vc: vec4<u32>, vz: vec4<u32>,
  N: u32, hd: u32, nh: u32, ng: u32,   // d_state, head_dim (1 for Mamba-1), heads, groups
  n: u32, nb2x: u32, nb2b: u32, nb2c: u32,
  nb2z: u32, pad0: u32, pad1: u32, pad2: u32,
}
struct Step { n_past: u32, n_tokens: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> Dt: array<f32>;    // [n][nh], contiguous
@group(0) @binding(2) var<storage, read> A: array<f32>;     // [nh][N] (Mamba-1) or [nh]
@group(0) @binding(3) var<storage, read> BC: array<f32>;    // B (view vb) and C (view vc)
@group(0) @binding(4) var<storage, read_write> St: array<f32>;  // [nh][hd][N]
@group(0) @binding(5) var<storage, read_write> Y: array<f32>;   // [n][nh][hd]
@group(0) @binding(6) var<uniform> p: P;
@group(0) @binding(7) var<uniform> step: Step;
@group(0) @binding(8) var<storage, read> Dskip: array<f32>;  // SKIP: D [nh]
@group(0) @binding(9) var<storage, read> Zg: array<f32>;     // GATE: z

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let c = gid.y * nw.x * 64u + gid.x;   // channel: lane + hd * head
  let d_inner = p.hd * p.nh;
  if (c >= d_inner) { return; }
  let h = c / p.hd;
  let grp = h / (p.nh / p.ng);
  let N = p.N;
  var s: array<f32, NMAX>;
  for (var i = 0u; i < N; i++) { s[i] = St[c * N + i]; }
  let n_real = min(step.n_tokens, p.n);
  for (var t = 0u; t < n_real; t++) {
    let dt = unary(3u, Dt[t * p.nh + h]);
    let xv = unary(UX, X[vidx(p.vx, p.nb2x, t * d_inner + c)]);
    let x_dt = xv * dt;
    let bc = (t * p.ng + grp) * N;
    var y = 0.0;
    if (MAMBA2) {
      let dA = exp(dt * A[h]);
      for (var i = 0u; i < N; i++) {
        let st = (s[i] * dA) + (unary(UBC, BC[vidx(p.vb, p.nb2b, bc + i)]) * x_dt);
        y += st * unary(UBC, BC[vidx(p.vc, p.nb2c, bc + i)]);
        s[i] = st;
      }
    } else {
      for (var i = 0u; i < N; i++) {
        let st = (s[i] * exp(dt * A[h * N + i])) + (unary(UBC, BC[vidx(p.vb, p.nb2b, bc + i)]) * x_dt);
        y += st * unary(UBC, BC[vidx(p.vc, p.nb2c, bc + i)]);
        s[i] = st;
      }
    }
    if (SKIP) { y = y + xv * Dskip[h]; }
    if (GATE) { y = y * unary(1u, Zg[vidx(p.vz, p.nb2z, t * d_inner + c)]); }
    Y[t * d_inner + c] = y;
  }
  for (var t = n_real; t < p.n; t++) { Y[t * d_inner + c] = 0.0; }
  for (var i = 0u; i < N; i++) { St[c * N + i] = s[i]; }
}
