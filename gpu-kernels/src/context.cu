// Contexts, errors and memory.
#include "common.cuh"
#include <cstdlib>
#include <cstring>

static thread_local char g_last_error[512] = "no error";

int sf_set_error(int code, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    return code;
}

extern "C" const char* sf_last_error(void) { return g_last_error; }

int sf_enter(sf_context* ctx, const char* fn) {
    int cur = -1;
    SF_CUDA(cudaGetDevice(&cur), fn);
    if (cur != ctx->device) SF_CUDA(cudaSetDevice(ctx->device), fn);
    return 0;
}

int sf_after_launch(sf_context* ctx, const char* fn) {
    SF_CUDA(cudaGetLastError(), fn);
    if (ctx->sync_check) SF_CUDA(cudaStreamSynchronize(ctx->stream), fn);
    return 0;
}

static int grow(sf_context* ctx, void** buf, size_t* have, size_t bytes, void** out, const char* fn) {
    if (bytes > *have) {
        SF_CUDA(cudaStreamSynchronize(ctx->stream), fn);
        if (*buf) SF_CUDA(cudaFree(*buf), fn);
        *buf = nullptr;
        *have = 0;
        size_t want = bytes < ((size_t)1 << 20) ? ((size_t)1 << 20) : bytes + bytes / 4;
        SF_CUDA(cudaMalloc(buf, want), fn);
        *have = want;
    }
    *out = *buf;
    return 0;
}

int sf_scratch(sf_context* ctx, size_t bytes, void** out, const char* fn) {
    return grow(ctx, &ctx->scratch, &ctx->scratch_bytes, bytes, out, fn);
}

int sf_scratch_aux(sf_context* ctx, size_t bytes, void** out, const char* fn) {
    return grow(ctx, &ctx->scratch_aux, &ctx->scratch_aux_bytes, bytes, out, fn);
}

// Defined in gemm.cu (no-ops without cuBLAS).
int sf_cublas_create(sf_context* ctx);
void sf_cublas_destroy(sf_context* ctx);
int sf_cublas_set_stream(sf_context* ctx);

extern "C" int sf_device_count(int* count) {
    SF_CHECK_ARG(count, "sf_device_count");
    *count = 0;
    cudaError_t e = cudaGetDeviceCount(count);
    if (e != cudaSuccess) {
        *count = 0;
        return sf_set_error(SF_ERR_CUDA, "sf_device_count: cudaGetDeviceCount failed: %s (%s)",
                            cudaGetErrorName(e), cudaGetErrorString(e));
    }
    return 0;
}

extern "C" int sf_context_create(int device, sf_context** out) {
    const char* fn = "sf_context_create";
    SF_CHECK_ARG(out, fn);
    *out = nullptr;
    int n = 0;
    SF_CUDA(cudaGetDeviceCount(&n), fn);
    if (device < 0 || device >= n)
        return sf_set_error(SF_ERR_INVALID, "%s: device %d out of range (%d devices)", fn, device, n);
    SF_CUDA(cudaSetDevice(device), fn);
    sf_context* ctx = new sf_context();
    ctx->device = device;
    cudaError_t e = cudaDeviceGetAttribute(&ctx->num_sms, cudaDevAttrMultiProcessorCount, device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&ctx->own_stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        delete ctx;
        return sf_set_error(SF_ERR_CUDA, "%s: %s", fn, cudaGetErrorString(e));
    }
    ctx->stream = ctx->own_stream;
    const char* sc = getenv("SF_SYNC_CHECK");
    ctx->sync_check = sc && strcmp(sc, "1") == 0;
    int r = sf_cublas_create(ctx);
    if (r) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", sf_last_error());
        sf_context_destroy(ctx);
        return sf_set_error(r, "%s", msg);
    }
    *out = ctx;
    return 0;
}

