// The engine: see engine.h for the contract. Implementation notes:
// - One CPU backend per engine, computing on a persistent ggml threadpool (creating
//   threads per compute costs ~1 ms in a browser worker; a pool costs tens of us).
// - Weights that feed mat-muls may be placed in ggml-cpu's "extra" (repack) buffer type,
//   decided with the same dummy-op test llama.cpp uses, so both run the same kernels.
// - Handles index process-wide tables; graph tensors are released with their graph.
#include "engine_internal.h"

#if defined(__linux__) && !defined(__EMSCRIPTEN__)
#include <sys/mman.h>
#endif

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace eng {

static char g_error[512];
static std::vector<Engine *> g_engines;
static std::vector<Pool *> g_pools;
static std::vector<Graph *> g_graphs;
static std::vector<ggml_tensor *> g_tensors;
static std::vector<int> g_free_tensor_slots;

void set_error(const char * fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
}

template <class T_> static T_ * lookup(std::vector<T_ *> & table, int h, const char * what) {
    if (h < 0 || (size_t)h >= table.size() || !table[h]) {
        set_error("invalid %s handle %d", what, h);
        return nullptr;
    }
    return table[h];
}

Engine * engine(int h) { return lookup(g_engines, h, "engine"); }
Pool * pool(int h) { return lookup(g_pools, h, "pool"); }
Graph * graph(int h) { return lookup(g_graphs, h, "graph"); }

ggml_tensor * tensor(int h) {
    if (h < 0 || (size_t)h >= g_tensors.size() || !g_tensors[h]) {
        set_error("invalid tensor handle %d", h);
        return nullptr;
    }
    return g_tensors[h];
}

int new_tensor_handle(ggml_tensor * t) {
    if (!t) return -1;
    if (!g_free_tensor_slots.empty()) {
        int h = g_free_tensor_slots.back();
        g_free_tensor_slots.pop_back();
        g_tensors[h] = t;
        return h;
    }
    g_tensors.push_back(t);
    return (int)g_tensors.size() - 1;
}

int node(Graph * g, ggml_tensor * t) {
    if (!t) { set_error("ggml returned no tensor"); return -1; }
    int h = new_tensor_handle(t);
    g->handles.push_back(h);
    return h;
}

template <class T_> static int put(std::vector<T_ *> & table, T_ * obj) {
    for (size_t i = 0; i < table.size(); i++) {
        if (!table[i]) { table[i] = obj; return (int)i; }
    }
    table.push_back(obj);
    return (int)table.size() - 1;
}

static void release_handles(const std::vector<int> & handles) {
    for (int h : handles) { g_tensors[h] = nullptr; g_free_tensor_slots.push_back(h); }
}

static bool repack_supported(Engine * e, ggml_type type, const int64_t ne[4]) {
    if (!e->extra_buft) return false;
    ggml_init_params p = { 8 * ggml_tensor_overhead(), nullptr, true };
    ggml_context * ctx = ggml_init(p);
    ggml_tensor * w = ggml_new_tensor_4d(ctx, type, ne[0], ne[1], ne[2], ne[3]);
    ggml_tensor * b = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, ne[0], 512, ne[2], ne[3]);
    ggml_tensor * op = ggml_mul_mat(ctx, w, b);
    w->buffer = ggml_backend_buft_alloc_buffer(e->extra_buft, 0);
    bool ok = ggml_backend_dev_supports_op(e->dev, op);
    ggml_backend_buffer_free(w->buffer);
    w->buffer = nullptr;
    ggml_free(ctx);
    return ok;
}

// Weights are streamed from memory once per decoded token. llama.cpp reads most of them
// from its mmap of the file, which the kernel backs with large page-cache folios; our
// copies live in anonymous memory, which gets transparent huge pages only when asked
// (THP "madvise" mode): without them TLB misses cost up to ~20% of decode speed.
static void advise_huge_pages(ggml_backend_buffer_t buf) {
#if defined(__linux__) && !defined(__EMSCRIPTEN__) && defined(MADV_HUGEPAGE)
    if (!buf) return;
    const uintptr_t huge = (uintptr_t)2 << 20;
    const uintptr_t base = (uintptr_t)ggml_backend_buffer_get_base(buf);
    const uintptr_t start = (base + huge - 1) & ~(huge - 1);
    const uintptr_t end = (base + ggml_backend_buffer_get_size(buf)) & ~(huge - 1);
    if (base && end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)buf;
#endif
}

