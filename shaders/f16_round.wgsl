// f32 -> f16 rounded to nearest, ties to even (as F16C's vcvtps2ph and ggml's CPU code),
// whatever the driver does: WGSL leaves pack2x16float's rounding to the implementation, and
// NVIDIA's Vulkan driver does not round to nearest even. Included (//#include f16_round)
// by every kernel that writes or rounds to f16.
fn f16_bits(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  let s = (u >> 16u) & 0x8000u;
  let a = u & 0x7fffffffu;
  if (a > 0x7f800000u) { return s | 0x7e00u; }  // NaN
  if (a >= 0x477ff000u) { return s | 0x7c00u; }  // >= 65520 rounds to infinity
  if (a >= 0x38800000u) {  // normal: keep 10 mantissa bits, ties to even, rebias 127 -> 15
    let r = a + 0xfffu + ((a >> 13u) & 1u);
    return s | ((r - 0x38000000u) >> 13u);
  }
  // subnormal (or zero): a multiple of 2^-24; the scaling is exact, round() ties to even
  return s | u32(round(bitcast<f32>(a) * 16777216.0));
}
fn pack_f16x2(v: vec2<f32>) -> u32 { return f16_bits(v.x) | (f16_bits(v.y) << 16u); }
