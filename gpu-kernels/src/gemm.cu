// GEMM through cuBLAS: c[M,N] = a[M,K] w[N,K]^T (+ bias) + beta c, BF16 in, FP32 accumulate and out.
// Row-major c is column-major c^T [N, M] = w a^T: cublasGemmEx(OP_T on w (col-major [K, N]), OP_N on a).
#include "common.cuh"

__global__ void bias_add_kernel(float* c, const __nv_bfloat16* bias, int M, int N) {
    size_t n = (size_t)M * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        c[i] += __bfloat162float(bias[i % N]);
}

#ifdef SF_HAVE_CUBLAS
#include <cublas_v2.h>

static const size_t kCublasWorkspace = (size_t)32 << 20;

#define SF_CUBLAS(call, fn)                                                                   \
    do {                                                                                      \
        cublasStatus_t s_ = (call);                                                           \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                      \
            return sf_set_error(SF_ERR_CUBLAS, "%s: %s failed: %s (%s)", fn, #call,           \
                                cublasGetStatusName(s_), cublasGetStatusString(s_));          \
    } while (0)

int sf_cublas_set_stream(sf_context* ctx) {
    const char* fn = "sf_context_set_stream";
    if (!ctx->cublas) return 0;
    cublasHandle_t h = (cublasHandle_t)ctx->cublas;
    SF_CUBLAS(cublasSetStream(h, ctx->stream), fn);
    SF_CUBLAS(cublasSetWorkspace(h, ctx->cublas_ws, ctx->cublas_ws_bytes), fn);
    return 0;
}

int sf_cublas_create(sf_context* ctx) {
    const char* fn = "sf_context_create";
    cublasHandle_t h = nullptr;
    SF_CUBLAS(cublasCreate(&h), fn);
    ctx->cublas = h;
    SF_CUDA(cudaMalloc(&ctx->cublas_ws, kCublasWorkspace), fn);
    ctx->cublas_ws_bytes = kCublasWorkspace;
    SF_CUBLAS(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), fn);
    return sf_cublas_set_stream(ctx);
}

void sf_cublas_destroy(sf_context* ctx) {
    if (ctx->cublas) cublasDestroy((cublasHandle_t)ctx->cublas);
    if (ctx->cublas_ws) cudaFree(ctx->cublas_ws);
    ctx->cublas = nullptr;
    ctx->cublas_ws = nullptr;
}

extern "C" int sf_gemm(sf_context* ctx, const sf_bf16* a, const sf_bf16* w, const sf_bf16* bias, int M, int N,
                       int K, float beta, float* c) {
    const char* fn = "sf_gemm";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(a && w && c && M >= 0 && N > 0 && K > 0, fn);
    if (M == 0) return 0;
    cublasHandle_t h = (cublasHandle_t)ctx->cublas;
    const float alpha = 1.0f;
    SF_CUBLAS(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, CUDA_R_16BF, K, a, CUDA_R_16BF, K,
                           &beta, c, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
              fn);
    if (bias) {
        size_t n = (size_t)M * N;
        unsigned blocks = (unsigned)std::min<size_t>((n + 255) / 256, (size_t)ctx->num_sms * 8);
        bias_add_kernel<<<blocks, 256, 0, ctx->stream>>>(c, (const __nv_bfloat16*)bias, M, N);
    }
    return sf_after_launch(ctx, fn);
}

#else  // built without cuBLAS

int sf_cublas_create(sf_context*) { return 0; }
void sf_cublas_destroy(sf_context*) {}
int sf_cublas_set_stream(sf_context*) { return 0; }

extern "C" int sf_gemm(sf_context*, const sf_bf16*, const sf_bf16*, const sf_bf16*, int, int, int, float,
                       float*) {
    return sf_set_error(SF_ERR_UNSUPPORTED, "sf_gemm: this libstarflink_gpu was built without cuBLAS");
}
#endif
