// f16_io.wgsl's names over native f16 (shader-f16): a vec2<f16> load and a widening
// conversion instead of a u32 load and unpack2x16float. kernels.py hoists the `enable`
// above every declaration.
enable f16;
alias h2 = vec2<f16>;
fn h2f(v: h2) -> vec2<f32> { return vec2<f32>(v); }
