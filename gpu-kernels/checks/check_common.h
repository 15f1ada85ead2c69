// Shared helpers of the check programs: BF16 on the host, fresh random inputs, poisoned outputs, error norms.
// Every check compares the GPU op (called through the C ABI) with a plain float64 CPU reference and prints
// one PASS/FAIL line per case; the program exits non-zero if any case failed.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>
#include "../include/starflink_gpu.h"

#define CK(call)                                                                          \
    do {                                                                                  \
        int rc_ = (call);                                                                 \
        if (rc_ != 0) {                                                                   \
            fprintf(stderr, "FATAL %s:%d: %s -> %d: %s\n", __FILE__, __LINE__, #call, rc_, \
                    sf_last_error());                                                     \
            exit(2);                                                                      \
        }                                                                                 \
    } while (0)

static inline uint16_t f2bf(float f) {  // round to nearest even
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static inline float bf2f(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

struct Rng {
    std::mt19937_64 g;
    explicit Rng(uint64_t seed) : g(seed) {}
    double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(g); }
    double normal(double sd) { return std::normal_distribution<double>(0.0, sd)(g); }
    int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
};

static inline uint64_t check_seed() {
    const char* s = getenv("SF_SEED");
    uint64_t seed = s ? strtoull(s, nullptr, 10)
                      : (uint64_t)std::chrono::high_resolution_clock::now().time_since_epoch().count();
    printf("seed %llu (set SF_SEED to repeat)\n", (unsigned long long)seed);
    return seed;
}

// Device buffer through the C ABI.
struct Buf {
    sf_context* ctx = nullptr;
    void* p = nullptr;
    size_t bytes = 0;
    Buf() = default;
    Buf(sf_context* c, size_t b) : ctx(c), bytes(b) { CK(sf_malloc(c, &p, b)); }
    Buf(const Buf&) = delete;
    Buf& operator=(const Buf&) = delete;
    ~Buf() {
        if (p) sf_free(ctx, p);
    }
    template <class T> T* as() const { return (T*)p; }
    template <class T> void put(const std::vector<T>& v) { CK(sf_upload(ctx, p, v.data(), v.size() * sizeof(T))); }
    template <class T> std::vector<T> get(size_t n) const {
        std::vector<T> v(n);
        CK(sf_download(ctx, v.data(), p, n * sizeof(T)));
        return v;
    }
    void poison() {  // all bits set: NaN as float32 and as bf16, -1 as int32
        std::vector<unsigned char> h(bytes, 0xff);
        CK(sf_upload(ctx, p, h.data(), bytes));
    }
};

static int g_failures = 0, g_cases = 0;

struct Err {
    double rel = 0, maxabs = 0;
    size_t unwritten = 0;  // NaN left where a value was expected (poison survived) or produced
};

static inline Err compare(const std::vector<float>& got, const std::vector<double>& ref) {
    Err e;
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        double g = got[i], r = ref[i];
        if (std::isnan(g)) { e.unwritten++; continue; }
        if (std::isinf(r) || std::isinf(g)) {
            if (g != r) e.unwritten++;  // an infinity must match exactly
            continue;
        }
        double d = g - r;
        num += d * d;
        den += r * r;
        e.maxabs = std::max(e.maxabs, std::fabs(d));
    }
    e.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    return e;
}

static inline bool report(const std::string& name, const Err& e, double tol_rel, double tol_abs,
                          bool extra_ok = true, const std::string& extra = "") {
    bool ok = e.unwritten == 0 && e.rel <= tol_rel && e.maxabs <= tol_abs && extra_ok;
    g_cases++;
    if (!ok) g_failures++;
    printf("%s %-58s rel %.2e (tol %.0e)  max abs %.2e (tol %.0e)  bad %zu%s%s\n", ok ? "PASS" : "FAIL",
           name.c_str(), e.rel, tol_rel, e.maxabs, tol_abs, e.unwritten, extra.empty() ? "" : "  ", extra.c_str());
    fflush(stdout);
    return ok;
}

static inline int finish(const char* prog) {
    printf("%s: %d cases, %d failed\n", prog, g_cases, g_failures);
    return g_failures ? 1 : 0;
}

static inline std::vector<uint16_t> rand_bf16(Rng& r, size_t n, double sd) {
    std::vector<uint16_t> v(n);
    for (auto& x : v) x = f2bf((float)r.normal(sd));
    return v;
}
static inline std::vector<float> rand_f32(Rng& r, size_t n, double sd) {
    std::vector<float> v(n);
    for (auto& x : v) x = (float)r.normal(sd);
    return v;
}
