// Gated DeltaNet (Qwen 3.5's linear attention) over a persistent state, one workgroup a
// value head, the head's S x S state in registers for the whole step (VPL4 vec4s of one
// row per thread, 256 / S threads a row), sequential over the step's tokens. As
// ggml_gated_delta_net with the state stored transposed (M[j][i] = S[i][j], row j
// contiguous), per token t:
//   M *= exp(g_t);  d_j = (v_j - M[j] . k) * beta_t;  M[j] += d_j k;  o_j = M[j] . q / sqrt(S)
// q, k are read from head h % H_k (ggml's broadcast). Only the step's real tokens
// (step.n_tokens) advance the state; padded rows get 0.
// Fusions the recorder applies (each saves a dispatch or more):
//   UQK, UV, BETA_UN: a unary op pending on q and k / on v / on beta (sigmoid)
//   G_ALPHA: g = softplus(alpha + dt_bias) * A from the raw product (Qwen 3.5's decay)
//   L2: q, k L2-normalized here (ggml's rms_norm(eps / S) then * 1/sqrt(S))
//   GATE: y = RMSNorm(o) * w * silu(z) per head and token, written over o
//   QUANT (with GATE): y also as Q8_0 blocks for the next product (quantize.wgsl's layout)
// SCAN false: only the GATE (and QUANT) tail over a y that gdn_chunk_scan.wgsl wrote (the
// chunked prefill), the step's tokens split over the grid's y workgroups.
// Storage bindings (at most 8 a shader stage, WebGPU's default): y and the Q8_0 blocks are
// slices of one buffer O (words p.y and p.q8; y stored as bits), and the small per-head /
// per-channel weights (dt bias, A, the GATE norm weight) ride in the uniform (p.w).
//#include rec_view
//#include f16_round
override VPL4: u32 = 16u;   // S * S / 1024: vec4s of state a thread holds (16 for S = 128)
override UQK: u32 = 0u;
override UV: u32 = 0u;
override BETA_UN: u32 = 0u;
override G_ALPHA: bool = false;
override L2: bool = false;
override GATE: bool = false;
override QUANT: bool = false;
override SCAN: bool = true;
const NMAX = 512u;  // tokens a step (the runner's batch)
//#include gdn_params
@group(0) @binding(0) var<storage, read> Qb: array<f32>;
@group(0) @binding(1) var<storage, read> Kb: array<f32>;
@group(0) @binding(2) var<storage, read> Vb: array<f32>;
@group(0) @binding(3) var<storage, read> G: array<f32>;      // [n][H] g, or alpha with G_ALPHA
@group(0) @binding(4) var<storage, read> Beta: array<f32>;   // [n][H]
@group(0) @binding(5) var<storage, read_write> St: array<vec4<f32>>;  // [H][S][S]
@group(0) @binding(6) var<storage, read_write> O: array<u32>;   // y [n][H][S] (f32 bits) at p.y, Q8_0 at p.q8
@group(0) @binding(7) var<uniform> p: P;
@group(0) @binding(8) var<uniform> step: Step;
@group(0) @binding(9) var<storage, read> Z: array<f32>;     // GATE: z [n][H][S]

fn pw(i: u32) -> f32 { return p.w[i / 4u][i % 4u]; }
fn y_get(i: u32) -> f32 { return bitcast<f32>(O[p.y + i]); }
fn y_set(i: u32, v: f32) { O[p.y + i] = bitcast<u32>(v); }

var<workgroup> red_k: array<f32, 256>;
var<workgroup> red_q: array<f32, 256>;
var<workgroup> ksc: array<f32, NMAX>;
var<workgroup> qsc: array<f32, NMAX>;
var<workgroup> kq: array<vec4<f32>, 64>;  // this token's k (S values) then q (S values), ready to use

fn qk(which: u32, e: u32) -> f32 {
  if (which == 0u) { return unary(UQK, Qb[vidx(p.vq, p.nb2q, e)]); }
  return unary(UQK, Kb[vidx(p.vk, p.nb2k, e)]);
}

