// Rows of a (possibly quantized) table: Y[t][k] = dequant(W[ids[t]][k]); embeddings
// (get_rows on Q4_0/Q8_0/F16/F32 tables) and output-row selection (F32).
// TYPE: 0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 6 Q5_0, 7 Q5_1, 8 Q8_0, 12 Q4_K, 13 Q5_K, 14 Q6_K.
//#include f16_round
override TYPE: u32 = 0u;
// A table split into row ranges (larger than a storage binding) takes one dispatch a
// part: rows outside [lo, hi) are left to the other parts' dispatches.
struct P { D: u32, n: u32, id_off: u32, w_off: u32, lo: u32, hi: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;

fn u16at(i: u32) -> u32 { return (W[i >> 1u] >> ((i & 1u) * 16u)) & 0xFFFFu; }
fn f16at(i: u32) -> f32 { return unpack2x16float(u16at(i)).x; }
fn kb(w0: u32, k: u32) -> u32 { return (W[w0 + (k >> 2u)] >> ((k & 3u) * 8u)) & 0xFFu; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.y * nw.x * 256u + gid.x;
  if (i >= p.D * p.n) { return; }
  let t = i / p.D;
  let k = i % p.D;
  let id = ids[p.id_off + t];
  if (id < p.lo || id >= p.hi) { return; }
  let row = id - p.lo;
  var v: f32;
  if (TYPE == 0u) {
    v = bitcast<f32>(W[p.w_off + row * p.D + k]);
  } else if (TYPE == 1u) {
    v = f16at(p.w_off + row * p.D + k);
  } else if (TYPE == 2u) {
    let s = p.w_off + (row * (p.D / 32u) + k / 32u) * 9u;
    let j = k % 32u;
    let byte = u16at(s + 1u + (j % 16u) / 2u) >> (((j % 16u) & 1u) * 8u);
    let q = select(byte & 0xFu, (byte >> 4u) & 0xFu, j >= 16u);
    v = (f32(q) - 8.0) * f16at(s);
  } else if (TYPE == 12u || TYPE == 13u) {
    var w0 = (row * (p.D / 256u) + k / 256u) * 36u + p.w_off / 2u;
    if (TYPE == 13u) { w0 = (row * (p.D / 256u) + k / 256u) * 44u + p.w_off / 2u; }
    let kk = k % 256u;
    let j = kk / 32u;
    let dd = unpack2x16float(W[w0]);
    var sc: u32;
    var m: u32;
    if (j < 4u) {
      sc = kb(w0 + 1u, j) & 63u; m = kb(w0 + 1u, j + 4u) & 63u;
    } else {
      sc = (kb(w0 + 1u, j + 4u) & 0xFu) | ((kb(w0 + 1u, j - 4u) >> 6u) << 4u);
      m = (kb(w0 + 1u, j + 4u) >> 4u) | ((kb(w0 + 1u, j) >> 6u) << 4u);
    }
    var q: u32;
    if (TYPE == 12u) {
      q = (kb(w0 + 4u, (j / 2u) * 32u + kk % 32u) >> ((j & 1u) * 4u)) & 0xFu;
    } else {  // Q5_K: qh[32] then qs[128]; bit j of qh byte (kk % 32) is the fifth bit
      q = ((kb(w0 + 12u, (j / 2u) * 32u + kk % 32u) >> ((j & 1u) * 4u)) & 0xFu)
        | (((kb(w0 + 4u, kk % 32u) >> j) & 1u) << 4u);
    }
    v = dd.x * f32(sc) * f32(q) - dd.y * f32(m);
  } else if (TYPE == 14u) {
    let s = (row * (p.D / 256u) + k / 256u) * 105u + p.w_off;
    let kk = k % 256u;
    let h = kk / 128u;
    let l = kk % 32u;
    let qq = (kk % 128u) / 32u;          // which of the four 32-value groups
    let qlb = h * 64u + l + (qq & 1u) * 32u;
    let qlv = (u16at(s + qlb / 2u) >> ((qlb & 1u) * 8u)) & 0xFFu;
    let nib = select(qlv & 0xFu, qlv >> 4u, qq >= 2u);
    let qhb = 128u + h * 32u + l;
    let qhv = (u16at(s + qhb / 2u) >> ((qhb & 1u) * 8u)) & 0xFFu;
    let q = i32(nib | (((qhv >> (2u * qq)) & 3u) << 4u)) - 32;
    let scb = 192u + h * 8u + l / 16u + 2u * qq;
    let scv = extractBits(bitcast<i32>(u16at(s + scb / 2u) >> ((scb & 1u) * 8u)), 0u, 8u);
    v = f16at(s + 104u) * f32(scv) * f32(q);
  } else if (TYPE == 3u || TYPE == 7u) {  // Q4_1 (20-byte blocks), Q5_1 (24): d, m, [qh,] qs; x = q * d + m
    var bsz = 10u;
    if (TYPE == 7u) { bsz = 12u; }
    let s = p.w_off + (row * (p.D / 32u) + k / 32u) * bsz;
    let j = k % 32u;
    var qs = s + 2u;
    var hb = 0u;
    if (TYPE == 7u) {
      qs = s + 4u;
      hb = (((u16at(s + 2u) | (u16at(s + 3u) << 16u)) >> j) & 1u) << 4u;
    }
    let byte = u16at(qs + (j % 16u) / 2u) >> (((j % 16u) & 1u) * 8u);
    let q = select(byte & 0xFu, (byte >> 4u) & 0xFu, j >= 16u) | hb;
    v = fma(f32(q), f16at(s), f16at(s + 1u));
  } else if (TYPE == 6u) {
    let s = p.w_off + (row * (p.D / 32u) + k / 32u) * 11u;
    let j = k % 32u;
    let qh = u16at(s + 1u) | (u16at(s + 2u) << 16u);
    let byte = u16at(s + 3u + (j % 16u) / 2u) >> (((j % 16u) & 1u) * 8u);
    let lo = select(byte & 0xFu, (byte >> 4u) & 0xFu, j >= 16u);
    let q = lo | (((qh >> j) & 1u) << 4u);
    v = (f32(q) - 16.0) * f16at(s);
  } else {
    let s = p.w_off + (row * (p.D / 32u) + k / 32u) * 17u;
    let j = k % 32u;
    let byte = (u16at(s + 1u + j / 2u) >> ((j & 1u) * 8u)) & 0xFFu;
    v = f32(extractBits(bitcast<i32>(byte), 0u, 8u)) * f16at(s);
  }
  Y[i] = v;
}
