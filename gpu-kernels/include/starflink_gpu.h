/*
 * starflink_gpu.h -- the C ABI of Starflink's CUDA kernels (libstarflink_gpu.so).
 *
 * Conventions (fixed; the Java GpuBackend depends on them):
 *  - Every tensor is row-major and contiguous. Every pointer argument named *_d or documented as "device" is
 *    a device pointer obtained from sf_malloc (or any cudaMalloc'd memory of the context's device).
 *  - T = query rows, S = keys, H = query heads, Hkv = KV heads (GQA: query head h reads KV head h / (H / Hkv)),
 *    hd = head dim, dim = hidden size, F = SwiGLU hidden size, vocab = vocabulary size.
 *  - The residual stream is FP32 [T, dim]. Weights are BF16 in Hugging Face orientation [out, in] (y = x W^T).
 *    BF16 is passed as sf_bf16 (the raw 16 bits: the high half of an IEEE float32).
 *  - Positions are int32 and need not be contiguous (Star Attention: anchor at 0..a-1, a block at its global
 *    positions). Positions must be < INT32_MAX.
 *  - Every function returns 0 on success and a non-zero SF_ERR_* code on failure; sf_last_error() then
 *    returns a one-line message naming the call and the CUDA / cuBLAS error. The message is per calling
 *    thread (thread-local); nothing else is global: all mutable state lives in a context.
 *  - Every op is enqueued on the context's stream and returns without waiting (asynchronous), except
 *    sf_upload, sf_download, sf_synchronize and sf_device_memory, which wait for the stream. An error of an
 *    asynchronous kernel shows at the next synchronizing call (or immediately if the environment variable
 *    SF_SYNC_CHECK=1 was set when the context was created: every op then synchronizes and checks).
 *  - A context is not thread-safe: one thread at a time (callers that share a context per device lock it).
 *  - No managed memory is ever allocated. The context owns a grow-only scratch buffer used by attention
 *    (tile plan, split-KV partials) and top-p sampling; it grows (synchronizing the stream) when an op needs
 *    more, and sf_context_reserve can size it up front.
 */
#ifndef STARFLINK_GPU_H
#define STARFLINK_GPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t sf_bf16;
typedef struct sf_context sf_context;

enum {
    SF_OK = 0,
    SF_ERR_INVALID = 1,     /* a bad argument (null pointer, size out of range, unsupported shape) */
    SF_ERR_CUDA = 2,        /* a CUDA runtime error */
    SF_ERR_CUBLAS = 3,      /* a cuBLAS error */
    SF_ERR_UNSUPPORTED = 4  /* not built in (e.g. GEMM in a build without cuBLAS) */
};

/* RoPE rotation conventions. */
enum {
    SF_ROPE_INTERLEAVED = 0, /* pairs (2i, 2i+1): llama2.c, Meta's reference */
    SF_ROPE_HALF = 1         /* pairs (i, i + hd/2): Hugging Face rotate_half */
};

/* Attention kernel choice (sf_attention_opts.algo). */
enum {
    SF_ATTN_AUTO = 0,      /* tiled tensor-core kernel for hd 64/128 (split-KV for few rows), else SIMPLE */
    SF_ATTN_SIMPLE = 1,    /* one warp per (row, head), FP32 CUDA cores; any even hd <= 256; slow, a reference */
    SF_ATTN_TILED = 2      /* the tiled tensor-core kernel (hd 64 or 128 only) with opts.num_splits */
};

