// Chunked Gated DeltaNet prefill, part 1 of 2: the intra-chunk terms (the WY/UT form of
// the delta rule), one workgroup a (value head, chunk of C tokens), all chunks at once.
// Part 2 (gdn_chunk_scan.wgsl) carries the state across the chunks.
//
// Per head, in a chunk of tokens r = 0..C-1 with log decays g_r, gam_r = g_0 + .. + g_r,
// G_r = exp(gam_r), normalized keys k_r, queries q'_r (the output scale 1/sqrt(S) folded
// in), values v_r, betas b_r, and the state S0 [S_k][S_v] at the chunk's start, the
// sequential rule (gated_delta.wgsl) is, with u_r = b_r (v_r - e^g_r S_{r-1}^T k_r):
//   S_r = e^g_r S_{r-1} + k_r u_r^T,   o_r = S_r^T q'_r
// Unrolled over the chunk: (I + A) U = diag(b) V - diag(b G) K S0, with A strictly lower,
// A[r][s] = b_r exp(gam_r - gam_s) k_r.k_s, so with T = (I + A)^-1:
//   U = Ut - W S0,            Ut = T diag(b) V,  W = T diag(b G) K
//   O = Ot + Qt S0,           Ot = P Ut,  Qt = diag(G) Q' - P W,
//                             P[r][s] = exp(gam_r - gam_s) q'_r.k_s (s <= r)
//   S_C = exp(gam_C) S0 + Kd^T U,   Kd = diag(exp(gam_C - gam_r)) K
// This kernel writes Kd, Qt, W, Ut, Ot ([C][S] each) and exp(gam_C) to the scratch X; the
// decays are products of the tokens' exp(g) in token order (as the sequential rule applies
// them; never a quotient, and no cancellation between large sums of log decays), so strong
// decays underflow to 0 as they do sequentially. T comes from forward substitution, a column a thread.
// Padded tokens (t >= step.n_tokens) get g = b = 0 and k = q = v = 0: they leave the
// state as it is and give 0 outputs. Inputs are read as gated_delta.wgsl reads them
// (views, pending unary ops, the fused decay, beta's sigmoid and L2 norms: same uniform).
//#include rec_view
override UQK: u32 = 0u;
override UV: u32 = 0u;
override BETA_UN: u32 = 0u;
override G_ALPHA: bool = false;
override L2: bool = false;
const C = 32u;      // tokens a chunk (recurrent.GDN_CHUNK)
//#include gdn_params
@group(0) @binding(0) var<storage, read> Qb: array<f32>;
@group(0) @binding(1) var<storage, read> Kb: array<f32>;
@group(0) @binding(2) var<storage, read> Vb: array<f32>;
@group(0) @binding(3) var<storage, read> G: array<f32>;      // [n][H] g, or alpha with G_ALPHA
@group(0) @binding(4) var<storage, read> Beta: array<f32>;   // [n][H]
// [H][chunks][5][C][S/4]: Kd, Qt, W, Ut, Ot; then exp(gam_C) [H][chunks] (.x)
@group(0) @binding(5) var<storage, read_write> X: array<vec4<f32>>;
@group(0) @binding(6) var<uniform> p: P;
@group(0) @binding(7) var<uniform> step: Step;

fn pw(i: u32) -> f32 { return p.w[i / 4u][i % 4u]; }

var<workgroup> gs: array<f32, C>;    // g_r
var<workgroup> Dc: array<f32, C>;    // exp(gam_C - gam_r)
var<workgroup> eg: array<f32, C>;    // exp(gam_r)
var<workgroup> bs: array<f32, C>;    // b_r
var<workgroup> ksc: array<f32, C>;   // k_r's scale (L2)
var<workgroup> qsc: array<f32, C>;   // q_r's scale (L2, and 1/sqrt(S))
var<workgroup> red: array<vec2<f32>, 256>;
var<workgroup> Am: array<f32, C * C>;
var<workgroup> Tm: array<f32, C * C>;
var<workgroup> Pm: array<f32, C * C>;

