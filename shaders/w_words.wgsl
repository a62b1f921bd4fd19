// The word type of the mat-vec kernels' weight bindings: u32 (GGUF blocks read as words).
// kernels.py swaps in w_words_f16.wgsl for an F16 weight (TYPE 1) on a device with
// shader-f16, so its halves load as vec2<f16>; quantized weights always read u32 words.
alias wword = u32;
fn wbits(v: wword) -> u32 { return v; }
fn wh2(v: wword) -> vec2<f32> { return unpack2x16float(v); }
