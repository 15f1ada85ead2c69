// Internal helpers shared by the kernels: the context, error reporting, BF16 conversions.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cstdio>
#include <cstdarg>
#include <cstdint>
#include <cmath>
#include <algorithm>
#include "../include/starflink_gpu.h"

struct sf_context {
    int device = 0;
    int num_sms = 0;
    cudaStream_t own_stream = nullptr;
    cudaStream_t stream = nullptr;     // own_stream or an external one
    void* cublas = nullptr;            // cublasHandle_t when built with cuBLAS
    void* cublas_ws = nullptr;
    size_t cublas_ws_bytes = 0;
    void* scratch = nullptr;
    size_t scratch_bytes = 0;
    void* scratch_aux = nullptr;       // a second grow-only buffer, for an op that calls ops using scratch
    size_t scratch_aux_bytes = 0;
    bool sync_check = false;           // SF_SYNC_CHECK=1: synchronize + check after every op
};

// Sets the thread-local last-error message; returns code.
int sf_set_error(int code, const char* fmt, ...);

#define SF_CHECK_ARG(cond, fn)                                                        \
    do {                                                                              \
        if (!(cond)) return sf_set_error(SF_ERR_INVALID, "%s: invalid argument (%s)", fn, #cond); \
    } while (0)

#define SF_CUDA(call, fn)                                                             \
    do {                                                                              \
        cudaError_t e_ = (call);                                                      \
        if (e_ != cudaSuccess)                                                        \
            return sf_set_error(SF_ERR_CUDA, "%s: %s failed: %s (%s)", fn, #call,     \
                                cudaGetErrorName(e_), cudaGetErrorString(e_));        \
    } while (0)

// Make ctx's device current (cheap when it already is).
int sf_enter(sf_context* ctx, const char* fn);
// After a launch: check the launch error (and, in sync-check mode, the execution).
int sf_after_launch(sf_context* ctx, const char* fn);
// Scratch of at least bytes (grows, synchronizing the stream first).
int sf_scratch(sf_context* ctx, size_t bytes, void** out, const char* fn);
// The second scratch buffer (same contract; never used by an op that another op calls).
int sf_scratch_aux(sf_context* ctx, size_t bytes, void** out, const char* fn);

#define SF_ENTER(ctx, fn)                                      \
    do {                                                       \
        if (!(ctx)) return sf_set_error(SF_ERR_INVALID, "%s: null context", fn); \
        int r_ = sf_enter(ctx, fn);                            \
        if (r_) return r_;                                     \
    } while (0)

__device__ __forceinline__ float bf2f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float bfbits2f(uint16_t b) { return __uint_as_float(((uint32_t)b) << 16); }

static inline unsigned ceil_div_u(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }
