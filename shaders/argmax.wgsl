// Index of the largest of N floats (the first one on ties, as the engine's argmax), in two
// dispatches so a 250k-entry vocabulary is not one workgroup's serial walk: PARTIAL
// workgroups each reduce a slice of X to (value, index) at out[4 + 2g]; the final one
// (PARTIAL false, one workgroup) reduces those p.groups pairs to out[0].
override PARTIAL: bool = false;
struct P { N: u32, off: u32, groups: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: P;

var<workgroup> bv: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;

const NONE = 0xFFFFFFFFu;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  var best = -3.4028234663852886e38;  // -FLT_MAX exactly (Tint rejects a literal past it)
  var idx = NONE;
  if (PARTIAL) {
    let slice = (p.N + p.groups - 1u) / p.groups;
    let end = min(p.N, (wg.x + 1u) * slice);
    for (var i = wg.x * slice + li; i < end; i += 256u) {
      let v = X[p.off + i];
      if (v > best || idx == NONE) { best = v; idx = i; }
    }
  } else {
    for (var g = li; g < p.groups; g += 256u) {  // ascending indices: ties keep the first
      let j = out[5u + 2u * g];
      let v = bitcast<f32>(out[4u + 2u * g]);
      if (j != NONE && (idx == NONE || v > best)) { best = v; idx = j; }
    }
  }
  bv[li] = best; bi[li] = idx;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) {
      let v = bv[li + s]; let j = bi[li + s];
      if (j != NONE && (bi[li] == NONE || v > bv[li] || (v == bv[li] && j < bi[li]))) {
        bv[li] = v; bi[li] = j;
      }
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    if (PARTIAL) {
      out[4u + 2u * wg.x] = bitcast<u32>(bv[0]);
      out[5u + 2u * wg.x] = bi[0];
    } else {
      out[0] = bi[0];
    }
  }
}