extern "C" int sf_context_destroy(sf_context* ctx) {
    if (!ctx) return 0;
    const char* fn = "sf_context_destroy";
    cudaSetDevice(ctx->device);
    int rc = 0;
    if (ctx->stream) {
        cudaError_t e = cudaStreamSynchronize(ctx->stream);
        if (e != cudaSuccess) rc = sf_set_error(SF_ERR_CUDA, "%s: %s", fn, cudaGetErrorString(e));
    }
    sf_cublas_destroy(ctx);
    if (ctx->scratch) cudaFree(ctx->scratch);
    if (ctx->scratch_aux) cudaFree(ctx->scratch_aux);
    if (ctx->own_stream) cudaStreamDestroy(ctx->own_stream);
    delete ctx;
    return rc;
}

extern "C" int sf_context_set_stream(sf_context* ctx, void* stream) {
    const char* fn = "sf_context_set_stream";
    SF_ENTER(ctx, fn);
    ctx->stream = stream ? (cudaStream_t)stream : ctx->own_stream;
    return sf_cublas_set_stream(ctx);
}

extern "C" int sf_context_reserve(sf_context* ctx, size_t bytes) {
    const char* fn = "sf_context_reserve";
    SF_ENTER(ctx, fn);
    void* p;
    return sf_scratch(ctx, bytes, &p, fn);
}

extern "C" int sf_synchronize(sf_context* ctx) {
    const char* fn = "sf_synchronize";
    SF_ENTER(ctx, fn);
    SF_CUDA(cudaStreamSynchronize(ctx->stream), fn);
    return 0;
}

extern "C" int sf_malloc(sf_context* ctx, void** ptr, size_t bytes) {
    const char* fn = "sf_malloc";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(ptr, fn);
    *ptr = nullptr;
    if (bytes == 0) bytes = 1;
    cudaError_t e = cudaMalloc(ptr, bytes);
    if (e != cudaSuccess) {
        *ptr = nullptr;
        return sf_set_error(SF_ERR_CUDA, "%s: cudaMalloc(%zu bytes) failed: %s (%s)", fn, bytes,
                            cudaGetErrorName(e), cudaGetErrorString(e));
    }
    return 0;
}

extern "C" int sf_free(sf_context* ctx, void* ptr) {
    const char* fn = "sf_free";
    if (!ptr) return 0;
    SF_ENTER(ctx, fn);
    SF_CUDA(cudaFree(ptr), fn);
    return 0;
}

extern "C" int sf_upload(sf_context* ctx, void* dst, const void* src, size_t bytes) {
    const char* fn = "sf_upload";
    SF_ENTER(ctx, fn);
    if (bytes == 0) return 0;
    SF_CHECK_ARG(dst && src, fn);
    SF_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream), fn);
    SF_CUDA(cudaStreamSynchronize(ctx->stream), fn);
    return 0;
}

extern "C" int sf_download(sf_context* ctx, void* dst, const void* src, size_t bytes) {
    const char* fn = "sf_download";
    SF_ENTER(ctx, fn);
    if (bytes == 0) return 0;
    SF_CHECK_ARG(dst && src, fn);
    SF_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream), fn);
    SF_CUDA(cudaStreamSynchronize(ctx->stream), fn);
    return 0;
}

extern "C" int sf_copy(sf_context* ctx, void* dst, const void* src, size_t bytes) {
    const char* fn = "sf_copy";
    SF_ENTER(ctx, fn);
    if (bytes == 0) return 0;
    SF_CHECK_ARG(dst && src, fn);
    SF_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx->stream), fn);
    return sf_after_launch(ctx, fn);
}

extern "C" int sf_device_memory(sf_context* ctx, size_t* used, size_t* total) {
    const char* fn = "sf_device_memory";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(used && total, fn);
    size_t fr = 0, tot = 0;
    SF_CUDA(cudaStreamSynchronize(ctx->stream), fn);
    SF_CUDA(cudaMemGetInfo(&fr, &tot), fn);
    *used = tot - fr;
    *total = tot;
    return 0;
}
