// The uniform parameters and the step uniform of the Gated DeltaNet kernels (gated_delta,
// gdn_chunk_prep, gdn_chunk_scan: recurrent.py fills one P for all three). Included
// (//#include gdn_params).
const PW = 256u;    // vec4s of p.w: 2 H + S <= 1024 floats
struct P {
  vq: vec4<u32>, vk: vec4<u32>, vv: vec4<u32>,
  S: u32, H: u32, Hk: u32, n: u32,
  nb2q: u32, nb2k: u32, nb2v: u32, scales: u32,   // scales: word offset of the Q8_0 scales from p.q8 (QUANT)
  eps: f32, norm_eps: f32, q8: u32, y: u32,       // eps / S of the L2 norm, eps of the GATE norm; words in O
  w: array<vec4<f32>, PW>,  // G_ALPHA: dt bias [H] at 0, A [H] at H; GATE: norm weight [S] at 2 H
}
struct Step { n_past: u32, n_tokens: u32, pad0: u32, pad1: u32 }
