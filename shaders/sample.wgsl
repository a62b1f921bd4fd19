// One token from a logits row on the GPU: the chain of the engine's C sampler
// (wasm_ext/engine_sampler.cpp, llama.cpp's order): logit bias and repetition penalties
// (host-made edits), then greedy argmax, or top-k -> top-p -> min-p -> temperature -> draw
// with the host's uniform draw r (from the C sampler's own PCG32 stream), so both pick the
// same token from the same distribution position. One workgroup; out = (token, status).
//
// mode 0: greedy (first index of the largest logit).
// mode 1: a sorted candidate list (logit descending, id ascending): the top M logits by a
//         radix select on their order-preserving bit patterns, then a bitonic sort; top-p,
//         min-p, temperature and the draw run over it as the C sampler does.
// mode 2: every token in id order (top-k and top-p off; min-p filters), drawn by chunk sums.
// status: 0 ok; 1 the GPU list cannot hold the answer (ties or a nucleus past CAP
// candidates): the host samples instead; 2 every logit is -inf or NaN.
struct P {
  n: u32, off: u32, n_edits: u32, mode: u32,
  m: u32,          // mode 1: list length (top_k, or CAP when top-k is off)
  min_keep: u32,
  truncated: u32,  // mode 1: the list is not every candidate (top-k off or covering the vocabulary)
  full_sum: u32,   // mode 1: top-p's softmax runs over the whole vocabulary (top-k off)
  top_p: f32, ln_min_p: f32, temperature: f32, r: f32,
  repeat: f32, frequency: f32, presence: f32, min_p_on: u32,
}
const CAP = 1024u;

@group(0) @binding(0) var<storage, read> L: array<f32>;
@group(0) @binding(1) var<storage, read> E: array<vec4<u32>>;   // (id, bias bits, count, 0)
@group(0) @binding(2) var<storage, read_write> V: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<uniform> p: P;

var<workgroup> red_v: array<f32, 256>;
var<workgroup> red_i: array<u32, 256>;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> ck: array<u32, CAP>;     // candidate keys
var<workgroup> ci: array<u32, CAP>;     // candidate ids
var<workgroup> n_cand: atomic<u32>;
var<workgroup> sel: vec2<u32>;          // radix select: (prefix, need)
var<workgroup> shared_u: u32;           // a value every thread branches on (workgroupUniformLoad)

// a var, not a literal: Tint (Chrome) rejects a constant expression whose value is inf
fn neg_inf() -> f32 { var b = 0xff800000u; return bitcast<f32>(b); }

fn key(v: f32) -> u32 {  // order-preserving: a > b as floats <=> key(a) > key(b)
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b >> 31u) == 1u);
}

fn before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool { return ka > kb || (ka == kb && ia < ib); }

// The draws run in thread 0 alone and hold no barrier: their early returns stay inside these
// functions, so main's barriers are all reached in uniform control flow (Tint's uniformity
// analysis rejects a `return` under `li == 0` ahead of a barrier; naga does not check it).
fn out_pair(r: vec2<u32>) { out[0] = r.x; out[1] = r.y; }

// mode 2's draw by thread 0 over the chunk sums in red_v / kept counts in red_i: (token, status)
fn draw_id_order(top: u32, n: u32, cs: u32, thr: f32, t: f32, mxt: f32) -> vec2<u32> {
  var total = 0.0;
  var nk = 0u;
  for (var c = 0u; c < 256u; c++) { total += red_v[c]; nk += red_i[c]; }
  if (nk < max(1u, p.min_keep)) { return vec2<u32>(0u, 1u); }
  var run = 0.0;
  var last = top;
  var found = false;
  for (var c = 0u; c < 256u && !found; c++) {
    if (red_v[c] <= 0.0) { continue; }
    if ((run + red_v[c]) / total <= p.r && c < 255u) { run += red_v[c]; continue; }
    let clo = min(n, c * cs);
    let chi = min(n, clo + cs);
    for (var i = clo; i < chi; i++) {
      let v = V[i];
      if (v < thr) { continue; }
      let w = exp(v / t - mxt);
      if (w <= 0.0) { continue; }
      last = i;
      run += w;
      if (run / total > p.r) { found = true; break; }
    }
  }
  return vec2<u32>(last, 0u);
}

