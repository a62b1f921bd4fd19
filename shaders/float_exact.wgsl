// ggml's CPU arithmetic, reproduced where its order or its functions differ from what a
// GPU does by default: float-float helpers, an exactly rounded fma, glibc's expf and
// ggml's AVX-512 SIMD expf. Included (//#include float_exact) by kernels that set the
// private OB first.
//
// glibc's expf (sysdeps/ieee754/flt-32/e_expf.c: x N/ln2 = k + r, 2^(k/N) from a 32-entry
// table times a cubic in r, all in double) evaluated in float-float (~46 bits), so the
// f32 result is glibc's wherever glibc's double lies farther than ~2^-46 from a rounding
// boundary: ggml's CPU attention calls expf, and matching its softmax weights bit for bit
// keeps the f16 accumulator roundings that follow identical. Arguments here are <= 0
// (scores minus their running max); results below 2^-126 come back as 0.
//
// Float-float needs each + - * rounded once, as written. Drivers may rewrite float
// algebra (Mesa's lavapipe turns (a + b) - a into b and a*b + a*c into a*(b + c)) and may
// not fuse fma(): every step goes through ob(), an xor with the private OB that the
// includer sets to 0 from a uniform (the compiler cannot see through it), and products
// are split (Dekker) instead of relying on fma.
const EXP_TAB = array<vec2<f32>, 32>(
  vec2<f32>(1.000000000e+00, 0.000000000e+00),
  vec2<f32>(1.021897197e+00, -4.811559862e-08),
  vec2<f32>(1.044273734e+00, 4.833470157e-08),
  vec2<f32>(1.067140460e+00, -5.933751979e-08),
  vec2<f32>(1.090507746e+00, -1.307753994e-08),
  vec2<f32>(1.114386797e+00, -5.435540018e-08),
  vec2<f32>(1.138788581e+00, 5.386222313e-08),
  vec2<f32>(1.163724899e+00, -4.051441493e-08),
  vec2<f32>(1.189207077e+00, 3.797635273e-08),
  vec2<f32>(1.215247393e+00, -3.267394888e-08),
  vec2<f32>(1.241857767e+00, 4.496838102e-08),
  vec2<f32>(1.269050956e+00, 1.419333318e-09),
  vec2<f32>(1.296839595e+00, -4.018999533e-08),
  vec2<f32>(1.325236678e+00, -3.496373324e-08),
  vec2<f32>(1.354255557e+00, -1.012334927e-08),
  vec2<f32>(1.383909941e+00, -5.875577358e-08),
  vec2<f32>(1.414213538e+00, 2.420323497e-08),
  vec2<f32>(1.445180774e+00, 3.324199938e-08),
  vec2<f32>(1.476826191e+00, -4.500898854e-08),
  vec2<f32>(1.509164453e+00, -2.495937323e-08),
  vec2<f32>(1.542210817e+00, 8.070904833e-09),
  vec2<f32>(1.575980902e+00, -5.661025426e-08),
  vec2<f32>(1.610490322e+00, 9.836217174e-09),
  vec2<f32>(1.645755529e+00, -5.124972091e-08),
  vec2<f32>(1.681792855e+00, -2.475532668e-08),
  vec2<f32>(1.718619347e+00, -4.849617596e-08),
  vec2<f32>(1.756252170e+00, -9.235770371e-09),
  vec2<f32>(1.794709086e+00, -1.141504491e-08),
  vec2<f32>(1.834008098e+00, -1.123927795e-08),
  vec2<f32>(1.874167681e+00, -4.663005626e-08),
  vec2<f32>(1.915206552e+00, 9.845328108e-09),
  vec2<f32>(1.957144141e+00, -1.702180441e-08)
);
const INVLN2N = vec2<f32>(4.616624069e+01, 6.163081707e-07);
const EC0 = vec2<f32>(1.693835884e-06, 4.109405755e-14);
const EC1 = vec2<f32>(2.345981047e-04, -6.830501876e-12);
const EC2 = vec2<f32>(2.166084945e-02, -5.540560372e-11);

// +inf from a var, not a literal: Tint (Chrome) rejects a constant expression whose value is inf
fn f32_inf() -> f32 { var b = 0x7f800000u; return bitcast<f32>(b); }

