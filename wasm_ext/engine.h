// The engine: a small plain-C API over ggml.
//
// Everything crossing it is an int32 handle, an int32, a float or a double (byte sizes
// and offsets travel as doubles: exact up to 2^53 and the same on wasm32 and x86-64).
// No structs by value and no C++ types, so the same API serves ctypes on the host,
// ctypes inside Pyodide (side module) and a JS module (pthreads build).
//
// Objects:  engine  (CPU backend + persistent threadpool)
//           pool    (a set of persistent tensors: weights or model state, one allocation)
//           graph   (a ggml compute graph built op by op, allocated once, computed many times)
//           tensor  (any ggml tensor: pool tensors and graph nodes share one handle space)
// Errors: functions returning handles return -1 and set a message (eng_last_error).
#ifndef PYLLM_ENGINE_H
#define PYLLM_ENGINE_H

#include <stdint.h>

#if defined(__EMSCRIPTEN__)
#include <emscripten/emscripten.h>
#define ENG_API EMSCRIPTEN_KEEPALIVE __attribute__((visibility("default")))
#else
#define ENG_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

ENG_API const char * eng_last_error(void);
ENG_API const char * eng_version(void);
ENG_API const char * eng_system_info(void);

// ---- engine ------------------------------------------------------------------------
ENG_API int32_t eng_new(int32_t n_threads);
ENG_API void    eng_free(int32_t eng);
ENG_API int32_t eng_set_threads(int32_t eng, int32_t n_threads);
ENG_API int32_t eng_type_supported(int32_t ggml_type);  // 1 if the CPU kernels compute it
// While flag (an int32 in the engine's memory, or null) holds non-zero, eng_graph_compute
// stops between graph nodes and returns ENG_ABORTED. In the pthreads build that memory is
// shared, so another thread (the page's stop button) can set it while a compute runs.
#define ENG_ABORTED (-2)
ENG_API int32_t eng_set_abort_flag(int32_t eng, const int32_t * flag);
// The same with a function asked between graph nodes (or null): the single-threaded side
// module's memory is not shared, so there the page's flag is read by a JS function.
ENG_API int32_t eng_set_abort_fn(int32_t eng, int32_t (*fn)(void));

// ---- pools of persistent tensors ----------------------------------------------------
// flags: ENG_MATMUL_WEIGHT lets the engine pick a repacked layout for faster mat-muls
// (the same choice llama.cpp makes), which also means the tensor must be written whole.
#define ENG_MATMUL_WEIGHT 1
ENG_API int32_t eng_pool_new(int32_t eng, int32_t max_tensors);
ENG_API int32_t eng_pool_tensor(int32_t pool, int32_t type, double ne0, double ne1, double ne2, double ne3,
                                int32_t flags);
ENG_API int32_t eng_pool_alloc(int32_t pool);  // 0 ok
// 1 if a weight of this type and shape, created with ENG_MATMUL_WEIGHT, gets a repacked
// layout on this engine (x86/ARM builds; never in wasm), 0 if not
ENG_API int32_t eng_weight_repacks(int32_t eng, int32_t type, double ne0, double ne1, double ne2, double ne3);
ENG_API double  eng_pool_bytes(int32_t pool);
ENG_API int32_t eng_pool_clear(int32_t pool);
ENG_API void    eng_pool_free(int32_t pool);

// ---- tensor data ----------------------------------------------------------------------
ENG_API int32_t eng_tensor_set(int32_t t, double offset, const void * src, double nbytes);
ENG_API int32_t eng_tensor_get(int32_t t, double offset, void * dst, double nbytes);
ENG_API int32_t eng_tensor_load_file(int32_t t, const char * path, double file_offset, double nbytes);
ENG_API int32_t eng_tensor_copy(int32_t dst, double dst_offset, int32_t src, double src_offset, double nbytes);
ENG_API double  eng_tensor_nbytes(int32_t t);
ENG_API double  eng_tensor_ne(int32_t t, int32_t dim);
ENG_API double  eng_tensor_nb(int32_t t, int32_t dim);
ENG_API int32_t eng_tensor_type(int32_t t);
ENG_API int32_t eng_tensor_is_repacked(int32_t t);
ENG_API int32_t eng_tensor_set_name(int32_t t, const char * name);
// staging memory for callers that must copy bytes in (the browser's Cache API chunks)
ENG_API void *  eng_malloc(double nbytes);
ENG_API void    eng_mfree(void * p);