// mode 1's tail by thread 0 over the sorted list (ck, ci) and the full-vocabulary sum in
// red_v[0]: top-p, min-p, temperature, the draw; (token, status)
fn draw_sorted(total: u32, t: f32, mxt: f32) -> vec2<u32> {
  var m = min(p.m, total);
  let l0 = V[ci[0]];
  if (p.top_p < 1.0) {
    var sum = red_v[0];
    if (p.full_sum == 0u) {
      sum = 0.0;
      for (var i = 0u; i < m; i++) { sum += exp(V[ci[i]] - l0); }
    }
    var cum = 0.0;
    var last = 0u;
    for (var i = 0u; i < m; i++) {
      cum += exp(V[ci[i]] - l0) / sum;
      if (cum >= p.top_p && i + 1u >= p.min_keep) { last = i + 1u; break; }
    }
    if (last == 0u && p.truncated != 0u) { return vec2<u32>(0u, 1u); }
    if (last != 0u) { m = last; }
  }
  if (p.min_p_on != 0u) {
    let thr = l0 + p.ln_min_p;
    var kept = 0u;
    while (kept < m && V[ci[kept]] >= thr) { kept++; }
    if (kept == m && p.truncated != 0u && p.top_p >= 1.0) { return vec2<u32>(0u, 1u); }
    if (kept >= max(1u, p.min_keep)) { m = kept; } else { m = min(m, p.min_keep); }
  }
  if (m == 1u) { return vec2<u32>(ci[0], 0u); }
  var sum = 0.0;
  for (var i = 0u; i < m; i++) { sum += exp(V[ci[i]] / t - mxt); }
  var run = 0.0;
  var pick = 0u;
  var found = false;
  for (var i = 0u; i < m; i++) {
    let pi = exp(V[ci[i]] / t - mxt) / sum;
    if (pi <= 0.0) { continue; }
    pick = i;
    run += pi;
    if (run > p.r) { found = true; break; }
  }
  if (!found && p.truncated != 0u && p.top_p >= 1.0 && p.min_p_on == 0u) { return vec2<u32>(0u, 1u); }
  return vec2<u32>(ci[pick], 0u);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  let n = p.n;
  // the row, with NaN as -inf (as the C sampler builds candidates), then the edits
  for (var i = li; i < n; i += 256u) {
    let v = L[p.off + i];
    V[i] = select(v, neg_inf(), v != v);
  }
  storageBarrier();
  workgroupBarrier();
  for (var e = li; e < p.n_edits; e += 256u) {
    let ed = E[e];
    var v = V[ed.x] + bitcast<f32>(ed.y);
    if (ed.z > 0u) {
      v = select(v / p.repeat, v * p.repeat, v <= 0.0);
      v -= f32(ed.z) * p.frequency + p.presence;
    }
    V[ed.x] = v;
  }
  storageBarrier();
  workgroupBarrier();

  // the largest logit (first index on ties)
  var best = neg_inf();
  var bi = 0xFFFFFFFFu;
  for (var i = li; i < n; i += 256u) {
    let v = V[i];
    if (v > best) { best = v; bi = i; }
  }
  red_v[li] = best; red_i[li] = bi;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) {
      let v = red_v[li + s]; let j = red_i[li + s];
      if (v > red_v[li] || (v == red_v[li] && j < red_i[li])) { red_v[li] = v; red_i[li] = j; }
    }
    workgroupBarrier();
  }
  let mx = red_v[0];
  let top = workgroupUniformLoad(&red_i[0]);
  if (top == 0xFFFFFFFFu) {  // nothing above -inf
    if (li == 0u) { out[0] = 0u; out[1] = 2u; }
    return;
  }
  if (p.mode == 0u) {
    if (li == 0u) { out[0] = top; out[1] = 0u; }
    return;
  }
  let t = p.temperature;
  let mxt = mx / t;

  if (p.mode == 2u) {
    // id order: thread li owns ids [li * cs, (li + 1) * cs)
    var thr = neg_inf();
    if (p.min_p_on != 0u) { thr = mx + p.ln_min_p; }
    let cs = (n + 255u) / 256u;
    let lo = min(n, li * cs);
    let hi = min(n, lo + cs);
    var s = 0.0;
    var kept = 0u;
    for (var i = lo; i < hi; i++) {
      let v = V[i];
      if (v >= thr) { s += exp(v / t - mxt); kept++; }
    }
    red_v[li] = s; red_i[li] = kept;
    workgroupBarrier();
    if (li == 0u) { out_pair(draw_id_order(top, n, cs, thr, t, mxt)); }
    return;
  }

  // mode 1: the top m keys by radix select (8 bits a pass), ties included
  if (li == 0u) { sel = vec2<u32>(0u, p.m); atomicStore(&n_cand, 0u); }
  var mask = 0u;
  for (var ps = 0u; ps < 4u; ps++) {
    let shift = 24u - 8u * ps;
    atomicStore(&hist[li], 0u);
    workgroupBarrier();
    let prefix = sel.x;
    for (var i = li; i < n; i += 256u) {
      let k = key(V[i]);
      if ((k & mask) == prefix) { atomicAdd(&hist[(k >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (li == 0u) {
      var need = sel.y;
      var d = 255u;
      loop {
        let h = atomicLoad(&hist[d]);
        if (h >= need || d == 0u) { break; }
        need -= h;
        d--;
      }
      sel = vec2<u32>(prefix | (d << shift), need);
    }
    mask |= 255u << shift;
    workgroupBarrier();
  }
  let thr_key = sel.x;
  for (var i = li; i < n; i += 256u) {
    let k = key(V[i]);
    if (k >= thr_key) {
      let slot = atomicAdd(&n_cand, 1u);
      if (slot < CAP) { ck[slot] = k; ci[slot] = i; }
    }
  }
  workgroupBarrier();
  if (li == 0u) { shared_u = atomicLoad(&n_cand); }
  let total = workgroupUniformLoad(&shared_u);
  if (total > CAP) {  // too many ties at the threshold for the list
    if (li == 0u) { out[0] = 0u; out[1] = 1u; }
    return;
  }
  var size = 1u;
  while (size < total) { size <<= 1u; }
  for (var i = total + li; i < size; i += 256u) { ck[i] = 0u; ci[i] = 0xFFFFFFFFu; }
  workgroupBarrier();
  // bitonic sort: best first
  for (var k = 2u; k <= size; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      for (var i = li; i < size; i += 256u) {
        let l = i ^ j;
        if (l > i) {
          let up = (i & k) == 0u;
          let a_first = before(ck[i], ci[i], ck[l], ci[l]);
          if (a_first != up) {
            let tk = ck[i]; ck[i] = ck[l]; ck[l] = tk;
            let ti = ci[i]; ci[i] = ci[l]; ci[l] = ti;
          }
        }
      }
      workgroupBarrier();
    }
  }
  // softmax denominator over the whole vocabulary, when top-p sees every token
  var fs = 0.0;
  if (p.full_sum != 0u && p.top_p < 1.0) {
    for (var i = li; i < n; i += 256u) { fs += exp(V[i] - mx); }
  }
  red_v[li] = fs;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { red_v[li] += red_v[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u) { out_pair(draw_sorted(total, t, mxt)); }
}
