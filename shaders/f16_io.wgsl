// f16 data in storage (the KV cache, F16 weights) without shader-f16: two halves packed in
// a u32, widened with unpack2x16float. kernels.py swaps in f16_io_f16.wgsl (the same
// names over native vec2<f16>) when the device has shader-f16. Reading is exact either way
// (every f16 is an f32); writers keep pack_f16x2 (f16_round.wgsl) for its rounding.
alias h2 = u32;
fn h2f(v: h2) -> vec2<f32> { return unpack2x16float(v); }
