// The sampler chain over a logits row (see engine_sampler.h for the contract).
//
// Stages mirror llama.cpp's samplers (src/llama-sampler.cpp) in llama.cpp's default order.
// Determinism across builds: candidates are ordered by a strict total order (logit
// descending, then id ascending), so every sort has one answer whatever the C++ library;
// sums run over candidates in that canonical order; exp/log are our own, built from +, *,
// / and ldexp, which IEEE 754 makes exact-rounded on every target.
#include "engine_sampler.h"
#include "engine_internal.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace {

// ---- deterministic math ---------------------------------------------------------------------

const double LN2_HI = 6.93147180369123816490e-01;  // ln 2 split so k*LN2_HI is exact (fdlibm)
const double LN2_LO = 1.90821492927058770002e-10;
const double LOG2E = 1.44269504088896338700e+00;

inline double pow2i(int k) {  // 2^k for a normal exponent, exactly, from its bits
    const uint64_t bits = (uint64_t)(k + 1023) << 52;
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
}

double det_exp(double x) {
    if (!(x > -708.0)) return x != x ? x : (x < -745.2 ? 0.0 : std::ldexp(det_exp(x + 64.0), -64));
    if (x > 709.7) return HUGE_VAL;
    const double t = x * LOG2E + 0.5;
    int k = (int)t;
    if ((double)k > t) k -= 1;  // floor
    const double r = (x - k * LN2_HI) - k * LN2_LO;  // |r| <= 0.35
    // Taylor series to r^14 / 14!: truncation error < 1e-17 for |r| <= 0.35
    double p = 1.0 / 87178291200.0;
    p = p * r + 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    return k > 1023 ? p * pow2i(1023) * 2.0 : p * pow2i(k);  // k >= -1022 here
}

double det_log(double x) {
    if (!(x > 0.0)) return x == 0.0 ? -HUGE_VAL : NAN;
    if (std::isinf(x)) return x;
    int e = 0;
    double m = std::frexp(x, &e);  // x = m * 2^e, m in [0.5, 1)
    if (m < 0.70710678118654752440) { m *= 2.0; e -= 1; }
    const double f = (m - 1.0) / (m + 1.0);  // |f| <= 0.172
    const double f2 = f * f;
    double s = 0.0;  // atanh series: log m = 2 (f + f^3/3 + ... + f^23/23)
    for (int n = 23; n >= 3; n -= 2) s = (s + 1.0 / n) * f2;
    const double log_m = 2.0 * f * (1.0 + s);
    return e * LN2_HI + (e * LN2_LO + log_m);
}

// ---- PCG32 (O'Neill, pcg-random.org: XSH-RR 64/32, "pcg32_srandom_r" seeding) --------------

struct Pcg32 {
    uint64_t state = 0, inc = 1;

    void seed(uint64_t initstate, uint64_t initseq) {
        state = 0;
        inc = (initseq << 1u) | 1u;
        next();
        state += initstate;
        next();
    }
    uint32_t next() {
        const uint64_t old = state;
        state = old * 6364136223846793005ULL + inc;
        const uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
        const uint32_t rot = (uint32_t)(old >> 59u);
        return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
    }
    double uniform() {  // 53 random bits, as MT19937's genrand_res53
        const uint32_t a = next() >> 5, b = next() >> 6;
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    }
};

const uint64_t PCG_STREAM = 0xda3e39cb94b95bdbULL;  // the pcg32 demo's default sequence

// ---- the chain --------------------------------------------------------------------------------

struct Cand {
    float logit;
    int32_t id;
    double p;
};

