// w_words.wgsl's names for an F16 weight on a device with shader-f16 (TYPE 1 only: the
// words of other types stay u32, whatever a bitcast through f16 would cost a driver).
enable f16;
alias wword = vec2<f16>;
// naga has no bitcast from vec2<f16>; the F16 path reads wh2, so wbits is dead code there
fn wbits(v: wword) -> u32 { return pack2x16float(vec2<f32>(v)); }
fn wh2(v: wword) -> vec2<f32> { return vec2<f32>(v); }
