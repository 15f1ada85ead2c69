// Row and elementwise ops: embedding gather, RMSNorm, RoPE, SwiGLU, residual add, FP32 -> BF16 cast.
#include "common.cuh"

static unsigned grid_for(sf_context* ctx, size_t n, int threads) {
    size_t b = (n + threads - 1) / threads;
    size_t cap = (size_t)ctx->num_sms * 16;
    return (unsigned)std::max<size_t>(1, std::min(b, cap));
}

// ---- embedding: one block per token ----
__global__ void embedding_kernel(const uint16_t* __restrict__ table, const int32_t* __restrict__ tokens, int dim,
                                 float* __restrict__ out) {
    int t = blockIdx.x;
    const uint16_t* row = table + (size_t)tokens[t] * dim;
    float* o = out + (size_t)t * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = bfbits2f(row[i]);
}

extern "C" int sf_embedding(sf_context* ctx, const sf_bf16* table, int vocab, const int32_t* tokens, int T,
                            int dim, float* out) {
    const char* fn = "sf_embedding";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(table && tokens && out && vocab > 0 && T >= 0 && dim > 0, fn);
    if (T == 0) return 0;
    embedding_kernel<<<T, 256, 0, ctx->stream>>>(table, tokens, dim, out);
    return sf_after_launch(ctx, fn);
}

// ---- RMSNorm: one block per row, FP32 sum of squares ----
__global__ void rmsnorm_kernel(const float* __restrict__ x, const uint16_t* __restrict__ w, float eps, int dim,
                               __nv_bfloat16* __restrict__ out) {
    int t = blockIdx.x;
    const float* xr = x + (size_t)t * dim;
    float ss = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
    __shared__ float red[32];
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) red[0] = v;
    }
    __syncthreads();
    float inv = rsqrtf(red[0] / dim + eps);
    __nv_bfloat16* orow = out + (size_t)t * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) orow[i] = __float2bfloat16_rn(xr[i] * inv * bfbits2f(w[i]));
}

extern "C" int sf_rmsnorm(sf_context* ctx, const float* x, const sf_bf16* w, float eps, int T, int dim,
                          sf_bf16* out) {
    const char* fn = "sf_rmsnorm";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(x && w && out && T >= 0 && dim > 0, fn);
    if (T == 0) return 0;
    rmsnorm_kernel<<<T, 256, 0, ctx->stream>>>(x, w, eps, dim, (__nv_bfloat16*)out);
    return sf_after_launch(ctx, fn);
}

// ---- RoPE: one block per token; cos/sin of the hd/2 angles in float64 once, applied to every head ----
__global__ void rope_kernel(const float* __restrict__ x, const int32_t* __restrict__ pos, int heads, int hd,
                            const double* __restrict__ inv_freq, int style, __nv_bfloat16* __restrict__ out) {
    extern __shared__ float cs[];  // [hd/2] cos, then [hd/2] sin
    int t = blockIdx.x;
    int half = hd / 2;
    double p = (double)pos[t];
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        double s, c;
        sincos(p * inv_freq[i], &s, &c);
        cs[i] = (float)c;
        cs[half + i] = (float)s;
    }
    __syncthreads();
    const float* xr = x + (size_t)t * heads * hd;
    __nv_bfloat16* orow = out + (size_t)t * heads * hd;
    int pairs = heads * half;
    for (int j = threadIdx.x; j < pairs; j += blockDim.x) {
        int h = j / half, i = j - h * half;
        int a = style == SF_ROPE_INTERLEAVED ? h * hd + 2 * i : h * hd + i;
        int b = style == SF_ROPE_INTERLEAVED ? a + 1 : a + half;
        float c = cs[i], s = cs[half + i];
        float x0 = xr[a], x1 = xr[b];
        orow[a] = __float2bfloat16_rn(x0 * c - x1 * s);
        orow[b] = __float2bfloat16_rn(x0 * s + x1 * c);
    }
}

extern "C" int sf_rope(sf_context* ctx, const float* x, const int32_t* pos, int T, int heads, int hd,
                       const double* inv_freq, int style, sf_bf16* out) {
    const char* fn = "sf_rope";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(x && pos && inv_freq && out && T >= 0 && heads > 0 && hd > 0 && hd % 2 == 0 && hd <= 512, fn);
    SF_CHECK_ARG(style == SF_ROPE_INTERLEAVED || style == SF_ROPE_HALF, fn);
    if (T == 0) return 0;
    rope_kernel<<<T, 256, hd * sizeof(float), ctx->stream>>>(x, pos, heads, hd, inv_freq, style,
                                                              (__nv_bfloat16*)out);
    return sf_after_launch(ctx, fn);
}

// ---- elementwise ----
__global__ void cast_kernel(const float* __restrict__ x, size_t n, __nv_bfloat16* __restrict__ out) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(x[i]);
}

__global__ void swiglu_kernel(const float* __restrict__ g, const float* __restrict__ u, size_t n,
                              __nv_bfloat16* __restrict__ out) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float a = g[i];
        out[i] = __float2bfloat16_rn(a / (1.f + expf(-a)) * u[i]);
    }
}

__global__ void add_kernel(float* __restrict__ x, const float* __restrict__ y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] += y[i];
}

extern "C" int sf_cast_f32_bf16(sf_context* ctx, const float* x, size_t n, sf_bf16* out) {
    const char* fn = "sf_cast_f32_bf16";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(x && out, fn);
    if (n == 0) return 0;
    cast_kernel<<<grid_for(ctx, n, 256), 256, 0, ctx->stream>>>(x, n, (__nv_bfloat16*)out);
    return sf_after_launch(ctx, fn);
}

extern "C" int sf_swiglu(sf_context* ctx, const float* gate, const float* up, size_t n, sf_bf16* out) {
    const char* fn = "sf_swiglu";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(gate && up && out, fn);
    if (n == 0) return 0;
    swiglu_kernel<<<grid_for(ctx, n, 256), 256, 0, ctx->stream>>>(gate, up, n, (__nv_bfloat16*)out);
    return sf_after_launch(ctx, fn);
}

extern "C" int sf_add(sf_context* ctx, float* x, const float* y, size_t n) {
    const char* fn = "sf_add";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(x && y, fn);
    if (n == 0) return 0;
    add_kernel<<<grid_for(ctx, n, 256), 256, 0, ctx->stream>>>(x, y, n);
    return sf_after_launch(ctx, fn);
}