inline bool before(const Cand & a, const Cand & b) {  // strict total order: best first
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

struct Sampler {
    Pcg32 rng;
    int32_t top_k = 40, min_keep = 0;
    float typical_p = 1.0f, top_p = 0.95f, min_p = 0.05f, temperature = 0.8f;
    float repeat = 1.0f, frequency = 0.0f, presence = 0.0f;
    std::vector<int32_t> bias_ids;
    std::vector<float> bias_vals;

    std::vector<float> vals;       // the row, biased and penalised
    std::vector<Cand> cur;         // candidates [0, size)
    size_t size = 0;
    bool sorted = false;
    std::vector<int32_t> recent;   // scratch for penalty counts
    std::vector<size_t> order;     // scratch for typical
    std::vector<double> score;
    std::vector<Cand> tmp;

    Sampler() { rng.seed(0, PCG_STREAM); }
};

std::vector<Sampler *> g_samplers;

Sampler * get(int32_t h) {
    if (h < 0 || h >= (int32_t)g_samplers.size() || !g_samplers[h]) {
        eng::set_error("bad sampler handle %d", h);
        return nullptr;
    }
    return g_samplers[h];
}

void sort_all(Sampler & S) {
    if (!S.sorted) std::sort(S.cur.begin(), S.cur.begin() + S.size, before);
    S.sorted = true;
}

// p over the candidates in their current (canonical) order; returns the sum before normalising.
double softmax(Sampler & S) {
    float mx = S.cur[0].logit;
    for (size_t i = 1; i < S.size; ++i) mx = std::max(mx, S.cur[i].logit);
    double sum = 0.0;
    for (size_t i = 0; i < S.size; ++i) {
        S.cur[i].p = det_exp((double)S.cur[i].logit - (double)mx);
        sum += S.cur[i].p;
    }
    for (size_t i = 0; i < S.size; ++i) S.cur[i].p /= sum;
    return sum;
}

int apply_penalties(Sampler & S, const int32_t * ids, int32_t n) {
    if (n <= 0 || (S.repeat == 1.0f && S.frequency == 0.0f && S.presence == 0.0f)) return 0;
    S.recent.assign(ids, ids + n);
    std::sort(S.recent.begin(), S.recent.end());
    const int32_t n_vocab = (int32_t)S.vals.size();
    for (size_t i = 0; i < S.recent.size();) {
        size_t j = i;
        while (j < S.recent.size() && S.recent[j] == S.recent[i]) ++j;
        const int32_t id = S.recent[i];
        if (id < 0 || id >= n_vocab) { eng::set_error("penalty token id %d outside the vocabulary (%d)", id, n_vocab); return -1; }
        const int count = (int)(j - i);
        float & l = S.vals[id];
        l = l <= 0 ? l * S.repeat : l / S.repeat;  // as llama.cpp: never makes a token likelier
        l -= (float)count * S.frequency + S.presence;
        i = j;
    }
    return 0;
}

void select_top_k(Sampler & S, const float * v, size_t n, size_t k) {  // without building every candidate
    S.cur.clear();
    float worst = -INFINITY;  // the logit of the worst kept candidate once k are kept
    for (size_t i = 0; i < n; ++i) {
        if (!(v[i] >= worst)) continue;  // also skips NaN
        const Cand c = {v[i], (int32_t)i, 0.0};
        if (S.cur.size() < k) {
            S.cur.push_back(c);
            std::push_heap(S.cur.begin(), S.cur.end(), before);  // front = worst kept
            if (S.cur.size() == k) worst = S.cur.front().logit;
        } else if (before(c, S.cur.front())) {
            std::pop_heap(S.cur.begin(), S.cur.end(), before);
            S.cur.back() = c;
            std::push_heap(S.cur.begin(), S.cur.end(), before);
            worst = S.cur.front().logit;
        }
    }
    std::sort_heap(S.cur.begin(), S.cur.end(), before);
    S.size = S.cur.size();
    S.sorted = true;
}

void typical(Sampler & S) {
    if (S.typical_p >= 1.0f) return;
    sort_all(S);
    const double sum = softmax(S);
    const double log_sum = det_log(sum), mx = S.cur[0].logit;
    double entropy = 0.0;
    for (size_t i = 0; i < S.size; ++i)
        if (S.cur[i].p > 0.0) entropy += S.cur[i].p * (log_sum - ((double)S.cur[i].logit - mx));
    S.score.resize(S.size);
    S.order.resize(S.size);
    for (size_t i = 0; i < S.size; ++i) {
        S.score[i] = S.cur[i].p > 0.0 ? std::fabs(log_sum - ((double)S.cur[i].logit - mx) - entropy) : HUGE_VAL;
        S.order[i] = i;
    }
    std::sort(S.order.begin(), S.order.end(),
              [&](size_t a, size_t b) { return S.score[a] < S.score[b] || (S.score[a] == S.score[b] && a < b); });
    double cum = 0.0;
    size_t last = S.size;
    for (size_t i = 0; i < S.size; ++i) {
        cum += S.cur[S.order[i]].p;
        if (cum > S.typical_p && (S.min_keep == 0 || i + 1 >= (size_t)S.min_keep)) { last = i + 1; break; }
    }
    S.tmp.resize(last);
    for (size_t i = 0; i < last; ++i) S.tmp[i] = S.cur[S.order[i]];
    std::copy(S.tmp.begin(), S.tmp.end(), S.cur.begin());
    S.size = last;
    S.sorted = false;
}

// The nucleus of an unsorted set without sorting it all: a histogram of probability mass
// over logit bins (1/32 logit wide, from the max down) finds the bin where the running
// mass reaches p; only the candidates up to that bin are sorted. The cut is then found
// exactly as a full sort would find it (same order, same running sum).
const int NUCLEUS_BINS = 1024;
const float BINS_PER_LOGIT = 32.0f;

void top_p(Sampler & S) {
    if (S.top_p >= 1.0f) return;
    softmax(S);  // before any reordering, so the sum runs in canonical order
    size_t head = S.size;  // candidates [0, head) are sorted and hold the nucleus
    if (!S.sorted) {
        float mx = S.cur[0].logit;
        for (size_t i = 1; i < S.size; ++i) mx = std::max(mx, S.cur[i].logit);
        auto bin = [&](float l) {
            const float d = (mx - l) * BINS_PER_LOGIT;
            return d < (float)(NUCLEUS_BINS - 1) ? (int)d : NUCLEUS_BINS - 1;
        };
        std::vector<double> & mass = S.score;
        mass.assign(NUCLEUS_BINS, 0.0);
        for (size_t i = 0; i < S.size; ++i) mass[bin(S.cur[i].logit)] += S.cur[i].p;
        double cum = 0.0;
        int cut = NUCLEUS_BINS - 1;
        for (int b = 0; b < NUCLEUS_BINS; ++b) {
            cum += mass[b];
            if (cum >= S.top_p) { cut = b; break; }
        }
        auto end = std::partition(S.cur.begin(), S.cur.begin() + S.size,
                                  [&](const Cand & c) { return bin(c.logit) <= cut; });
        head = (size_t)(end - S.cur.begin());
        std::sort(S.cur.begin(), end, before);
    }
    double cum = 0.0;
    size_t last = 0;
    for (size_t i = 0; i < head; ++i) {
        cum += S.cur[i].p;
        if (cum >= S.top_p && i + 1 >= (size_t)S.min_keep) { last = i + 1; break; }
    }
    if (last == 0 && head < S.size) {  // rounding or min_keep reached past the head: sort it all
        std::sort(S.cur.begin() + head, S.cur.begin() + S.size, before);
        for (size_t i = head; i < S.size; ++i) {
            cum += S.cur[i].p;
            if (cum >= S.top_p && i + 1 >= (size_t)S.min_keep) { last = i + 1; break; }
        }
    }
    S.size = last ? last : S.size;
    S.sorted = true;
}

void min_p(Sampler & S) {
    if (S.min_p <= 0.0f || S.size == 0) return;
    float mx = S.cur[0].logit;
    for (size_t i = 1; i < S.size; ++i) mx = std::max(mx, S.cur[i].logit);
    const double min_logit = (double)mx + det_log((double)S.min_p);  // p_i >= min_p * p_max
    size_t kept = 0;
    for (size_t i = 0; i < S.size; ++i)
        if ((double)S.cur[i].logit >= min_logit) kept++;
    if (kept >= std::max<size_t>(1, (size_t)S.min_keep)) {
        size_t w = 0;  // stable filter: keeps the canonical order
        for (size_t i = 0; i < S.size; ++i)
            if ((double)S.cur[i].logit >= min_logit) S.cur[w++] = S.cur[i];
        S.size = w;
    } else {
        sort_all(S);
        S.size = std::min(S.size, (size_t)S.min_keep);
    }
}

// min-p straight from the row (same set and order as min_p() over every candidate);
// false when it keeps fewer than min_keep, which needs the sorted fallback.
bool min_p_direct(Sampler & S, const float * v, size_t n) {
    float mx = -INFINITY;
    for (size_t i = 0; i < n; ++i) mx = v[i] > mx ? v[i] : mx;
    const double min_logit = (double)mx + det_log((double)S.min_p);
    S.cur.clear();
    for (size_t i = 0; i < n; ++i)
        if ((double)v[i] >= min_logit) S.cur.push_back(Cand{v[i], (int32_t)i, 0.0});
    S.size = S.cur.size();
    S.sorted = false;
    return S.size >= std::max<size_t>(1, (size_t)S.min_keep);
}

int draw(Sampler & S) {
    const double r = S.rng.uniform();
    if (S.size == 1) { S.cur[0].p = 1.0; return 0; }
    softmax(S);
    const double target = r;  // p is normalised, so the target is r itself
    double run = 0.0;
    int last_live = 0;
    for (size_t i = 0; i < S.size; ++i) {
        if (S.cur[i].p <= 0.0) continue;
        last_live = (int)i;
        run += S.cur[i].p;
        if (run > target) return (int)i;
    }
    return last_live;  // rounding left the running sum a hair under r
}

}  // namespace