typedef struct sf_attention_opts {
    int algo;        /* SF_ATTN_* */
    int num_splits;  /* SF_ATTN_TILED only: split the keys over this many partials (0 = choose) */
    int block_m;     /* SF_ATTN_TILED only: query rows per thread block, 16, 64 or 128 (0 = choose) */
    int variant;     /* SF_ATTN_TILED with block_m 128: 1 = mma.sync 8 warps x 16 rows, 2 = mma.sync 4 warps x 32
                        rows, 3 = Hopper wgmma (hd 128 only), 4 = wgmma with a 128-register cap (2 blocks per
                        SM), 5 = wgmma with the next S product overlapping the softmax, 6 = wgmma with 3 warpgroups
                        (192 rows a block), 7 = FlashAttention-3 style (TMA producer warpgroup, 2 consumer
                        warpgroups in ping-pong, 128-key tiles; K/V 16-byte aligned, else 6), 8 = the same
                        without ping-pong; 0 = choose */
} sf_attention_opts;

/* ---- errors, devices, contexts ---- */
const char* sf_last_error(void);
int sf_device_count(int* count);
/* A context for one device: a stream (non-blocking), a cuBLAS handle with its workspace, a scratch buffer. */
int sf_context_create(int device, sf_context** out);
int sf_context_destroy(sf_context* ctx);          /* frees everything the context owns; NULL is a no-op */
/* Run the context's work on an external stream (e.g. PyTorch's current stream); NULL = the context's own.
   The context never destroys an external stream. */
int sf_context_set_stream(sf_context* ctx, void* cuda_stream);
int sf_context_reserve(sf_context* ctx, size_t scratch_bytes);
int sf_synchronize(sf_context* ctx);

/* ---- memory ---- */
int sf_malloc(sf_context* ctx, void** ptr, size_t bytes);       /* cudaMalloc on the context's device */
int sf_free(sf_context* ctx, void* ptr);                        /* NULL is a no-op */
int sf_upload(sf_context* ctx, void* dst_device, const void* src_host, size_t bytes);    /* waits */
int sf_download(sf_context* ctx, void* dst_host, const void* src_device, size_t bytes);  /* waits */
int sf_copy(sf_context* ctx, void* dst_device, const void* src_device, size_t bytes);    /* async */
int sf_device_memory(sf_context* ctx, size_t* used_bytes, size_t* total_bytes);

/* ---- elementwise and row ops (all device pointers) ---- */
/* out[t, :] = float(table[tokens[t], :]); table BF16 [vocab, dim], tokens int32 [T] (must be in range),
   out FP32 [T, dim]. */
int sf_embedding(sf_context* ctx, const sf_bf16* table, int vocab, const int32_t* tokens, int T, int dim,
                 float* out);
/* out = bf16(x / sqrt(mean(x^2) + eps) * w): x FP32 [T, dim], w BF16 [dim], out BF16 [T, dim]. Sum of
   squares in FP32. */
int sf_rmsnorm(sf_context* ctx, const float* x, const sf_bf16* w, float eps, int T, int dim, sf_bf16* out);
/* Rotary embedding at positions pos int32 [T]: x FP32 [T, heads, hd] -> out BF16 [T, heads, hd]. inv_freq is
   a device FLOAT64 table [hd/2] (llama3 scaling already applied by the host; a float32 table widens
   exactly); angle = pos * inv_freq in float64. style = SF_ROPE_INTERLEAVED or SF_ROPE_HALF. hd even, <= 512.
   To append to a KV cache, pass out = cache + offset * heads * hd. */
int sf_rope(sf_context* ctx, const float* x, const int32_t* pos, int T, int heads, int hd,
            const double* inv_freq, int style, sf_bf16* out);
int sf_cast_f32_bf16(sf_context* ctx, const float* x, size_t n, sf_bf16* out);   /* round to nearest even */
/* out = bf16(silu(gate) * up): gate, up FP32 [n] (n = T * F), out BF16 [n]. */
int sf_swiglu(sf_context* ctx, const float* gate, const float* up, size_t n, sf_bf16* out);
/* x += y, FP32 [n]. */
int sf_add(sf_context* ctx, float* x, const float* y, size_t n);

