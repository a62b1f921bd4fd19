// llama_ref: a small driver over libllama (built from the pinned sdist) that the tests
// and benchmarks use as the oracle. It is our code; only libllama is upstream's.
//
//   llama_ref eval     MODEL THREADS N_PREDICT LOGITS_OUT TOKENS...   greedy run
//   llama_ref bench    MODEL THREADS N_PROMPT N_GEN REPS              prefill/decode timing
//   llama_ref tokenize MODEL ADD_SPECIAL PARSE_SPECIAL < records      token ids per text
//   llama_ref pieces   MODEL SPECIAL                                  token_to_piece, hex
//   llama_ref quantize IN OUT FTYPE                                   llama_model_quantize
//
// Records on stdin are u32 little-endian length + bytes. Context parameters are
// llama.cpp's defaults (flash attention auto, F16 KV cache, n_ubatch 512), so the
// numbers are the ones a llama.cpp user gets.
#include "llama.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static void quiet_log(enum ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

static llama_model * load_model(const char * path) {
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(path, mp);
    if (!model) { fprintf(stderr, "llama_ref: cannot load %s\n", path); exit(2); }
    return model;
}

static llama_context * make_context(llama_model * model, int threads, int n_ctx) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "llama_ref: cannot create context\n"); exit(2); }
    return ctx;
}

static int argmax(const float * x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

static int cmd_eval(int argc, char ** argv) {
    if (argc < 6) { fprintf(stderr, "usage: eval MODEL THREADS N_PREDICT LOGITS_OUT TOKENS...\n"); return 2; }
    llama_model * model = load_model(argv[1]);
    int threads = atoi(argv[2]), n_predict = atoi(argv[3]);
    std::vector<llama_token> prompt;
    for (int i = 5; i < argc; i++) prompt.push_back(atoi(argv[i]));
    int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    int n_ctx = (int)prompt.size() + n_predict + 16;
    llama_context * ctx = make_context(model, threads, n_ctx);

    if (llama_decode(ctx, llama_batch_get_one(prompt.data(), prompt.size())) != 0) return 3;
    const float * logits = llama_get_logits_ith(ctx, -1);
    FILE * f = fopen(argv[4], "wb");
    fwrite(logits, sizeof(float), n_vocab, f);
    fclose(f);
    printf("tokens:");
    llama_token tok = argmax(logits, n_vocab);
    for (int i = 0; i < n_predict; i++) {
        printf(" %d", tok);
        if (i + 1 == n_predict) break;
        if (llama_decode(ctx, llama_batch_get_one(&tok, 1)) != 0) return 3;
        tok = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
    }
    printf("\n");
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

static int cmd_bench(int argc, char ** argv) {
    if (argc < 6) { fprintf(stderr, "usage: bench MODEL THREADS N_PROMPT N_GEN REPS\n"); return 2; }
    llama_model * model = load_model(argv[1]);
    int threads = atoi(argv[2]), n_prompt = atoi(argv[3]), n_gen = atoi(argv[4]), reps = atoi(argv[5]);
    int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_context * ctx = make_context(model, threads, n_prompt + n_gen + 16);
    std::vector<llama_token> prompt(n_prompt);
    for (int i = 0; i < n_prompt; i++) prompt[i] = (i * 7919 + 13) % n_vocab;
    for (int r = 0; r < reps; r++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        double t0 = now_ms();
        if (llama_decode(ctx, llama_batch_get_one(prompt.data(), prompt.size())) != 0) return 3;
        llama_token tok = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
        double t1 = now_ms();
        for (int i = 0; i < n_gen; i++) {
            if (llama_decode(ctx, llama_batch_get_one(&tok, 1)) != 0) return 3;
            tok = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
        }
        double t2 = now_ms();
        printf("{\"prefill_ms\": %.3f, \"decode_ms\": %.3f, \"n_prompt\": %d, \"n_gen\": %d}\n",
               t1 - t0, t2 - t1, n_prompt, n_gen);
        fflush(stdout);
    }
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

static bool read_record(std::string & out) {
    uint32_t n;
    if (fread(&n, 4, 1, stdin) != 1) return false;
    out.resize(n);
    if (n && fread(&out[0], 1, n, stdin) != n) return false;
    return true;
}

static int cmd_tokenize(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: tokenize MODEL ADD_SPECIAL PARSE_SPECIAL\n"); return 2; }
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 2;
    const llama_vocab * vocab = llama_model_get_vocab(model);
    bool add_special = atoi(argv[2]) != 0, parse_special = atoi(argv[3]) != 0;
    std::string text;
    std::vector<llama_token> toks;
    while (read_record(text)) {
        toks.resize(text.size() + 16);
        int n = llama_tokenize(vocab, text.data(), text.size(), toks.data(), toks.size(), add_special, parse_special);
        if (n < 0) { toks.resize(-n); n = llama_tokenize(vocab, text.data(), text.size(), toks.data(), toks.size(), add_special, parse_special); }
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", toks[i]);
        printf("\n");
    }
    llama_model_free(model);
    return 0;
}

static int cmd_pieces(int argc, char ** argv) {
    if (argc < 3) { fprintf(stderr, "usage: pieces MODEL SPECIAL\n"); return 2; }
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 2;
    const llama_vocab * vocab = llama_model_get_vocab(model);
    bool special = atoi(argv[2]) != 0;
    char buf[1024];
    for (int t = 0; t < llama_vocab_n_tokens(vocab); t++) {
        int n = llama_token_to_piece(vocab, t, buf, sizeof buf, 0, special);
        for (int i = 0; i < n; i++) printf("%02x", (unsigned char)buf[i]);
        printf("\n");
    }
    llama_model_free(model);
    return 0;
}

static int cmd_quantize(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: quantize IN OUT FTYPE\n"); return 2; }
    llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.ftype = (llama_ftype)atoi(argv[3]);
    qp.nthread = 2;
    return llama_model_quantize(argv[1], argv[2], &qp) == 0 ? 0 : 3;
}

int main(int argc, char ** argv) {
    if (argc < 2) { fprintf(stderr, "usage: llama_ref eval|bench|tokenize|pieces|quantize ...\n"); return 2; }
    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    std::string cmd = argv[1];
    if (cmd == "eval") return cmd_eval(argc - 1, argv + 1);
    if (cmd == "bench") return cmd_bench(argc - 1, argv + 1);
    if (cmd == "tokenize") return cmd_tokenize(argc - 1, argv + 1);
    if (cmd == "pieces") return cmd_pieces(argc - 1, argv + 1);
    if (cmd == "quantize") return cmd_quantize(argc - 1, argv + 1);
    fprintf(stderr, "llama_ref: unknown command %s\n", cmd.c_str());
    return 2;
}