// Sums (op 0) or maxima (op 1) of a and b over each group of 32 threads; every thread
// gets its group's result. Called by the whole workgroup (it has barriers).
fn group_reduce(li: u32, a: f32, b: f32, op: u32) -> vec2<f32> {
  let lane = li % 32u;
  red_k[li] = a;
  red_q[li] = b;
  workgroupBarrier();
  for (var k = 16u; k > 0u; k >>= 1u) {
    if (lane < k) {
      if (op == 0u) {
        red_k[li] += red_k[li + k];
        red_q[li] += red_q[li + k];
      } else {
        red_k[li] = max(red_k[li], red_k[li + k]);
        red_q[li] = max(red_q[li], red_q[li + k]);
      }
    }
    workgroupBarrier();
  }
  let r = vec2<f32>(red_k[li - lane], red_q[li - lane]);
  workgroupBarrier();
  return r;
}

// One token's inputs as read (before activation and scaling): this thread's 4 k and q
// values (threads < S / 4), its row's v, and the head's g (or alpha) and beta.
struct TokenIn { k: vec4<f32>, q: vec4<f32>, gb: vec4<f32> }

fn load_token(t: u32, li: u32, hq: u32, h: u32, j: u32, n_real: u32) -> TokenIn {
  var r: TokenIn;
  if (t >= n_real) { return r; }
  let S = p.S;
  if (li < S / 4u) {
    let head = (t * p.Hk + hq) * S;  // the recorder checks that a head is contiguous in the q/k views
    let kb = vidx(p.vk, p.nb2k, head) + 4u * li;
    let qb = vidx(p.vq, p.nb2q, head) + 4u * li;
    r.k = vec4<f32>(unary(UQK, Kb[kb]), unary(UQK, Kb[kb + 1u]), unary(UQK, Kb[kb + 2u]), unary(UQK, Kb[kb + 3u]));
    r.q = vec4<f32>(unary(UQK, Qb[qb]), unary(UQK, Qb[qb + 1u]), unary(UQK, Qb[qb + 2u]), unary(UQK, Qb[qb + 3u]));
  }
  r.gb = vec4<f32>(G[t * p.H + h], Beta[t * p.H + h], Vb[vidx(p.vv, p.nb2v, (t * p.H + h) * S) + j], 0.0);
  return r;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let h = wg.x;
  let S = p.S;
  let L = 256u / S;               // threads a row
  let j = li / L;
  let i0 = (li % L) * VPL4 * 4u;  // first column this thread holds
  let hq = h % p.Hk;
  let scale = 1.0 / sqrt(f32(S));
  let n_real = min(min(step.n_tokens, p.n), NMAX);
  let grp = li / 32u;             // 8 groups of 32 threads for the per-token reductions
  let lane = li % 32u;
  let tpw = (p.n + nwg.y - 1u) / nwg.y;  // tokens a workgroup in the GATE / QUANT tail
  let t_lo = wg.y * tpw;
  let t_hi = min(t_lo + tpw, p.n);
  if (SCAN) {
  if (L2) {  // the per-token scales of q and k first: 8 tokens at a time, 32 threads a token
    for (var t0 = 0u; t0 < n_real; t0 += 8u) {
      let t = t0 + grp;
      var sq = 0.0;
      var sk = 0.0;
      if (t < n_real) {
        let base = (t * p.Hk + hq) * S;
        for (var e = lane; e < S; e += 32u) {
          let a = qk(0u, base + e);
          let b = qk(1u, base + e);
          sq += a * a;
          sk += b * b;
        }
      }
      let r = group_reduce(li, sq, sk, 0u);
      if (t < n_real && lane == 0u) {
        qsc[t] = 1.0 / sqrt(r.x / f32(S) + p.eps);
        ksc[t] = 1.0 / sqrt(r.y / f32(S) + p.eps);
      }
    }
    workgroupBarrier();
  }
  var m: array<vec4<f32>, 16>;
  let sbase = ((h * S + j) * S + i0) / 4u;
  for (var c = 0u; c < VPL4; c++) { m[c] = St[sbase + c]; }
  // the loop is latency-bound (a few barriers a token): the next token's inputs are loaded
  // while this one computes (software pipelining; the loads do not depend on the state)
  var raw = load_token(0u, li, hq, h, j, n_real);
  for (var t = 0u; t < n_real; t++) {
    let cur = raw;
    var g: f32;
    if (G_ALPHA) {
      g = unary(3u, cur.gb.x + pw(h)) * pw(p.H + h);
    } else {
      g = cur.gb.x;
    }
    let beta = unary(BETA_UN, cur.gb.y);
    let vj = unary(UV, cur.gb.z);
    // stage k_t and q_t once for the workgroup (each thread would otherwise load and
    // activate the same values): thread i < S / 4 takes k and q values 4i .. 4i + 3
    if (li < S / 4u) {
      var kv = cur.k;
      var qv = cur.q;
      if (L2) {
        kv = (kv * ksc[t]) * scale;
        qv = (qv * qsc[t]) * scale;
      }
      kq[li] = kv;
      kq[S / 4u + li] = qv;
    }
    raw = load_token(t + 1u, li, hq, h, j, n_real);
    workgroupBarrier();
    let eg = exp(g);
    var pk = 0.0;
    for (var c = 0u; c < VPL4; c++) {
      m[c] = m[c] * eg;
      pk += dot(m[c], kq[i0 / 4u + c]);
    }
    red_k[li] = pk;
    workgroupBarrier();
    var sk = 0.0;
    for (var l = 0u; l < L; l++) { sk += red_k[j * L + l]; }
    let d = (vj - sk) * beta;
    var pq = 0.0;
    for (var c = 0u; c < VPL4; c++) {
      m[c] = m[c] + d * kq[i0 / 4u + c];
      pq += dot(m[c], kq[S / 4u + i0 / 4u + c]);
    }
    red_q[li] = pq;
    workgroupBarrier();
    if (li % L == 0u) {
      var sq = 0.0;
      for (var l = 0u; l < L; l++) { sq += red_q[j * L + l]; }
      y_set((t * p.H + h) * S + j, sq * scale);
    }
  }
  for (var c = 0u; c < VPL4; c++) { St[sbase + c] = m[c]; }
  for (var t = n_real + li / S; t < p.n; t += L) { y_set((t * p.H + h) * S + li % S, 0.0); }
  }
  if (GATE) {
    storageBarrier();
    workgroupBarrier();
    for (var t0 = t_lo; t0 < min(n_real, t_hi); t0 += 8u) {  // RMSNorm of each token's head, 32 threads a token
      let t = t0 + grp;
      let base = (t * p.H + h) * S;
      var s = 0.0;
      let live = t < min(n_real, t_hi);
      if (live) {
        for (var e = lane; e < S; e += 32u) { let v = y_get(base + e); s += v * v; }
      }
      let r = group_reduce(li, s, 0.0, 0u);
      if (live) {
        let sc = 1.0 / sqrt(r.x / f32(S) + p.norm_eps);
        for (var e = lane; e < S; e += 32u) {
          y_set(base + e, (y_get(base + e) * sc) * pw(2u * p.H + e) * unary(1u, Z[base + e]));
        }
      }
    }
    if (QUANT) {
      storageBarrier();
      workgroupBarrier();
      let bph = S / 32u;  // Q8_0 blocks a head, 32 threads a block, padded rows too (zeros)
      for (var b0 = t_lo * bph; b0 < t_hi * bph; b0 += 8u) {
        let b = b0 + grp;
        let live = b < t_hi * bph;
        let o = ((b / bph) * p.H + h) * S + (b % bph) * 32u;
        var v = 0.0;
        if (live) { v = y_get(o + lane); }
        let r = group_reduce(li, abs(v), 0.0, 1u);
        if (live && lane < 8u) {
          let amax = r.x;
          let id = select(0.0, 127.0 / amax, amax != 0.0);
          let w = vec4<f32>(y_get(o + 4u * lane), y_get(o + 4u * lane + 1u), y_get(o + 4u * lane + 2u), y_get(o + 4u * lane + 3u));
          O[p.q8 + o / 4u + lane] = pack4xI8(vec4<i32>(round(w * id)));
          if (lane == 0u) {
            O[p.q8 + p.scales + o / 32u] = bitcast<u32>(unpack2x16float(pack_f16x2(vec2<f32>(amax / 127.0, 0.0))).x);
          }
        }
      }
    }
  }
}
