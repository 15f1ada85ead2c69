// Argmax and top-p sampling on the device, mirroring org.starflink.engine.generate.Sampler.
#include "common.cuh"
#include <cub/cub.cuh>

namespace {

// (value, index) that wins: larger value, then lower index; NaN never wins.
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
    if (v != v) return false;
    if (bv != bv) return true;
    return v > bv || (v == bv && i < bi);
}

__global__ void argmax_kernel(const float* __restrict__ logits, int vocab, int32_t* __restrict__ out) {
    const float* row = logits + (size_t)blockIdx.x * vocab;
    float bv = NAN;
    int bi = INT_MAX;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float v = row[i];
        if (better(v, i, bv, bi)) { bv = v; bi = i; }
    }
    for (int off = 16; off > 0; off >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, bv, off);
        int oi = __shfl_xor_sync(0xffffffffu, bi, off);
        if (better(ov, oi, bv, bi)) { bv = ov; bi = oi; }
    }
    __shared__ float sv[32];
    __shared__ int si[32];
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) { sv[w] = bv; si[w] = bi; }
    __syncthreads();
    if (w == 0) {
        int nw = blockDim.x >> 5;
        bv = lane < nw ? sv[lane] : NAN;
        bi = lane < nw ? si[lane] : INT_MAX;
        for (int off = 16; off > 0; off >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, bv, off);
            int oi = __shfl_xor_sync(0xffffffffu, bi, off);
            if (better(ov, oi, bv, bi)) { bv = ov; bi = oi; }
        }
        if (lane == 0) out[blockIdx.x] = bi == INT_MAX ? 0 : bi;
    }
}

// Max and sum of exp((l - max) / temperature) in float64 (one block).
__global__ void softmax_stats_kernel(const float* __restrict__ logits, int vocab, double temperature,
                                     double* __restrict__ stats) {
    __shared__ double red[32];
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    double mx = -INFINITY;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float v = logits[i];
        if (v == v) mx = fmax(mx, (double)v);
    }
    for (int off = 16; off > 0; off >>= 1) mx = fmax(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    if (lane == 0) red[w] = mx;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int i = 1; i < nw; ++i) red[0] = fmax(red[0], red[i]);
    }
    __syncthreads();
    mx = red[0];
    __syncthreads();
    double sum = 0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float v = logits[i];
        if (v == v) sum += exp(((double)v - mx) / temperature);
    }
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (lane == 0) red[w] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = 0;
        for (int i = 0; i < nw; ++i) s += red[i];
        stats[0] = mx;
        stats[1] = s;
    }
}

__global__ void iota_kernel(int* __restrict__ ids, float* __restrict__ keys, const float* __restrict__ logits,
                            int vocab) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < vocab; i += gridDim.x * blockDim.x) {
        ids[i] = i;
        float v = logits[i];
        keys[i] = v == v ? v : -INFINITY;  // NaN sorts last
    }
}

// probabilities in sorted order
__global__ void prob_kernel(const float* __restrict__ sorted_logits, int vocab, double temperature,
                            const double* __restrict__ stats, double* __restrict__ p) {
    double mx = stats[0], sum = stats[1];
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < vocab; i += gridDim.x * blockDim.x)
        p[i] = exp(((double)sorted_logits[i] - mx) / temperature) / sum;
}

// kept = smallest k with cum[k-1] >= top_p (at least 1); then the first i < kept with r * cum[kept-1] < cum[i].
__global__ void pick_kernel(const double* __restrict__ cum, const int* __restrict__ sorted_ids, int vocab,
                            double top_p, double r, int32_t* __restrict__ out) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    int lo = 0, hi = vocab - 1;  // first index with cum >= top_p (or vocab-1)
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cum[mid] >= top_p) hi = mid; else lo = mid + 1;
    }
    int kept = lo + 1;
    double target = r * cum[kept - 1];
    lo = 0;
    hi = kept - 1;  // first i with target < cum[i], else kept-1
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (target < cum[mid]) hi = mid; else lo = mid + 1;
    }
    out[0] = sorted_ids[lo];
}