// Input helpers so a decode step costs a few calls, not per-element Python work.
ENG_API int32_t eng_fill_arange(int32_t t, double start, int32_t n);  // I32 or I64
ENG_API int32_t eng_fill_causal_mask(int32_t t, int32_t n_kv, int32_t n_tokens, int32_t pos0,
                                     int32_t n_swa);  // F16/F32 [n_kv, n_tokens]; n_swa 0 = none
ENG_API int32_t eng_argmax(int32_t t, int32_t row);   // over ne0 of an F32 tensor

// ---- graphs -------------------------------------------------------------------------------
ENG_API int32_t eng_graph_new(int32_t eng, int32_t max_nodes);
ENG_API int32_t eng_graph_expand(int32_t g, int32_t t);     // add t and its sources to the graph
ENG_API int32_t eng_graph_output(int32_t g, int32_t t);     // expand, and keep t readable after compute
ENG_API int32_t eng_graph_alloc(int32_t g);                  // plan memory; inputs become writable
ENG_API int32_t eng_graph_compute(int32_t g);
ENG_API int32_t eng_graph_n_nodes(int32_t g);
ENG_API double  eng_graph_bytes(int32_t g);
ENG_API void    eng_graph_free(int32_t g);

// ---- ops: each adds one node to graph g and returns its tensor handle ------------------
ENG_API int32_t eng_input(int32_t g, int32_t type, double ne0, double ne1, double ne2, double ne3);
ENG_API int32_t eng_get_rows(int32_t g, int32_t a, int32_t idx);
ENG_API int32_t eng_set_rows(int32_t g, int32_t dst, int32_t src, int32_t idx);
ENG_API int32_t eng_mul_mat(int32_t g, int32_t w, int32_t x);
ENG_API int32_t eng_add(int32_t g, int32_t a, int32_t b);
ENG_API int32_t eng_mul(int32_t g, int32_t a, int32_t b);
ENG_API int32_t eng_scale(int32_t g, int32_t a, float s);
ENG_API int32_t eng_rms_norm(int32_t g, int32_t a, float eps);
ENG_API int32_t eng_unary(int32_t g, int32_t a, int32_t op);  // ENG_UNARY_*
ENG_API int32_t eng_glu_split(int32_t g, int32_t gate, int32_t up, int32_t op);  // ENG_GLU_*
ENG_API int32_t eng_rope(int32_t g, int32_t a, int32_t pos, int32_t freq_factors, int32_t n_dims, int32_t mode,
                         int32_t n_ctx_orig, float freq_base, float freq_scale, float ext_factor,
                         float attn_factor, float beta_fast, float beta_slow);
ENG_API int32_t eng_flash_attn(int32_t g, int32_t q, int32_t k, int32_t v, int32_t mask, float scale,
                               float max_bias, float softcap);
ENG_API int32_t eng_soft_max(int32_t g, int32_t a, int32_t mask, float scale, float max_bias);
ENG_API int32_t eng_view(int32_t g, int32_t a, int32_t n_dims, double ne0, double ne1, double ne2, double ne3,
                         double nb1, double nb2, double nb3, double offset);
ENG_API int32_t eng_reshape(int32_t g, int32_t a, double ne0, double ne1, double ne2, double ne3);
ENG_API int32_t eng_permute(int32_t g, int32_t a, int32_t ax0, int32_t ax1, int32_t ax2, int32_t ax3);
ENG_API int32_t eng_transpose(int32_t g, int32_t a);
ENG_API int32_t eng_cont(int32_t g, int32_t a);
ENG_API int32_t eng_cast(int32_t g, int32_t a, int32_t type);
ENG_API int32_t eng_cpy(int32_t g, int32_t src, int32_t dst);

#define ENG_UNARY_TANH 0
#define ENG_UNARY_GELU 1
#define ENG_UNARY_SILU 2
#define ENG_UNARY_RELU 3
#define ENG_UNARY_EXP 4
#define ENG_UNARY_SIGMOID 5
#define ENG_GLU_SWIGLU 0
#define ENG_GLU_GEGLU 1

#ifdef __cplusplus
}
#endif
#endif
