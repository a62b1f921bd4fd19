// Ops for recurrent layers (Mamba's selective scan, Gated DeltaNet) and the helpers the
// hybrid/recurrent architectures need, with the conventions of engine.h: each op adds one
// node to graph g and returns its handle (-1 + eng_last_error on failure).
#ifndef PYLLM_ENGINE_RECURRENT_H
#define PYLLM_ENGINE_RECURRENT_H

#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

ENG_API int32_t eng_concat(int32_t g, int32_t a, int32_t b, int32_t dim);
ENG_API int32_t eng_softplus(int32_t g, int32_t a);
ENG_API int32_t eng_l2_norm(int32_t g, int32_t a, float eps);
// depthwise causal conv: sx [d_conv - 1 + n, channels, n_seqs], c [d_conv, channels] -> [channels, n, n_seqs]
ENG_API int32_t eng_ssm_conv(int32_t g, int32_t sx, int32_t c);
// Mamba selective scan (ggml_ssm_scan, K = 1): output packs y then the final states
ENG_API int32_t eng_ssm_scan(int32_t g, int32_t s, int32_t x, int32_t dt, int32_t A, int32_t B, int32_t C,
                             int32_t ids);
// Gated DeltaNet (ggml_gated_delta_net, K = 1): output packs the attention output then the final state
ENG_API int32_t eng_gated_delta_net(int32_t g, int32_t q, int32_t k, int32_t v, int32_t gate, int32_t beta,
                                    int32_t state);
// multi-section RoPE (M-RoPE / interleaved M-RoPE): pos holds 4 * n_tokens positions
ENG_API int32_t eng_rope_multi(int32_t g, int32_t a, int32_t pos, int32_t n_dims, int32_t s0, int32_t s1, int32_t s2,
                               int32_t s3, int32_t mode, int32_t n_ctx_orig, float freq_base, float freq_scale,
                               float ext_factor, float attn_factor, float beta_fast, float beta_slow);
// positions of n text tokens for M-RoPE: start.. in the first three sections, 0 in the fourth
ENG_API int32_t eng_fill_pos_multi(int32_t t, double start, int32_t n);
// zero a tensor's bytes (a persistent state tensor)
ENG_API int32_t eng_tensor_zero(int32_t t);

#ifdef __cplusplus
}
#endif
#endif
