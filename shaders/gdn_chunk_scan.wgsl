// Chunked Gated DeltaNet prefill, part 2 of 2: the state carried from chunk to chunk, one
// workgroup a (value head, block of JB state columns j), sequential over the chunks that
// hold real tokens. With the terms gdn_chunk_prep.wgsl wrote to X (see there), per chunk:
//   U = Ut - W S0;   O = Ot + Qt S0 (the outputs, to y);   S0 <- exp(gam_C) S0 + Kd^T U
// Each column j of the state (of U, of O) only needs column j of S0: the blocks are
// independent. The state block sits in workgroup memory; the state buffer keeps ggml's
// transposed layout (M[j][i] = S[i][j], row j contiguous). Rows of y past the real chunks
// get 0 (padded prompt tokens inside the last real chunk get 0 from part 1's zeros).
const C = 32u;      // tokens a chunk (as gdn_chunk_prep.wgsl)
const JB = 16u;     // state columns a workgroup
//#include gdn_params
@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> St: array<f32>;  // [H][S][S]
@group(0) @binding(2) var<storage, read_write> O: array<u32>;   // y [n][H][S] (f32 bits) at p.y
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<uniform> step: Step;

fn y_set(i: u32, v: f32) { O[p.y + i] = bitcast<u32>(v); }

var<workgroup> Sb: array<vec4<f32>, 512>;     // S0[i][j0 + 4 v .. + 3] at i * 4 + v (S <= 128)
var<workgroup> Ub: array<vec4<f32>, C * 4u>;  // U[r][j0 + 4 v .. + 3] at r * 4 + v

fn sb(i: u32, jj: u32) -> f32 { return Sb[i * 4u + jj / 4u][jj % 4u]; }

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let h = wg.x;
  let j0 = wg.y * JB;
  let S = p.S;
  let S4 = S / 4u;
  let H = p.H;
  let n_real = min(step.n_tokens, p.n);
  let nc = (p.n + C - 1u) / C;
  let ncr = (n_real + C - 1u) / C;
  let R = C * S4;
  for (var e = li; e < S * JB; e += 256u) {
    let jj = e / S;
    let i = e % S;
    Sb[i * 4u + jj / 4u][jj % 4u] = St[(h * S + j0 + jj) * S + i];
  }
  workgroupBarrier();
  let gbase = H * nc * 5u * R;
  for (var c = 0u; c < ncr; c++) {
    let base = (h * nc + c) * 5u * R;
    {  // U and O: thread (r, columns jp, jp + 1)
      let r = li / 8u;
      let jp = (li % 8u) * 2u;
      var u0 = 0.0;
      var u1 = 0.0;
      var o0 = 0.0;
      var o1 = 0.0;
      for (var i4 = 0u; i4 < S4; i4++) {
        let w = X[base + 2u * R + r * S4 + i4];
        let q = X[base + R + r * S4 + i4];
        let i = 4u * i4;
        let s0 = vec4<f32>(sb(i, jp), sb(i + 1u, jp), sb(i + 2u, jp), sb(i + 3u, jp));
        let s1 = vec4<f32>(sb(i, jp + 1u), sb(i + 1u, jp + 1u), sb(i + 2u, jp + 1u), sb(i + 3u, jp + 1u));
        u0 += dot(w, s0);
        u1 += dot(w, s1);
        o0 += dot(q, s0);
        o1 += dot(q, s1);
      }
      let col = (j0 + jp) / 4u;
      let k = (j0 + jp) % 4u;  // (jp even: both columns in one vec4)
      let ut = X[base + 3u * R + r * S4 + col];
      let ot = X[base + 4u * R + r * S4 + col];
      Ub[r * 4u + jp / 4u][jp % 4u] = ut[k] - u0;
      Ub[r * 4u + jp / 4u][jp % 4u + 1u] = ut[k + 1u] - u1;
      let t = c * C + r;
      if (t < p.n) {
        y_set((t * H + h) * S + j0 + jp, ot[k] + o0);
        y_set((t * H + h) * S + j0 + jp + 1u, ot[k + 1u] + o1);
      }
    }
    workgroupBarrier();
    // S0 <- exp(gam_C) S0 + Kd^T U: thread (i, 8 columns)
    let gc = X[gbase + h * nc + c].x;
    for (var e = li; e < S * 2u; e += 256u) {
      let i = e / 2u;
      let v = (e % 2u) * 2u;
      var a0 = Sb[i * 4u + v] * gc;
      var a1 = Sb[i * 4u + v + 1u] * gc;
      for (var r = 0u; r < C; r++) {
        let kd = X[base + r * S4 + i / 4u][i % 4u];
        a0 += kd * Ub[r * 4u + v];
        a1 += kd * Ub[r * 4u + v + 1u];
      }
      Sb[i * 4u + v] = a0;
      Sb[i * 4u + v + 1u] = a1;
    }
    workgroupBarrier();
  }
  for (var t = ncr * C + li / JB; t < p.n; t += 256u / JB) { y_set((t * H + h) * S + j0 + li % JB, 0.0); }
  for (var e = li; e < S * JB; e += 256u) {
    let jj = e / S;
    let i = e % S;
    St[(h * S + j0 + jj) * S + i] = sb(i, jj);
  }
}
