// Depthwise causal conv1d with a persistent state (Mamba, Gated DeltaNet), one thread a
// channel and block of tokens:
//   y[t][c] = sum_i w[c][i] * cx[c][t + i],  cx[c] = state[c] (d_conv - 1 values) ++ x[.][c]
// as ggml_ssm_conv sums it (i ascending); then the last d_conv - 1 inputs become the state.
// Only the step's real tokens (step.n_tokens) advance the state; padded rows get 0.
// Fusions the recorder applies: BIAS (+ b[c], ggml's add after the conv), ACT (silu).
//#include rec_view
override UA: u32 = 0u;   // unary op pending on x
override BIAS: bool = false;
override ACT: u32 = 0u;  // unary op on the output
const KMAX = 8u;
struct P { v: vec4<u32>, nb2: u32, channels: u32, d_conv: u32, n: u32 }
struct Step { n_past: u32, n_tokens: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> Wt: array<f32>;      // [channels][d_conv]
@group(0) @binding(2) var<storage, read_write> S: array<f32>;  // [channels][d_conv - 1]
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;  // [n][channels]
@group(0) @binding(4) var<uniform> p: P;
@group(0) @binding(5) var<uniform> step: Step;
@group(0) @binding(6) var<storage, read> Bias: array<f32>;

// Tokens are split in blocks of TB (grid y): outputs only need the inputs before them, so
// blocks run in parallel; block 0 alone reads and then rewrites the state (no race).
const TB = 32u;

fn input(t: u32, c: u32) -> f32 { return unary(UA, X[vidx(p.v, p.nb2, t * p.channels + c)]); }

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.channels) { return; }
  let K = p.d_conv;
  let n_real = min(step.n_tokens, p.n);
  let t0 = gid.y * TB;
  let t1 = min(t0 + TB, p.n);
  var win: array<f32, KMAX>;  // the K - 1 inputs before the current token, oldest first
  var w: array<f32, KMAX>;
  for (var i = 0u; i < K; i++) { w[i] = Wt[c * K + i]; }
  for (var i = 0u; i + 1u < K; i++) {
    let back = K - 1u - i;  // the input `back` tokens before t0
    if (t0 >= back) {
      if (t0 - back < n_real) { win[i] = input(t0 - back, c); }
    } else {
      win[i] = S[c * (K - 1u) + (i + t0)];  // block 0 (t0 = 0): the stored state
    }
  }
  for (var t = t0; t < min(t1, n_real); t++) {
    let xt = input(t, c);
    var s = 0.0;
    for (var i = 0u; i + 1u < K; i++) { s += win[i] * w[i]; }
    s += xt * w[K - 1u];
    for (var i = 0u; i + 2u < K; i++) { win[i] = win[i + 1u]; }
    win[K - 2u] = xt;
    if (BIAS) { s += Bias[c]; }
    Y[t * p.channels + c] = unary(ACT, s);
  }
  for (var t = max(t0, n_real); t < t1; t++) { Y[t * p.channels + c] = 0.0; }
  if (gid.y == 0u) {
    // the new state: the last K - 1 of (old state ++ the step's real inputs)
    var st: array<f32, KMAX>;
    for (var i = 0u; i + 1u < K; i++) {
      let j = n_real + i;  // position in (old state ++ inputs) of new state value i
      if (j < K - 1u) { st[i] = S[c * (K - 1u) + j]; } else { st[i] = input(j - (K - 1u), c); }
    }
    for (var i = 0u; i + 1u < K; i++) { S[c * (K - 1u) + i] = st[i]; }
  }
}
