// Recurrent-layer ops over ggml (see engine_recurrent.h).
#include "engine_recurrent.h"
#include "engine_internal.h"

#include <cstring>

using eng::node;
using eng::set_error;

extern "C" {

int32_t eng_concat(int32_t gh, int32_t a, int32_t b, int32_t dim) {
    GET_GRAPH(gh); GET(A, a); GET(B, b);
    if (dim < 0 || dim > 3) { set_error("concat dim %d", dim); return -1; }
    return node(G, ggml_concat(G->ctx, A, B, dim));
}

int32_t eng_softplus(int32_t gh, int32_t a) { GET_GRAPH(gh); GET(A, a); return node(G, ggml_softplus(G->ctx, A)); }

int32_t eng_l2_norm(int32_t gh, int32_t a, float eps) { GET_GRAPH(gh); GET(A, a); return node(G, ggml_l2_norm(G->ctx, A, eps)); }

int32_t eng_ssm_conv(int32_t gh, int32_t sx, int32_t c) {
    GET_GRAPH(gh); GET(SX, sx); GET(C, c);
    if (C->type != GGML_TYPE_F32 || SX->type != GGML_TYPE_F32) { set_error("ssm_conv needs F32 tensors"); return -1; }
    if (SX->ne[1] != C->ne[1] || SX->ne[0] < C->ne[0] - 1) { set_error("ssm_conv shapes do not match"); return -1; }
    return node(G, ggml_ssm_conv(G->ctx, SX, C));
}

int32_t eng_ssm_scan(int32_t gh, int32_t s, int32_t x, int32_t dt, int32_t A_, int32_t B_, int32_t C_, int32_t ids) {
    GET_GRAPH(gh); GET(S, s); GET(X, x); GET(DT, dt); GET(A, A_); GET(B, B_); GET(C, C_); GET(I, ids);
    if (A->type != GGML_TYPE_F32) { set_error("ssm_scan needs an F32 A"); return -1; }
    return node(G, ggml_ssm_scan(G->ctx, S, X, DT, A, B, C, I, 1));
}

int32_t eng_gated_delta_net(int32_t gh, int32_t q, int32_t k, int32_t v, int32_t gate, int32_t beta, int32_t state) {
    GET_GRAPH(gh); GET(Q, q); GET(K, k); GET(V, v); GET(Gt, gate); GET(Bt, beta); GET(S, state);
    if (Q->ne[0] != V->ne[0] || V->ne[1] % Q->ne[1] != 0 || S->ne[0] != V->ne[0] || S->ne[1] != V->ne[0] ||
        S->ne[2] != V->ne[1]) {
        set_error("gated_delta_net shapes do not match");
        return -1;
    }
    return node(G, ggml_gated_delta_net(G->ctx, Q, K, V, Gt, Bt, S, 1));
}

int32_t eng_rope_multi(int32_t gh, int32_t a, int32_t pos, int32_t n_dims, int32_t s0, int32_t s1, int32_t s2, int32_t s3,
                       int32_t mode, int32_t n_ctx_orig, float freq_base, float freq_scale, float ext_factor,
                       float attn_factor, float beta_fast, float beta_slow) {
    GET_GRAPH(gh); GET(A, a); GET(P, pos);
    if (P->ne[0] != 4 * A->ne[2]) { set_error("rope_multi needs 4 positions per token"); return -1; }
    int sections[GGML_MROPE_SECTIONS] = {s0, s1, s2, s3};
    return node(G, ggml_rope_multi(G->ctx, A, P, nullptr, n_dims, sections, mode, n_ctx_orig, freq_base, freq_scale,
                                   ext_factor, attn_factor, beta_fast, beta_slow));
}

int32_t eng_fill_pos_multi(int32_t h, double start, int32_t n) {
    GET(t, h);
    if (!t->data || t->type != GGML_TYPE_I32 || t->ne[0] < 4 * (int64_t)n) {
        set_error("fill_pos_multi needs an allocated I32 tensor of 4*n elements");
        return -1;
    }
    int32_t * d = (int32_t *)t->data;
    for (int i = 0; i < n; i++) {
        d[i] = d[n + i] = d[2 * n + i] = (int32_t)start + i;
        d[3 * n + i] = 0;
    }
    return 0;
}

int32_t eng_tensor_zero(int32_t h) {
    GET(t, h);
    if (!t->buffer && !t->data) { set_error("tensor has no memory"); return -1; }
    ggml_backend_tensor_memset(t, 0, 0, ggml_nbytes(t));
    return 0;
}

}  // extern "C"