extern "C" {

int32_t eng_sampler_new(void) {
    g_samplers.push_back(new Sampler());
    return (int32_t)g_samplers.size() - 1;
}

void eng_sampler_free(int32_t h) {
    if (h >= 0 && h < (int32_t)g_samplers.size()) {
        delete g_samplers[h];
        g_samplers[h] = nullptr;
    }
}

int32_t eng_sampler_seed(int32_t h, int32_t seed_hi, int32_t seed_lo) {
    Sampler * S = get(h);
    if (!S) return -1;
    S->rng.seed(((uint64_t)(uint32_t)seed_hi << 32) | (uint32_t)seed_lo, PCG_STREAM);
    return 0;
}

int32_t eng_sampler_set_chain(int32_t h, int32_t top_k, float typical_p, float top_p, float min_p,
                              float temperature, int32_t min_keep) {
    Sampler * S = get(h);
    if (!S) return -1;
    if (!(top_p > 0.0f) || !(typical_p > 0.0f) || !(min_p <= 1.0f) || temperature != temperature || min_keep < 0) {
        eng::set_error("bad sampler chain (top_p %g, typical_p %g, min_p %g, temperature %g, min_keep %d)",
                       top_p, typical_p, min_p, temperature, min_keep);
        return -1;
    }
    S->top_k = top_k;
    S->typical_p = typical_p;
    S->top_p = top_p;
    S->min_p = min_p;
    S->temperature = temperature;
    S->min_keep = min_keep;
    return 0;
}

int32_t eng_sampler_set_penalties(int32_t h, float repeat, float frequency, float presence) {
    Sampler * S = get(h);
    if (!S) return -1;
    if (!(repeat > 0.0f)) { eng::set_error("repeat penalty must be > 0 (got %g)", repeat); return -1; }
    S->repeat = repeat;
    S->frequency = frequency;
    S->presence = presence;
    return 0;
}

int32_t eng_sampler_set_bias(int32_t h, const int32_t * ids, const float * bias, int32_t n) {
    Sampler * S = get(h);
    if (!S) return -1;
    if (n < 0 || (n > 0 && (!ids || !bias))) { eng::set_error("bad logit bias arrays"); return -1; }
    S->bias_ids.assign(ids, ids + n);
    S->bias_vals.assign(bias, bias + n);
    return 0;
}

int32_t eng_sampler_sample(int32_t h, int32_t logits, int32_t row, const int32_t * recent, int32_t n_recent) {
    Sampler * S = get(h);
    if (!S) return -1;
    GET(t, logits);
    if (t->type != GGML_TYPE_F32 || !t->data) { eng::set_error("sampling needs a computed F32 logits tensor"); return -1; }
    if (row < 0 || row >= t->ne[1]) { eng::set_error("logits row %d out of range (%lld rows)", row, (long long)t->ne[1]); return -1; }
    const size_t n = (size_t)t->ne[0];
    const float * x = (const float *)((const char *)t->data + row * t->nb[1]);

    // Bias and penalties touch a few logits: only then is the row copied.
    const float * v = x;
    const bool penalised = n_recent > 0 && !(S->repeat == 1.0f && S->frequency == 0.0f && S->presence == 0.0f);
    if (!S->bias_ids.empty() || penalised) {
        S->vals.assign(x, x + n);
        for (size_t i = 0; i < S->bias_ids.size(); ++i) {
            const int32_t id = S->bias_ids[i];
            if (id < 0 || (size_t)id >= n) { eng::set_error("logit bias token id %d outside the vocabulary (%zu)", id, n); return -1; }
            S->vals[id] += S->bias_vals[i];
        }
        if (apply_penalties(*S, recent, n_recent) < 0) return -1;
        v = S->vals.data();
    }

    if (S->temperature <= 0.0f) {
        size_t best = 0;
        float top = -INFINITY;  // in a register; NaN never compares greater, so it counts as -inf
        for (size_t i = 0; i < n; ++i)
            if (v[i] > top) { top = v[i]; best = i; }
        if (top == -INFINITY) { eng::set_error("every token has a logit of -inf or NaN (all banned)"); return -1; }
        S->cur.assign(1, Cand{top, (int32_t)best, 1.0});
        S->size = 1;
        return (int32_t)best;
    }
    const size_t k = S->top_k > 0 ? std::min((size_t)S->top_k, n) : n;
    if (k < n) {
        select_top_k(*S, v, n, k);
    } else if (S->top_k <= 0 && S->typical_p >= 1.0f && S->top_p >= 1.0f && S->min_p > 0.0f &&
               min_p_direct(*S, v, n)) {
        // min-p is the first cut: candidates were built only for the tokens it keeps
    } else {
        S->cur.resize(n);
        for (size_t i = 0; i < n; ++i) S->cur[i] = Cand{v[i] == v[i] ? v[i] : -INFINITY, (int32_t)i, 0.0};  // NaN would break the orderings
        S->size = n;
        S->sorted = false;
        if (S->top_k > 0) sort_all(*S);  // llama.cpp sorts when k covers the vocabulary
    }
    float mx = -INFINITY;
    for (size_t i = 0; i < S->size; ++i) mx = std::max(mx, S->cur[i].logit);
    if (mx == -INFINITY) { eng::set_error("every token has a logit of -inf (all banned)"); return -1; }
    typical(*S);
    top_p(*S);
    min_p(*S);
    for (size_t i = 0; i < S->size; ++i) S->cur[i].logit /= S->temperature;
    return S->cur[draw(*S)].id;
}

int32_t eng_sampler_candidates(int32_t h, int32_t * ids, float * probs, int32_t max) {
    Sampler * S = get(h);
    if (!S) return -1;
    const int32_t n = (int32_t)std::min<size_t>(S->size, (size_t)std::max(max, 0));
    for (int32_t i = 0; i < n; ++i) {
        if (ids) ids[i] = S->cur[i].id;
        if (probs) probs[i] = (float)S->cur[i].p;
    }
    return n;
}

double eng_sampler_uniform(int32_t h) {
    Sampler * S = get(h);
    return S ? S->rng.uniform() : -1.0;
}

}  // extern "C"