size_t a256(size_t x) { return (x + 255) & ~(size_t)255; }

}  // namespace

extern "C" int sf_argmax(sf_context* ctx, const float* logits, int rows, int vocab, int32_t* out) {
    const char* fn = "sf_argmax";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(logits && out && rows >= 0 && vocab > 0, fn);
    if (rows == 0) return 0;
    argmax_kernel<<<rows, 1024, 0, ctx->stream>>>(logits, vocab, out);
    return sf_after_launch(ctx, fn);
}

extern "C" int sf_sample_top_p(sf_context* ctx, const float* logits, int vocab, double temperature, double top_p,
                               double r, int32_t* out) {
    const char* fn = "sf_sample_top_p";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(logits && out && vocab > 0 && temperature >= 0 && top_p > 0 && top_p <= 1 && r >= 0 && r < 1, fn);
    if (temperature == 0) return sf_argmax(ctx, logits, 1, vocab, out);
    size_t sort_tmp = 0, scan_tmp = 0;
    SF_CUDA(cub::DeviceRadixSort::SortPairsDescending(nullptr, sort_tmp, (const float*)nullptr, (float*)nullptr,
                                                      (const int*)nullptr, (int*)nullptr, vocab, 0, 32,
                                                      ctx->stream),
            fn);
    SF_CUDA(cub::DeviceScan::InclusiveSum(nullptr, scan_tmp, (const double*)nullptr, (double*)nullptr, vocab,
                                          ctx->stream),
            fn);
    size_t off = 0;
    size_t o_keys = off; off = a256(off + (size_t)vocab * 4);
    size_t o_skeys = off; off = a256(off + (size_t)vocab * 4);
    size_t o_ids = off; off = a256(off + (size_t)vocab * 4);
    size_t o_sids = off; off = a256(off + (size_t)vocab * 4);
    size_t o_p = off; off = a256(off + (size_t)vocab * 8);
    size_t o_cum = off; off = a256(off + (size_t)vocab * 8);
    size_t o_stats = off; off = a256(off + 16);
    size_t o_tmp = off; off = a256(off + std::max(sort_tmp, scan_tmp));
    char* s = nullptr;
    int rc = sf_scratch(ctx, off, (void**)&s, fn);
    if (rc) return rc;
    float* keys = (float*)(s + o_keys);
    float* skeys = (float*)(s + o_skeys);
    int* ids = (int*)(s + o_ids);
    int* sids = (int*)(s + o_sids);
    double* p = (double*)(s + o_p);
    double* cum = (double*)(s + o_cum);
    double* stats = (double*)(s + o_stats);
    void* tmp = s + o_tmp;
    softmax_stats_kernel<<<1, 1024, 0, ctx->stream>>>(logits, vocab, temperature, stats);
    if ((rc = sf_after_launch(ctx, fn))) return rc;
    unsigned g = std::min<unsigned>(ceil_div_u(vocab, 256), (unsigned)ctx->num_sms * 4);
    iota_kernel<<<g, 256, 0, ctx->stream>>>(ids, keys, logits, vocab);
    if ((rc = sf_after_launch(ctx, fn))) return rc;
    // Stable radix sort: equal logits keep ascending ids, as Sampler's comparator breaks ties.
    SF_CUDA(cub::DeviceRadixSort::SortPairsDescending(tmp, sort_tmp, keys, skeys, ids, sids, vocab, 0, 32,
                                                      ctx->stream),
            fn);
    prob_kernel<<<g, 256, 0, ctx->stream>>>(skeys, vocab, temperature, stats, p);
    if ((rc = sf_after_launch(ctx, fn))) return rc;
    SF_CUDA(cub::DeviceScan::InclusiveSum(tmp, scan_tmp, p, cum, vocab, ctx->stream), fn);
    pick_kernel<<<1, 32, 0, ctx->stream>>>(cum, sids, vocab, top_p, r, out);
    return sf_after_launch(ctx, fn);
}