fn load4(which: u32, b: u32) -> vec4<f32> {
  if (which == 0u) {
    return vec4<f32>(unary(UQK, Kb[b]), unary(UQK, Kb[b + 1u]), unary(UQK, Kb[b + 2u]), unary(UQK, Kb[b + 3u]));
  }
  if (which == 1u) {
    return vec4<f32>(unary(UQK, Qb[b]), unary(UQK, Qb[b + 1u]), unary(UQK, Qb[b + 2u]), unary(UQK, Qb[b + 3u]));
  }
  return vec4<f32>(unary(UV, Vb[b]), unary(UV, Vb[b + 1u]), unary(UV, Vb[b + 2u]), unary(UV, Vb[b + 3u]));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let h = wg.x;
  let c = wg.y;
  let S = p.S;
  let S4 = S / 4u;
  let H = p.H;
  let hq = h % p.Hk;
  let n_real = min(step.n_tokens, p.n);
  let t0 = c * C;
  if (t0 >= n_real) { return; }  // (the scan stops at the last real chunk)
  let nc = (p.n + C - 1u) / C;
  let R = C * S4;                 // vec4s of one [C][S] region
  let base = (h * nc + c) * 5u * R;
  let scale = 1.0 / sqrt(f32(S));
  // per-token scalars, and the L2 sums (8 threads a token)
  if (li < C) {
    let t = t0 + li;
    var g = 0.0;
    var b = 0.0;
    if (t < n_real) {
      let a = G[t * H + h];
      if (G_ALPHA) { g = unary(3u, a + pw(h)) * pw(H + h); } else { g = a; }
      b = unary(BETA_UN, Beta[t * H + h]);
    }
    gs[li] = g;
    bs[li] = b;
  }
  {
    let r = li / 8u;
    let t = t0 + r;
    var sq = 0.0;
    var sk = 0.0;
    if (L2 && t < n_real) {
      let hb = (t * p.Hk + hq) * S;
      for (var e = li % 8u; e < S; e += 8u) {
        let a = unary(UQK, Qb[vidx(p.vq, p.nb2q, hb + e)]);
        let b = unary(UQK, Kb[vidx(p.vk, p.nb2k, hb + e)]);
        sq += a * a;
        sk += b * b;
      }
    }
    red[li] = vec2<f32>(sq, sk);
  }
  workgroupBarrier();
  if (li < C) {
    // decays as products of the tokens' exp(g), in token order (as the sequential rule
    // applies them): D[r][s] = exp(g_s+1) .. exp(g_r) (1 at r = s) into Am, G_r = D[r][-1]
    let s = li;
    var d = 1.0;
    Am[s * C + s] = 1.0;
    for (var r = s + 1u; r < C; r++) {
      d *= exp(gs[r]);
      Am[r * C + s] = d;
    }
    if (s == 0u) {
      var e = 1.0;
      for (var r = 0u; r < C; r++) {
        e *= exp(gs[r]);
        eg[r] = e;
      }
    }
    var sum = vec2<f32>(0.0, 0.0);
    for (var m = 0u; m < 8u; m++) { sum += red[li * 8u + m]; }
    if (L2) {  // ggml's rms_norm(eps / S) * 1/sqrt(S), as gated_delta.wgsl
      ksc[li] = (1.0 / sqrt(sum.y / f32(S) + p.eps)) * scale;
      qsc[li] = (1.0 / sqrt(sum.x / f32(S) + p.eps)) * scale * scale;
    } else {
      ksc[li] = 1.0;
      qsc[li] = scale;
    }
  }
  workgroupBarrier();
  if (li < C) { Dc[li] = Am[(C - 1u) * C + li]; }
  // k, q', v of the chunk into the Kd, Qt and Ot regions (rewritten in place below)
  for (var e = li; e < R; e += 256u) {
    let r = e / S4;
    let i = (e % S4) * 4u;
    let t = t0 + r;
    var kv = vec4<f32>(0.0);
    var qv = vec4<f32>(0.0);
    var vv = vec4<f32>(0.0);
    if (t < n_real) {
      let hb = (t * p.Hk + hq) * S;  // a head is contiguous in the q/k/v views (the recorder checks)
      kv = load4(0u, vidx(p.vk, p.nb2k, hb) + i) * ksc[r];
      qv = load4(1u, vidx(p.vq, p.nb2q, hb) + i) * qsc[r];
      vv = load4(2u, vidx(p.vv, p.nb2v, (t * H + h) * S) + i);
    }
    X[base + e] = kv;
    X[base + R + e] = qv;
    X[base + 4u * R + e] = vv;
  }
  storageBarrier();
  workgroupBarrier();
  // A and P: thread (r, 4 columns s)
  {
    let r = li / 8u;
    let s0 = (li % 8u) * 4u;
    var kk = vec4<f32>(0.0);
    var qk = vec4<f32>(0.0);
    for (var i4 = 0u; i4 < S4; i4++) {
      let kr = X[base + r * S4 + i4];
      let qr = X[base + R + r * S4 + i4];
      for (var m = 0u; m < 4u; m++) {
        let ks = X[base + (s0 + m) * S4 + i4];
        kk[m] += dot(kr, ks);
        qk[m] += dot(qr, ks);
      }
    }
    for (var m = 0u; m < 4u; m++) {
      let s = s0 + m;
      let d = select(0.0, Am[r * C + s], s <= r);
      Am[r * C + s] = select(0.0, bs[r] * d * kk[m], s < r);
      Pm[r * C + s] = d * qk[m];
    }
  }
  workgroupBarrier();
  // T = (I + A)^-1 by forward substitution: thread s owns column s
  if (li < C) {
    let s = li;
    for (var r = 0u; r < C; r++) {
      var v = select(0.0, 1.0, r == s);
      if (r > s) {
        var acc = 0.0;
        for (var m = s; m < r; m++) { acc += Am[r * C + m] * Tm[m * C + s]; }
        v = -acc;
      }
      Tm[r * C + s] = v;
    }
  }
  workgroupBarrier();
  // W = T diag(b G) K, Ut = T diag(b) V
  for (var e = li; e < R; e += 256u) {
    let r = e / S4;
    let i4 = e % S4;
    var w = vec4<f32>(0.0);
    var u = vec4<f32>(0.0);
    for (var s = 0u; s <= r; s++) {
      let tb = Tm[r * C + s] * bs[s];
      w += (tb * eg[s]) * X[base + s * S4 + i4];
      u += tb * X[base + 4u * R + s * S4 + i4];
    }
    X[base + 2u * R + e] = w;
    X[base + 3u * R + e] = u;
  }
  storageBarrier();
  workgroupBarrier();
  // Qt = diag(G) Q' - P W, Ot = P Ut, Kd = diag(exp(gam_C - gam_r)) K
  for (var e = li; e < R; e += 256u) {
    let r = e / S4;
    let i4 = e % S4;
    var q = eg[r] * X[base + R + e];
    var o = vec4<f32>(0.0);
    for (var s = 0u; s <= r; s++) {
      let pv = Pm[r * C + s];
      q -= pv * X[base + 2u * R + s * S4 + i4];
      o += pv * X[base + 3u * R + s * S4 + i4];
    }
    X[base + R + e] = q;
    X[base + 4u * R + e] = o;
    X[base + e] = Dc[r] * X[base + e];
  }
  if (li == 0u) { X[H * nc * 5u * R + h * nc + c] = vec4<f32>(eg[C - 1u], 0.0, 0.0, 0.0); }
}
