// Up to three single-token products that read the same input in one dispatch (a fusion
// the recorder applies, e.g. to q, k and v): rows [0, N) of W go to Y, the next N2 rows
// are W2's (to Y2), then N3 of W3 (to Y3). Same kernel body as matvec.wgsl (TN = 1).
override TYPE: u32 = 0u;
override LANES: u32 = 32u;
override EXACT: bool = false;
override FMA_NATIVE: bool = false;
override REPACKED: u32 = 0u;  // EXACT: bit i set when ggml repacks weight i (rows % 8 == 0)
override CHAIN: bool = false;  // EXACT Q4_0/Q4_K, LANES 32: REPACKED weights' rows take matvec_lib's chain_dot(_k)
const TN = 1u;

struct P {
  K: u32, N: u32, x_stride: u32, x_scales: u32, y_stride: u32, n: u32, N2: u32, N3: u32,
  x_bsums: u32, pad0: u32, pad1: u32, pad2: u32,
}
@group(0) @binding(0) var<storage, read> W: array<wword>;
@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<storage, read> W2: array<wword>;
@group(0) @binding(5) var<storage, read> W3: array<wword>;
@group(0) @binding(6) var<storage, read_write> Y2: array<f32>;
@group(0) @binding(7) var<storage, read_write> Y3: array<f32>;

const TNMAX = 8u;
var<workgroup> part: array<f32, 512>;   // [256]: the reduction; with part2: chain_dot(_k)'s block terms
var<workgroup> part2: array<f32, 512>;
var<private> sel: u32;

fn repacked() -> bool { return ((REPACKED >> sel) & 1u) == 1u; }

fn wraw(second: bool, i: u32) -> wword {  // weight word i (w_words.wgsl's type)
  if (sel == 1u) { return W2[i]; }
  if (sel == 2u) { return W3[i]; }
  return W[i];
}

var<private> OB: u32;

//#include float_exact
//#include w_words
//#include matvec_lib

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  OB = p.pad0;
  let lane = li % LANES;
  var r = wg.x * (256u / LANES) + li / LANES;
  sel = 0u;
  if (r >= p.N) {
    r -= p.N;
    sel = 1u;
    if (r >= p.N2) { r -= p.N2; sel = 2u; }
  }
  let valid = (sel == 0u) || (sel == 1u) || r < p.N3;
  var a = 0.0;
  if (CHAIN) {
    a = chain_dots(valid, r, 0u, li, false).x;
  }
  if (valid && !chained(0u)) {
    a = row_dot1(false, r, lane);
  }
  part[li] = a;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { part[li] += part[li + s]; }
    workgroupBarrier();
  }
  if (lane == 0u && valid) {
    var v = part[li];
    if ((TYPE == 13u || (TYPE == 12u && !repacked())) && exact_type()) { v += kmins(false, r, 0u); }
    if (sel == 0u) { Y[r] = v; } else if (sel == 1u) { Y2[r] = v; } else { Y3[r] = v; }
  }
}