/* ---- GEMM (cuBLAS, BF16 in, FP32 accumulate and out) ----
   c[M, N] = a[M, K] w[N, K]^T (+ bias[N]) + beta * c. a, w, bias BF16; c FP32. bias may be NULL.
   beta = 1 accumulates into c (e.g. o_proj / down_proj straight into the residual stream). */
int sf_gemm(sf_context* ctx, const sf_bf16* a, const sf_bf16* w, const sf_bf16* bias, int M, int N, int K,
            float beta, float* c);

/* ---- attention ----
   q BF16 [T, H, hd], qpos int32 [T]; k, v BF16 [S, Hkv, hd] (a KV cache [capacity, Hkv, hd] with S rows in
   use works as is), kpos int32 [S]. Key j is visible to row i iff kpos[j] <= qpos[i]. Scale 1/sqrt(hd);
   softmax statistics and accumulation FP32 (QK^T and PV on BF16 tensor cores in the tiled kernel).
   out FP32 [T, H, hd], lse FP32 [T, H] (natural log of the sum of exp(scaled scores)). A row with no visible
   key gets out = 0 and lse = -inf. H % Hkv == 0; hd even <= 256 (tiled kernel: 64 or 128). S may be 0.
   opts may be NULL (SF_ATTN_AUTO). */
int sf_attention(sf_context* ctx, const sf_bf16* q, const int32_t* qpos, int T, int H, const sf_bf16* k,
                 const sf_bf16* v, const int32_t* kpos, int S, int Hkv, int hd, float* out, float* lse,
                 const sf_attention_opts* opts);
/* Attention of q over the union of two key sets (k1 / v1 / kpos1 of S1 keys, k2 / v2 / kpos2 of S2 keys; either
   may be empty), as if they were one: the same result as sf_attention over each and sf_attention_merge of the
   two, in one pass where the kernel allows (the FA3-style kernel, hd 128), else exactly those three steps. Star
   phase 1 over [anchor; block] without concatenating the caches. */
int sf_attention2(sf_context* ctx, const sf_bf16* q, const int32_t* qpos, int T, int H, const sf_bf16* k1,
                  const sf_bf16* v1, const int32_t* kpos1, int S1, const sf_bf16* k2, const sf_bf16* v2,
                  const int32_t* kpos2, int S2, int Hkv, int hd, float* out, float* lse,
                  const sf_attention_opts* opts);
/* Merge n >= 1 partials (outs[i] FP32 [T, H, hd], lses[i] FP32 [T, H]; outs and lses are HOST arrays of n
   device pointers): LSE = log sum_i exp(lse_i), out = sum_i exp(lse_i - LSE) out_i, in FP32, in the order
   i = 0..n-1 (deterministic). A partial with lse = -inf weighs 0 (its out is not read); if all are -inf the
   row gets out = 0, lse = -inf. out / lse may alias outs[0] / lses[0]. */
int sf_attention_merge(sf_context* ctx, int n, const float* const* outs, const float* const* lses, int T, int H,
                       int hd, float* out, float* lse);

/* ---- sampling ---- */
/* out[r] = argmax of logits[r, :] (FP32 [rows, vocab]); the lowest index wins a tie; NaN is never chosen.
   out int32 [rows] on the device. */
int sf_argmax(sf_context* ctx, const float* logits, int rows, int vocab, int32_t* out);
/* One token from logits FP32 [vocab] like org.starflink.engine.generate.Sampler: p = softmax(logits /
   temperature) in float64; the nucleus is the smallest set of most likely tokens (ties by lower id) whose mass
   reaches top_p (at least one token); the token is the first in that order whose cumulative mass exceeds
   r * nucleus mass (else the last kept). r in [0, 1) comes from the host. temperature == 0 means argmax.
   out int32 [1] on the device. Uses vocab * 24 bytes (+ sort temp) of scratch. */
int sf_sample_top_p(sf_context* ctx, const float* logits, int vocab, double temperature, double top_p, double r,
                    int32_t* out);

#ifdef __cplusplus
}
#endif
#endif
