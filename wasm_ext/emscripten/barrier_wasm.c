// pyllm: ggml's thread barrier for the pthreads build (inserted before ggml_barrier in
// ggml-cpu/ggml-cpu.c by wasm_ext/build_wasm.py).
//
// Upstream's barrier spins until the last thread arrives. A browser tab's threads share the
// cores with the page, the browser's own processes and other tabs: when the thread still
// computing an op is descheduled, the spinning ones keep their cores busy for whole time
// slices, and a decode step has hundreds of barriers (Gemma 3 270M, 2 threads on a 2-core
// machine with one more busy process: 4-5 tok/s instead of ~25-35). Here a waiter spins a
// while, the usual case where both threads end an op within microseconds, then sleeps on a
// futex (Atomics.wait) that the last thread to arrive wakes. No lost wake-up: a sleeper
// counts itself before its last check of the counter, the last thread bumps the counter
// before it reads the sleeper count (both sequentially consistent), and the futex wait
// returns at once if the counter already moved.
#ifdef __EMSCRIPTEN_PTHREADS__
#include <emscripten/threading.h>

#define PYLLM_BARRIER_SPINS 20000  // ~20-60 us of polling before sleeping

static atomic_int pyllm_barrier_sleepers;  // threads asleep in any barrier (rarely > 0)

static void pyllm_barrier_wait(atomic_int * passed, int n_passed) {
    for (int i = 0; i < PYLLM_BARRIER_SPINS; i++) {
        if (atomic_load_explicit(passed, memory_order_relaxed) != n_passed) {
            return;
        }
    }
    atomic_fetch_add_explicit(&pyllm_barrier_sleepers, 1, memory_order_seq_cst);
    while (atomic_load_explicit(passed, memory_order_seq_cst) == n_passed) {
        emscripten_futex_wait((volatile void *) passed, (uint32_t) n_passed, INFINITY);
    }
    atomic_fetch_sub_explicit(&pyllm_barrier_sleepers, 1, memory_order_seq_cst);
}

static void pyllm_barrier_wake(atomic_int * passed) {
    if (atomic_load_explicit(&pyllm_barrier_sleepers, memory_order_seq_cst) > 0) {
        emscripten_futex_wake((volatile void *) passed, INT_MAX);
    }
}
#endif