fn ob(v: f32) -> f32 { return bitcast<f32>(bitcast<u32>(v) ^ OB); }
fn ff_two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = ob(a + b);
  let bb = ob(s - a);
  return vec2<f32>(s, ob(ob(a - ob(s - bb)) + ob(b - bb)));
}
fn ff_fast(a: f32, b: f32) -> vec2<f32> {  // |a| >= |b|
  let s = ob(a + b);
  return vec2<f32>(s, ob(b - ob(s - a)));
}
fn ff_split(a: f32) -> vec2<f32> {  // a = hi + lo, 12 significant bits each
  let c = ob(4097.0 * a);
  let hi = ob(c - ob(c - a));
  return vec2<f32>(hi, ob(a - hi));
}
fn ff_two_prod(a: f32, b: f32) -> vec2<f32> {  // a * b exactly, as p + e
  let p = ob(a * b);
  let x = ff_split(a);
  let y = ff_split(b);
  let e = ob(ob(ob(ob(x.x * y.x) - p) + ob(x.x * y.y)) + ob(x.y * y.x));
  return vec2<f32>(p, ob(e + ob(x.y * y.y)));
}
fn fma_exact(a: f32, b: f32, c: f32) -> f32 {  // a * b + c rounded once (but for rare double roundings)
  let p = ff_two_prod(a, b);
  let s = ff_two_sum(p.x, c);
  return ob(s.x + ob(s.y + p.y));
}
// a / b and sqrt(a) rounded once, as the CPU's: Vulkan lets a driver's division and square
// root be 2.5-3 ulp off (NVIDIA's are). The driver's result, its exact remainder (Dekker),
// and one correction step: wrong only where the true value lies within ~2^-40 (relative)
// of a rounding boundary. Where the driver is exact (lavapipe, SwiftShader) they return
// its result unchanged.
fn div_exact(a: f32, b: f32) -> f32 {
  let q = ob(a / b);
  if (q == 0.0 || abs(q) > 3.0e38 || b == 0.0 || q != q) { return q; }
  let pb = ff_two_prod(q, b);
  let r = ob(ob(a - pb.x) - pb.y);  // a - q*b: exact when q is within a few ulp of a/b
  return ob(q + ob(r / b));
}
fn sqrt_exact(a: f32) -> f32 {
  let s = ob(sqrt(a));
  if (s == 0.0 || s > 1.8e19 || s != s) { return s; }
  let ss = ff_two_prod(s, s);
  let r = ob(ob(a - ss.x) - ss.y);
  return ob(s + ob(r / ob(2.0 * s)));
}
fn ff_mul(x: vec2<f32>, y: vec2<f32>) -> vec2<f32> {
  let p = ff_two_prod(x.x, y.x);
  return ff_fast(p.x, ob(p.y + ob(ob(x.x * y.y) + ob(x.y * y.x))));
}
fn ff_add(x: vec2<f32>, y: vec2<f32>) -> vec2<f32> {
  let s = ff_two_sum(x.x, y.x);
  return ff_fast(s.x, ob(s.y + ob(x.y + y.y)));
}

fn expf_glibc(x: f32) -> f32 {
  if (x < -87.33654) { return 0.0; }
  if (x > 88.72283) { return f32_inf(); }
  let z = ff_add(ff_two_prod(INVLN2N.x, x), vec2<f32>(ob(INVLN2N.y * x), 0.0));
  var k = round(z.x);
  let rr = ob(z.x - k) + z.y;
  if (rr > 0.5) { k += 1.0; } else if (rr < -0.5) { k -= 1.0; }
  let r = ff_two_sum(ob(z.x - k), z.y);
  let ki = i32(k);
  let s = EXP_TAB[ki & 31];
  let zz = ff_add(ff_mul(EC0, r), EC1);
  let r2 = ff_mul(r, r);
  var y = ff_add(ff_mul(EC2, r), vec2<f32>(1.0, 0.0));
  y = ff_add(ff_mul(zz, r2), y);
  y = ff_mul(y, s);
  return ldexp(ob(y.x + y.y), ki >> 5u);
}

fn mad(a: f32, b: f32, c: f32) -> f32 {  // a * b + c rounded once, as x86 FMA (ggml's build)
  if (FMA_NATIVE) { return fma(a, b, c); }
  return fma_exact(a, b, c);
}

// ggml_v_expf (ggml-cpu/vec.h, the AVX-512 branch): 2^n times a degree-5 polynomial in b,
// every step a fused multiply-add as there (|n| > 192: 0 below, infinity above, as there).
fn vexpf_ggml(x: f32) -> f32 {
  let r = 12582912.0;  // 0x1.8p23
  let z = mad(x, 1.4426950216293335, r);
  let n = ob(z - r);
  let b = mad(-n, 1.428606765330187e-06, mad(-n, 0.693145751953125, x));
  let u = ob(b * b);
  let j = mad(mad(mad(0.008247390389442444, b, 0.04189976677298546), u,
                  mad(0.16668395698070526, b, 0.4999912679195404)), u,
              mad(0.9999994039535522, b, 1.0));
  if (abs(n) > 192.0) { return select(f32_inf(), 0.0, n <= 0.0); }
  return ldexp(j, i32(n));
}

fn silu_ggml(x: f32) -> f32 { return div_exact(x, ob(1.0 + vexpf_ggml(ob(0.0 - x)))); }
