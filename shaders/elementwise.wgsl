// Element-wise ops over n elements; b broadcasts by wrapping (b[i % nb]), as ggml's
// add/mul broadcast a [d] vector over [d, n] rows.
//   OP: 0 add, 1 mul, 2 scale (a * s), 3 tanh, 4 swiglu silu(a)*b, 5 geglu gelu_tanh(a)*b
// geglu follows ggml's CPU (GGML_GELU_FP16): gelu looked up at f16 precision.
//#include f16_round
override OP: u32 = 0u;
override EXACT: bool = false;  // swiglu with ggml's AVX-512 expf (float_exact.wgsl), geglu from ggml's table
override FMA_NATIVE: bool = false;
struct P { n: u32, nb: u32, s: f32, pad: u32 }  // pad: 0 (OB)
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@group(0) @binding(4) var<storage, read> gelu_tab: array<f32>;  // EXACT geglu: ggml's f16 gelu table (gelu_table.py)

var<private> OB: u32;

//#include float_exact

fn f16r(v: f32) -> f32 { return unpack2x16float(pack_f16x2(vec2<f32>(v, 0.0))).x; }
fn tanh_safe(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  OB = p.pad;
  let i = gid.y * nw.x * 256u + gid.x;
  if (i >= p.n) { return; }
  let a = A[i];
  var y: f32;
  if (OP == 0u) {
    y = a + B[i % p.nb];
  } else if (OP == 1u) {
    y = a * B[i % p.nb];
  } else if (OP == 2u) {
    y = a * p.s;
  } else if (OP == 3u) {
    y = tanh_safe(a);
  } else if (OP == 4u) {
    if (EXACT) { y = silu_ggml(a) * B[i % p.nb]; } else { y = a / (1.0 + exp(-a)) * B[i % p.nb]; }
  } else {
    var g: f32;
    if (a <= -10.0) { g = 0.0; } else if (a >= 10.0) { g = a; } else if (EXACT) {
      g = gelu_tab[pack_f16x2(vec2<f32>(a, 0.0)) & 0xFFFFu];
    } else {
      let x = f16r(a);
      g = f16r(0.5 * x * (1.0 + tanh_safe(0.79788456080286535587989211986876 * x * (1.0 + 0.044715 * x * x))));
    }
    y = g * B[i % p.nb];
  }
  Y[i] = y;
}
