// Shared internals of the engine's translation units (engine.cpp and engine_*.cpp):
// the handle tables and the helpers that turn handles into ggml objects. Other files add
// ops with the same conventions: return node(G, ggml_op(...)), -1 + set_error on failure.
#ifndef PYLLM_ENGINE_INTERNAL_H
#define PYLLM_ENGINE_INTERNAL_H

#include "engine.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"

#include <vector>

namespace eng {

struct Engine {
    ggml_backend_t backend = nullptr;
    ggml_backend_dev_t dev = nullptr;
    ggml_threadpool_t threadpool = nullptr;
    ggml_backend_buffer_type_t extra_buft = nullptr;  // repack layout, or null
    int n_threads = 1;
    const int32_t * abort_flag = nullptr;  // eng_set_abort_flag: a compute stops when *flag != 0
    int32_t (*abort_fn)(void) = nullptr;   // eng_set_abort_fn: ... or when abort_fn() != 0
};

struct Pool {
    int eng = -1;
    ggml_context * ctx_plain = nullptr;
    ggml_context * ctx_extra = nullptr;
    ggml_backend_buffer_t buf_plain = nullptr;
    ggml_backend_buffer_t buf_extra = nullptr;
    std::vector<int> handles;
};

struct Graph {
    int eng = -1;
    ggml_context * ctx = nullptr;
    ggml_cgraph * gf = nullptr;
    ggml_gallocr_t galloc = nullptr;
    std::vector<int> handles;
    bool allocated = false;
};

void set_error(const char * fmt, ...);
Engine * engine(int h);
Pool * pool(int h);
Graph * graph(int h);
ggml_tensor * tensor(int h);         // null (and error set) for a bad handle
int new_tensor_handle(ggml_tensor * t);
int node(Graph * g, ggml_tensor * t);  // register a graph node, return its handle

}  // namespace eng

#define GET_GRAPH(g_) eng::Graph * G = eng::graph(g_); if (!G) return -1;
#define GET(t_, h_) ggml_tensor * t_ = eng::tensor(h_); if (!t_) return -1;

#endif
