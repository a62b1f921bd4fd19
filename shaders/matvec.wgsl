// y[t][r] = sum_k W[r][k] * x[t][k]: matrix-vector and matrix-matrix products that read
// GGUF blocks in place. One workgroup of 256 threads computes 256/LANES rows (LANES
// threads a row) for TN tokens (grid: rows*LANES/256 x tokens/TN); each weight block is
// decoded once and used for all TN tokens, so a prefill reads the weights n/TN times.
//
// TYPE (override): 0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 6 Q5_0, 7 Q5_1, 8 Q8_0, 12 Q4_K, 13 Q5_K, 14 Q6_K (ggml ids),
// 30 BF16 widened to F32
// at upload (then x is rounded to bf16 first, as ggml's BF16 dot converts it).
//   F32/F16: x is f32 (for F16 rounded to f16 first, as ggml's F16 dot converts it).
//   Q4_K/Q5_K/Q6_K: x is quantized to Q8_K blocks (quantize_k.wgsl), as ggml's vec_dot_type.
//   Q4_0/Q5_0/Q8_0: x is already quantized to Q8_0 blocks (quantize.wgsl), so the integer
//   block sums are exact and only the float sum order differs from ggml's CPU dot.
//   Q4_1/Q5_1: x as Q8_1 (Q8_0 plus s = d * sum(q) per block, at word x_bsums): each
//   block adds d_w d_x sum(q_w q_x) + m_w s_x.
// Fusions the recorder applies after recording (each saves a dispatch):
//   RES: y = W x + R          (a residual add that only this product feeds)
//   GLU: y = act(W x) * (W2 x) with act = silu (GLU 1) or gelu_tanh at f16 (GLU 2)
//#include f16_round
override TYPE: u32 = 0u;
override TN: u32 = 1u;
override LANES: u32 = 32u;   // 32, 64, 128 or 256
override RES: bool = false;
override GLU: u32 = 0u;
override EXACT: bool = false;      // ggml's x86 sum order for Q4_0/Q5_0/Q8_0 (matvec_lib), LANES 8
override FMA_NATIVE: bool = false;
override REPACKED: bool = false;  // EXACT Q4_0 whose rows ggml repacks (a multiple of 8)
// EXACT Q4_0 or Q4_K, TN 1, LANES 32: REPACKED rows take matvec_lib's chain_dot(_k), others
// the 8-lane order in lanes 0-7 (the 32 lanes let one matvec_multi mix the two)
override CHAIN: bool = false;

struct P {
  K: u32,          // input features (row length)
  N: u32,          // rows of W (output features)
  x_stride: u32,   // words per x row: K (f32) or K/4 (q8 qs)
  x_scales: u32,   // word offset of the q8 scales in x (q8 only)
  y_stride: u32,   // floats per y row
  n: u32,          // tokens
  x_bsums: u32,    // word offset of the Q8_K bsums in x (K-quants), of the Q8_1 sums (Q4_1/Q5_1)
  y_row0: u32,     // first output row (a weight split into row ranges: one dispatch a part)
}

@group(0) @binding(0) var<storage, read> W: array<wword>;
@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<storage, read> R: array<f32>;
@group(0) @binding(5) var<storage, read> W2: array<wword>;
@group(0) @binding(6) var<storage, read> gelu_tab: array<f32>;  // EXACT GLU 2: ggml's f16 gelu table

const TNMAX = 8u;
// [TN][256], sized by the override: workgroup memory is zero-filled at every workgroup's
// start (WGSL's rule), which software adapters (SwiftShader) pay dearly for
// (CHAIN with GLU: at least 512, chain_dot's terms of both weights)
var<workgroup> part: array<f32, max(TN, 2u) * 256u>;
var<workgroup> part2: array<f32, max(TN, 2u) * 256u>;

fn repacked() -> bool { return REPACKED; }

fn wraw(second: bool, i: u32) -> wword {  // weight word i (w_words.wgsl's type)
  if (second) { return W2[i]; }
  return W[i];
}


var<private> OB: u32;

//#include float_exact
//#include w_words
//#include matvec_lib


@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  OB = p.K >> 31u;  // 0, unknown to the compiler (float_exact.wgsl)
  let lane = li % LANES;
  let r = wg.x * (256u / LANES) + li / LANES;
  let t0 = wg.y * TN;
  var mins1 = 0.0;  // EXACT Q5_K: added after the lanes' sum
  var mins2 = 0.0;
  if (TN == 1u) {
    var a1 = 0.0;
    var a2 = 0.0;
    if (CHAIN) {  // (rows that are no chain get zeros, and take the branches below)
      let c = chain_dots(r < p.N, r, t0, li, GLU != 0u);
      a1 = c.x;
      a2 = c.y;
    }
    let in_chain = CHAIN && chained(t0);
    if (r < p.N && exact_type() && !in_chain) {  // any token (the exact path's grid has one token a row of workgroups)
      a1 = row_dots_exact(false, r, t0, lane)[0];
      if (GLU != 0u) { a2 = row_dots_exact(true, r, t0, lane)[0]; }
      if ((TYPE == 13u || (TYPE == 12u && !repacked())) && lane == 0u && t0 < p.n && p.n < 8u) {
        mins1 = kmins(false, r, t0);
        if (GLU != 0u) { mins2 = kmins(true, r, t0); }
      }
    } else if (r < p.N && !in_chain) {
      a1 = row_dot1(false, r, lane);
      if (GLU != 0u) { a2 = row_dot1(true, r, lane); }
    }
    part[li] = a1;
    part2[li] = a2;
  } else {
    var acc: array<f32, TNMAX>;
    var acc2: array<f32, TNMAX>;
    if (r < p.N) {
      acc = row_dots(false, r, t0, lane);
      if (GLU != 0u) { acc2 = row_dots(true, r, t0, lane); }
    }
    for (var t = 0u; t < TN; t++) {
      part[t * 256u + li] = acc[t];
      if (GLU != 0u) { part2[t * 256u + li] = acc2[t]; }
    }
  }
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var t = 0u; t < TN; t++) {
        part[t * 256u + li] += part[t * 256u + li + s];
        if (GLU != 0u) { part2[t * 256u + li] += part2[t * 256u + li + s]; }
      }
    }
    workgroupBarrier();
  }
  if (lane < TN && r < p.N) {
    let tt = t0 + lane;
    if (tt < p.n) {
      var v = part[lane * 256u + (li - lane)] + mins1;
      let up = part2[lane * 256u + (li - lane)] + mins2;
      let o = tt * p.y_stride + p.y_row0 + r;
      if (GLU == 1u) {
        if (EXACT) { v = silu_ggml(v) * up; } else { v = v / (1.0 + exp(-v)) * up; }
      } else if (GLU == 2u) {
        var g: f32;
        if (v <= -10.0) { g = 0.0; } else if (v >= 10.0) { g = v; } else if (EXACT) {
          g = gelu_tab[pack_f16x2(vec2<f32>(v, 0.0)) & 0xFFFFu];
        } else {
          let x = f16r1(v);
          g = f16r1(0.5 * x * (1.0 + tanh_safe(0.79788456080286535587989211986876 * x * (1.0 + 0.044715 * x * x))));
        }
        v = g * up;
      }
      if (RES) { v += R[o]; }
      Y[o] = v;
    }
  }
}
