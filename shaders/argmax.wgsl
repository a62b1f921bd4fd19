// Index of the largest of N floats (the first one on ties, as the engine's argmax).
struct P { N: u32, off: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: P;

var<workgroup> bv: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  var best = -3.4028234663852886e38;  // -FLT_MAX exactly (Tint rejects a literal past it)
  var idx = 0xFFFFFFFFu;
  for (var i = li; i < p.N; i += 256u) {
    let v = X[p.off + i];
    if (v > best || idx == 0xFFFFFFFFu) { best = v; idx = i; }
  }
  bv[li] = best; bi[li] = idx;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) {
      let v = bv[li + s]; let j = bi[li + s];
      if (j != 0xFFFFFFFFu && (bi[li] == 0xFFFFFFFFu || v > bv[li] || (v == bv[li] && j < bi[li]))) {
        bv[li] = v; bi[li] = j;
      }
    }
    workgroupBarrier();
  }
  if (li == 0u) { out[0] = bi[0]; }
}
