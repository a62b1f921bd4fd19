// The sampler: turns one row of F32 logits (an engine tensor) into a token id.
//
// The chain is llama.cpp's default order (common/sampling.cpp):
//   logit bias -> repetition/frequency/presence penalties -> top-k -> typical-p -> top-p
//   -> min-p -> temperature -> draw
// A temperature <= 0 is greedy: the argmax of the biased and penalised logits (the first
// index among equal maxima), with no random draw.
//
// Randomness comes from our own PCG32 (XSH-RR 64/32) stream, and every number that decides
// which token is drawn is computed in double precision with our own exp/log from basic
// IEEE operations only, so one seed gives the same tokens on every build (native, wasm).
// Same conventions as engine.h: int32 handles, int32/float/pointer arguments, -1 + error.
#ifndef PYLLM_ENGINE_SAMPLER_H
#define PYLLM_ENGINE_SAMPLER_H

#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

ENG_API int32_t eng_sampler_new(void);
ENG_API void    eng_sampler_free(int32_t s);
// The 64-bit seed travels as two int32 halves (bit patterns of the unsigned halves).
ENG_API int32_t eng_sampler_seed(int32_t s, int32_t seed_hi, int32_t seed_lo);
// top_k <= 0, typical_p >= 1, top_p >= 1 and min_p <= 0 switch that stage off.
ENG_API int32_t eng_sampler_set_chain(int32_t s, int32_t top_k, float typical_p, float top_p, float min_p,
                                      float temperature, int32_t min_keep);
// Penalties apply to the ids passed to each eng_sampler_sample call (the recent window).
ENG_API int32_t eng_sampler_set_penalties(int32_t s, float repeat, float frequency, float presence);
// Copies n (id, bias) pairs; -INFINITY bans a token. n = 0 clears.
ENG_API int32_t eng_sampler_set_bias(int32_t s, const int32_t * ids, const float * bias, int32_t n);
// Draw a token from row `row` of the F32 tensor `logits` ([n_vocab, n_rows]).
ENG_API int32_t eng_sampler_sample(int32_t s, int32_t logits, int32_t row, const int32_t * recent, int32_t n_recent);
// The candidates left by the last sample and the probabilities they were drawn with
// (in draw order); returns how many were written (at most max).
ENG_API int32_t eng_sampler_candidates(int32_t s, int32_t * ids, float * probs, int32_t max);
// The next uniform double in [0, 1) of the stream (the draw a sample would use).
ENG_API double  eng_sampler_uniform(int32_t s);

#ifdef __cplusplus
}
#endif
#endif