// ggml logs informational lines (repacking, ...) to stderr; keep warnings and errors only.
static void quiet_log(ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

}  // namespace eng

using namespace eng;

extern "C" {

const char * eng_last_error(void) { return g_error; }
const char * eng_version(void) { return "pyllm-engine 1 (ggml from llama-cpp-python 0.3.36)"; }

const char * eng_system_info(void) {
    static char buf[256];
    snprintf(buf, sizeof buf, "AVX2=%d AVX512=%d FMA=%d F16C=%d WASM_SIMD=%d NEON=%d",
             ggml_cpu_has_avx2(), ggml_cpu_has_avx512(), ggml_cpu_has_fma(), ggml_cpu_has_f16c(),
             ggml_cpu_has_wasm_simd(), ggml_cpu_has_neon());
    return buf;
}

int32_t eng_new(int32_t n_threads) {
    if (n_threads < 1) { set_error("n_threads must be >= 1, got %d", n_threads); return -1; }
    ggml_log_set(quiet_log, nullptr);
    ggml_cpu_init();
    Engine * e = new Engine();
    e->backend = ggml_backend_cpu_init();
    if (!e->backend) { delete e; set_error("cannot create the CPU backend"); return -1; }
    e->dev = ggml_backend_get_device(e->backend);
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(e->dev);
    auto get_extra = (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts");
    if (get_extra) {
        ggml_backend_buffer_type_t * bufts = get_extra(e->dev);
        if (bufts && *bufts) e->extra_buft = *bufts;
    }
    int h = put(g_engines, e);
    if (eng_set_threads(h, n_threads) != 0) { eng_free(h); return -1; }
    return h;
}

void eng_free(int32_t eng) {
    Engine * e = engine(eng);
    if (!e) return;
    if (e->threadpool) ggml_threadpool_free(e->threadpool);
    ggml_backend_free(e->backend);
    delete e;
    g_engines[eng] = nullptr;
}

int32_t eng_set_threads(int32_t eng, int32_t n_threads) {
    Engine * e = engine(eng);
    if (!e) return -1;
    if (n_threads < 1) { set_error("n_threads must be >= 1, got %d", n_threads); return -1; }
    if (e->threadpool && e->n_threads == n_threads) return 0;
    ggml_threadpool_params tp = ggml_threadpool_params_default(n_threads);
    ggml_threadpool_t pool = ggml_threadpool_new(&tp);
    if (!pool) { set_error("cannot create a threadpool of %d threads", n_threads); return -1; }
    ggml_backend_cpu_set_threadpool(e->backend, pool);
    ggml_backend_cpu_set_n_threads(e->backend, n_threads);
    if (e->threadpool) ggml_threadpool_free(e->threadpool);
    e->threadpool = pool;
    e->n_threads = n_threads;
    return 0;
}

static bool abort_requested(void * data) {
    const Engine * e = (const Engine *)data;
    if (e->abort_flag && __atomic_load_n(e->abort_flag, __ATOMIC_RELAXED) != 0) return true;
    return e->abort_fn && e->abort_fn() != 0;
}

static void update_abort_callback(Engine * e) {
    bool on = e->abort_flag || e->abort_fn;
    ggml_backend_cpu_set_abort_callback(e->backend, on ? abort_requested : nullptr, on ? e : nullptr);
}

int32_t eng_set_abort_flag(int32_t eng, const int32_t * flag) {
    Engine * e = engine(eng);
    if (!e) return -1;
    e->abort_flag = flag;
    update_abort_callback(e);
    return 0;
}

int32_t eng_set_abort_fn(int32_t eng, int32_t (*fn)(void)) {
    Engine * e = engine(eng);
    if (!e) return -1;
    e->abort_fn = fn;
    update_abort_callback(e);
    return 0;
}

int32_t eng_type_supported(int32_t type) {
    if (type < 0 || type >= GGML_TYPE_COUNT) return 0;
    const ggml_type_traits_cpu * tc = ggml_get_type_traits_cpu((ggml_type)type);
    const ggml_type_traits * tt = ggml_get_type_traits((ggml_type)type);
    if (type == GGML_TYPE_F32) return 1;
    return tt && tt->blck_size > 0 && tt->to_float && tc && tc->vec_dot ? 1 : 0;
}

// ---- pools ------------------------------------------------------------------------------

int32_t eng_pool_new(int32_t eng, int32_t max_tensors) {
    if (!engine(eng)) return -1;
    Pool * p = new Pool();
    p->eng = eng;
    ggml_init_params ip = { (size_t)(max_tensors + 8) * ggml_tensor_overhead(), nullptr, true };
    p->ctx_plain = ggml_init(ip);
    p->ctx_extra = ggml_init(ip);
    return put(g_pools, p);
}

int32_t eng_weight_repacks(int32_t eng, int32_t type, double ne0, double ne1, double ne2, double ne3) {
    Engine * e = engine(eng);
    if (!e) return -1;
    if (type < 0 || type >= GGML_TYPE_COUNT || ggml_blck_size((ggml_type)type) == 0) {
        set_error("unknown ggml type %d", type);
        return -1;
    }
    int64_t ne[4] = { (int64_t)ne0, (int64_t)ne1, (int64_t)ne2, (int64_t)ne3 };
    return repack_supported(e, (ggml_type)type, ne) ? 1 : 0;
}

int32_t eng_pool_tensor(int32_t pool, int32_t type, double ne0, double ne1, double ne2, double ne3, int32_t flags) {
    Pool * p = eng::pool(pool);
    if (!p) return -1;
    if (p->buf_plain || p->buf_extra) { set_error("pool %d is already allocated", pool); return -1; }
    if (type < 0 || type >= GGML_TYPE_COUNT || ggml_blck_size((ggml_type)type) == 0) {
        set_error("unknown ggml type %d", type);
        return -1;
    }
    int64_t ne[4] = { (int64_t)ne0, (int64_t)ne1, (int64_t)ne2, (int64_t)ne3 };
    if (ne[0] % ggml_blck_size((ggml_type)type)) {
        set_error("row length %lld is not a multiple of the %s block size", (long long)ne[0], ggml_type_name((ggml_type)type));
        return -1;
    }
    Engine * e = g_engines[p->eng];
    bool extra = (flags & ENG_MATMUL_WEIGHT) && repack_supported(e, (ggml_type)type, ne);
    ggml_context * ctx = extra ? p->ctx_extra : p->ctx_plain;
    ggml_tensor * t = ggml_new_tensor_4d(ctx, (ggml_type)type, ne[0], ne[1], ne[2], ne[3]);
    if (!t) { set_error("pool %d is full", pool); return -1; }
    int h = new_tensor_handle(t);
    p->handles.push_back(h);
    return h;
}

int32_t eng_pool_alloc(int32_t pool) {
    Pool * p = eng::pool(pool);
    if (!p) return -1;
    Engine * e = g_engines[p->eng];
    if (ggml_get_first_tensor(p->ctx_plain)) {
        p->buf_plain = ggml_backend_alloc_ctx_tensors(p->ctx_plain, e->backend);
        if (!p->buf_plain) { set_error("out of memory allocating pool %d", pool); return -1; }
        ggml_backend_buffer_set_usage(p->buf_plain, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
        advise_huge_pages(p->buf_plain);
    }
    if (ggml_get_first_tensor(p->ctx_extra)) {
        p->buf_extra = ggml_backend_alloc_ctx_tensors_from_buft(p->ctx_extra, e->extra_buft);
        if (!p->buf_extra) { set_error("out of memory allocating pool %d (repacked weights)", pool); return -1; }
        ggml_backend_buffer_set_usage(p->buf_extra, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
        advise_huge_pages(p->buf_extra);
    }
    return 0;
}

double eng_pool_bytes(int32_t pool) {
    Pool * p = eng::pool(pool);
    if (!p) return -1;
    double n = 0;
    if (p->buf_plain) n += (double)ggml_backend_buffer_get_size(p->buf_plain);
    if (p->buf_extra) n += (double)ggml_backend_buffer_get_size(p->buf_extra);
    return n;
}

int32_t eng_pool_clear(int32_t pool) {
    Pool * p = eng::pool(pool);
    if (!p) return -1;
    if (p->buf_plain) ggml_backend_buffer_clear(p->buf_plain, 0);
    if (p->buf_extra) ggml_backend_buffer_clear(p->buf_extra, 0);
    return 0;
}

void eng_pool_free(int32_t pool) {
    Pool * p = eng::pool(pool);
    if (!p) return;
    release_handles(p->handles);
    if (p->buf_plain) ggml_backend_buffer_free(p->buf_plain);
    if (p->buf_extra) ggml_backend_buffer_free(p->buf_extra);
    ggml_free(p->ctx_plain);
    ggml_free(p->ctx_extra);
    delete p;
    g_pools[pool] = nullptr;
}

// ---- tensor data --------------------------------------------------------------------------

static bool check_range(ggml_tensor * t, double offset, double nbytes) {
    if (!t->buffer && !t->data) { set_error("tensor has no memory yet (allocate its pool or graph first)"); return false; }
    if (offset < 0 || nbytes < 0 || offset + nbytes > (double)ggml_nbytes(t)) {
        set_error("byte range [%.0f, %.0f) outside tensor of %zu bytes", offset, offset + nbytes, ggml_nbytes(t));
        return false;
    }
    return true;
}

static bool is_extra(ggml_tensor * t) {
    return t->buffer && !ggml_backend_buffer_is_host(t->buffer);
}

int32_t eng_tensor_set(int32_t h, double offset, const void * src, double nbytes) {
    GET(t, h);
    if (!check_range(t, offset, nbytes)) return -1;
    if (is_extra(t) && (offset != 0 || (size_t)nbytes != ggml_nbytes(t))) {
        set_error("a repacked weight must be written whole (%zu bytes)", ggml_nbytes(t));
        return -1;
    }
    ggml_backend_tensor_set(t, src, (size_t)offset, (size_t)nbytes);
    return 0;
}

int32_t eng_tensor_get(int32_t h, double offset, void * dst, double nbytes) {
    GET(t, h);
    if (!check_range(t, offset, nbytes)) return -1;
    ggml_backend_tensor_get(t, dst, (size_t)offset, (size_t)nbytes);
    return 0;
}

int32_t eng_tensor_load_file(int32_t h, const char * path, double file_offset, double nbytes) {
    GET(t, h);
    if (!check_range(t, 0, nbytes)) return -1;
    FILE * f = fopen(path, "rb");
    if (!f) { set_error("cannot open %s", path); return -1; }
    if (fseeko(f, (off_t)file_offset, SEEK_SET) != 0) { fclose(f); set_error("cannot seek in %s", path); return -1; }
    size_t n = (size_t)nbytes;
    bool direct = !is_extra(t) && t->data;
    void * dst = direct ? t->data : malloc(n);
    if (!dst) { fclose(f); set_error("out of memory (%zu bytes)", n); return -1; }
    size_t got = fread(dst, 1, n, f);
    fclose(f);
    if (got != n) {
        if (!direct) free(dst);
        set_error("%s: short read at offset %.0f (%zu of %zu bytes): file truncated?", path, file_offset, got, n);
        return -1;
    }
    if (!direct) {
        ggml_backend_tensor_set(t, dst, 0, n);
        free(dst);
    }
    return 0;
}

int32_t eng_tensor_copy(int32_t dst_h, double dst_off, int32_t src_h, double src_off, double nbytes) {
    GET(dst, dst_h);
    GET(src, src_h);
    if (!check_range(dst, dst_off, nbytes) || !check_range(src, src_off, nbytes)) return -1;
    if (is_extra(dst) || is_extra(src)) { set_error("cannot byte-copy repacked tensors"); return -1; }
    memmove((char *)dst->data + (size_t)dst_off, (const char *)src->data + (size_t)src_off, (size_t)nbytes);
    return 0;
}

double eng_tensor_nbytes(int32_t h) { GET(t, h); return (double)ggml_nbytes(t); }
double eng_tensor_ne(int32_t h, int32_t d) { GET(t, h); return d >= 0 && d < 4 ? (double)t->ne[d] : -1; }
double eng_tensor_nb(int32_t h, int32_t d) { GET(t, h); return d >= 0 && d < 4 ? (double)t->nb[d] : -1; }
int32_t eng_tensor_type(int32_t h) { GET(t, h); return (int32_t)t->type; }
int32_t eng_tensor_is_repacked(int32_t h) { GET(t, h); return is_extra(t) ? 1 : 0; }
int32_t eng_tensor_set_name(int32_t h, const char * name) { GET(t, h); ggml_set_name(t, name); return 0; }

void * eng_malloc(double nbytes) { return malloc((size_t)nbytes); }
void eng_mfree(void * p) { free(p); }

int32_t eng_fill_arange(int32_t h, double start, int32_t n) {
    GET(t, h);
    if (!check_range(t, 0, (double)n * ggml_type_size(t->type))) return -1;
    if (t->type == GGML_TYPE_I32) {
        int32_t * d = (int32_t *)t->data;
        for (int i = 0; i < n; i++) d[i] = (int32_t)start + i;
    } else if (t->type == GGML_TYPE_I64) {
        int64_t * d = (int64_t *)t->data;
        for (int i = 0; i < n; i++) d[i] = (int64_t)start + i;
    } else {
        set_error("eng_fill_arange needs an I32 or I64 tensor");
        return -1;
    }
    return 0;
}

// Mask for one sequence whose KV cells hold positions 0..n_kv-1 in order: query i (at
// position pos0+i) sees cell j iff j <= pos0+i and, with a sliding window, pos0+i-j < n_swa.
int32_t eng_fill_causal_mask(int32_t h, int32_t n_kv, int32_t n_tokens, int32_t pos0, int32_t n_swa) {
    GET(t, h);
    if (t->ne[0] != n_kv || t->ne[1] < n_tokens) { set_error("mask shape does not match n_kv/n_tokens"); return -1; }
    for (int i = 0; i < t->ne[1]; i++) {
        const int p1 = pos0 + i;
        for (int j = 0; j < n_kv; j++) {
            bool visible = i < n_tokens && j <= p1 && !(n_swa > 0 && p1 - j >= n_swa);
            float v = visible ? 0.0f : -INFINITY;
            char * row = (char *)t->data + i * t->nb[1];
            if (t->type == GGML_TYPE_F16) ((ggml_fp16_t *)row)[j] = ggml_fp32_to_fp16(v);
            else if (t->type == GGML_TYPE_F32) ((float *)row)[j] = v;
            else { set_error("mask must be F16 or F32"); return -1; }
        }
    }
    return 0;
}

int32_t eng_argmax(int32_t h, int32_t row) {
    GET(t, h);
    if (t->type != GGML_TYPE_F32 || !t->data) { set_error("argmax needs a computed F32 tensor"); return -1; }
    if (row < 0 || row >= t->ne[1]) { set_error("row %d out of range", row); return -1; }
    const float * x = (const float *)((const char *)t->data + row * t->nb[1]);
    int best = 0;
    for (int i = 1; i < t->ne[0]; i++) if (x[i] > x[best]) best = i;
    return best;
}

// ---- graphs -------------------------------------------------------------------------------

int32_t eng_graph_new(int32_t eng, int32_t max_nodes) {
    if (!engine(eng)) return -1;
    Graph * g = new Graph();
    g->eng = eng;
    ggml_init_params ip = { (size_t)max_nodes * ggml_tensor_overhead() + ggml_graph_overhead_custom(max_nodes, false),
                            nullptr, true };
    g->ctx = ggml_init(ip);
    g->gf = ggml_new_graph_custom(g->ctx, max_nodes, false);
    return put(g_graphs, g);
}

int32_t eng_graph_expand(int32_t gh, int32_t h) {
    GET_GRAPH(gh);
    GET(t, h);
    ggml_build_forward_expand(G->gf, t);
    return 0;
}

int32_t eng_graph_output(int32_t gh, int32_t h) {
    GET_GRAPH(gh);
    GET(t, h);
    ggml_set_output(t);
    ggml_build_forward_expand(G->gf, t);
    return 0;
}

int32_t eng_graph_alloc(int32_t gh) {
    GET_GRAPH(gh);
    Engine * e = g_engines[G->eng];
    if (!G->galloc) G->galloc = ggml_gallocr_new(ggml_backend_get_default_buffer_type(e->backend));
    if (!ggml_gallocr_alloc_graph(G->galloc, G->gf)) { set_error("cannot allocate graph memory"); return -1; }
    G->allocated = true;
    return 0;
}

int32_t eng_graph_compute(int32_t gh) {
    GET_GRAPH(gh);
    if (!G->allocated) { set_error("graph %d is not allocated", gh); return -1; }
    Engine * e = g_engines[G->eng];
    ggml_status st = ggml_backend_graph_compute(e->backend, G->gf);
    if (st == GGML_STATUS_ABORTED) { set_error("compute stopped by the abort flag"); return ENG_ABORTED; }
    if (st != GGML_STATUS_SUCCESS) { set_error("graph compute failed (status %d)", (int)st); return -1; }
    return 0;
}

int32_t eng_graph_n_nodes(int32_t gh) { GET_GRAPH(gh); return ggml_graph_n_nodes(G->gf); }

double eng_graph_bytes(int32_t gh) {
    GET_GRAPH(gh);
    return G->galloc ? (double)ggml_gallocr_get_buffer_size(G->galloc, 0) : 0;
}

void eng_graph_free(int32_t gh) {
    Graph * G = graph(gh);
    if (!G) return;
    release_handles(G->handles);
    if (G->galloc) ggml_gallocr_free(G->galloc);
    ggml_free(G->ctx);
    delete G;
    g_graphs[gh] = nullptr;
}

// ---- ops --------------------------------------------------------------------------------------

int32_t eng_input(int32_t gh, int32_t type, double ne0, double ne1, double ne2, double ne3) {
    GET_GRAPH(gh);
    ggml_tensor * t = ggml_new_tensor_4d(G->ctx, (ggml_type)type, (int64_t)ne0, (int64_t)ne1, (int64_t)ne2, (int64_t)ne3);
    ggml_set_input(t);
    return node(G, t);
}

int32_t eng_get_rows(int32_t gh, int32_t a, int32_t idx) { GET_GRAPH(gh); GET(A, a); GET(I, idx); return node(G, ggml_get_rows(G->ctx, A, I)); }
int32_t eng_set_rows(int32_t gh, int32_t dst, int32_t src, int32_t idx) {
    GET_GRAPH(gh); GET(D, dst); GET(S, src); GET(I, idx);
    return node(G, ggml_set_rows(G->ctx, D, S, I));  // a store: the caller expands it
}
int32_t eng_mul_mat(int32_t gh, int32_t w, int32_t x) { GET_GRAPH(gh); GET(W, w); GET(X, x); return node(G, ggml_mul_mat(G->ctx, W, X)); }
int32_t eng_add(int32_t gh, int32_t a, int32_t b) { GET_GRAPH(gh); GET(A, a); GET(B, b); return node(G, ggml_add(G->ctx, A, B)); }
int32_t eng_mul(int32_t gh, int32_t a, int32_t b) { GET_GRAPH(gh); GET(A, a); GET(B, b); return node(G, ggml_mul(G->ctx, A, B)); }
int32_t eng_scale(int32_t gh, int32_t a, float s) { GET_GRAPH(gh); GET(A, a); return node(G, ggml_scale(G->ctx, A, s)); }
int32_t eng_rms_norm(int32_t gh, int32_t a, float eps) { GET_GRAPH(gh); GET(A, a); return node(G, ggml_rms_norm(G->ctx, A, eps)); }

int32_t eng_unary(int32_t gh, int32_t a, int32_t op) {
    GET_GRAPH(gh); GET(A, a);
    switch (op) {
        case ENG_UNARY_TANH: return node(G, ggml_tanh(G->ctx, A));
        case ENG_UNARY_GELU: return node(G, ggml_gelu(G->ctx, A));
        case ENG_UNARY_SILU: return node(G, ggml_silu(G->ctx, A));
        case ENG_UNARY_RELU: return node(G, ggml_relu(G->ctx, A));
        case ENG_UNARY_EXP: return node(G, ggml_exp(G->ctx, A));
        case ENG_UNARY_SIGMOID: return node(G, ggml_sigmoid(G->ctx, A));
    }
    set_error("unknown unary op %d", op);
    return -1;
}

int32_t eng_glu_split(int32_t gh, int32_t gate, int32_t up, int32_t op) {
    GET_GRAPH(gh); GET(A, gate); GET(B, up);
    switch (op) {
        case ENG_GLU_SWIGLU: return node(G, ggml_swiglu_split(G->ctx, A, B));
        case ENG_GLU_GEGLU: return node(G, ggml_geglu_split(G->ctx, A, B));
    }
    set_error("unknown glu op %d", op);
    return -1;
}

int32_t eng_rope(int32_t gh, int32_t a, int32_t pos, int32_t ff, int32_t n_dims, int32_t mode, int32_t n_ctx_orig,
                 float freq_base, float freq_scale, float ext_factor, float attn_factor, float beta_fast,
                 float beta_slow) {
    GET_GRAPH(gh); GET(A, a); GET(P, pos);
    ggml_tensor * F = nullptr;
    if (ff >= 0) { F = tensor(ff); if (!F) return -1; }
    return node(G, ggml_rope_ext(G->ctx, A, P, F, n_dims, mode, n_ctx_orig, freq_base, freq_scale, ext_factor,
                                 attn_factor, beta_fast, beta_slow));
}

int32_t eng_flash_attn(int32_t gh, int32_t q, int32_t k, int32_t v, int32_t mask, float scale, float max_bias,
                       float softcap) {
    GET_GRAPH(gh); GET(Q, q); GET(K, k); GET(V, v);
    ggml_tensor * M = nullptr;
    if (mask >= 0) { M = tensor(mask); if (!M) return -1; }
    ggml_tensor * r = ggml_flash_attn_ext(G->ctx, Q, K, V, M, scale, max_bias, softcap);
    ggml_prec_set_acc(r, GGML_PREC_F32);
    return node(G, r);
}

int32_t eng_soft_max(int32_t gh, int32_t a, int32_t mask, float scale, float max_bias) {
    GET_GRAPH(gh); GET(A, a);
    ggml_tensor * M = nullptr;
    if (mask >= 0) { M = tensor(mask); if (!M) return -1; }
    return node(G, ggml_soft_max_ext(G->ctx, A, M, scale, max_bias));
}

int32_t eng_view(int32_t gh, int32_t a, int32_t n_dims, double ne0, double ne1, double ne2, double ne3, double nb1,
                 double nb2, double nb3, double offset) {
    GET_GRAPH(gh); GET(A, a);
    ggml_context * c = G->ctx;
    size_t off = (size_t)offset;
    switch (n_dims) {
        case 1: return node(G, ggml_view_1d(c, A, (int64_t)ne0, off));
        case 2: return node(G, ggml_view_2d(c, A, (int64_t)ne0, (int64_t)ne1, (size_t)nb1, off));
        case 3: return node(G, ggml_view_3d(c, A, (int64_t)ne0, (int64_t)ne1, (int64_t)ne2, (size_t)nb1, (size_t)nb2, off));
        case 4: return node(G, ggml_view_4d(c, A, (int64_t)ne0, (int64_t)ne1, (int64_t)ne2, (int64_t)ne3, (size_t)nb1,
                                            (size_t)nb2, (size_t)nb3, off));
    }
    set_error("view needs 1-4 dims, got %d", n_dims);
    return -1;
}

int32_t eng_reshape(int32_t gh, int32_t a, double ne0, double ne1, double ne2, double ne3) {
    GET_GRAPH(gh); GET(A, a);
    if (!ggml_is_contiguous(A)) { set_error("reshape needs a contiguous tensor"); return -1; }
    return node(G, ggml_reshape_4d(G->ctx, A, (int64_t)ne0, (int64_t)ne1, (int64_t)ne2, (int64_t)ne3));
}

int32_t eng_permute(int32_t gh, int32_t a, int32_t x0, int32_t x1, int32_t x2, int32_t x3) {
    GET_GRAPH(gh); GET(A, a); return node(G, ggml_permute(G->ctx, A, x0, x1, x2, x3));
}
int32_t eng_transpose(int32_t gh, int32_t a) { GET_GRAPH(gh); GET(A, a); return node(G, ggml_transpose(G->ctx, A)); }
int32_t eng_cont(int32_t gh, int32_t a) { GET_GRAPH(gh); GET(A, a); return node(G, ggml_cont(G->ctx, A)); }
int32_t eng_cast(int32_t gh, int32_t a, int32_t type) { GET_GRAPH(gh); GET(A, a); return node(G, ggml_cast(G->ctx, A, (ggml_type)type)); }
int32_t eng_cpy(int32_t gh, int32_t src, int32_t dst) {
    GET_GRAPH(gh); GET(S, src); GET(D, dst);
    return node(G, ggml_cpy(G->ctx, S, D));
}

}  // extern "C"
