// Checks sf_gemm (cuBLAS, BF16 in, FP32 out) against float64: decode (M = 1), ragged M, bias, beta = 1.
#include "check_common.h"

int main() {
    Rng rng(check_seed());
    sf_context* ctx;
    CK(sf_context_create(0, &ctx));
    printf("== gemm c = a w^T (+ bias) + beta c (rel L2 <= 1e-4) ==\n");
    struct G { int M, N, K; bool bias; float beta; };
    for (G g : {G{1, 4096, 4096, false, 0.f}, G{7, 1000, 576, true, 0.f}, G{300, 1536, 576, false, 1.f},
                G{129, 896, 896, true, 1.f}, G{1, 128256, 64, false, 0.f}}) {
        auto a = rand_bf16(rng, (size_t)g.M * g.K, 1.0), w = rand_bf16(rng, (size_t)g.N * g.K, 0.05),
             b = rand_bf16(rng, g.N, 1.0);
        auto c0 = rand_f32(rng, (size_t)g.M * g.N, 1.0);
        Buf da(ctx, a.size() * 2), dw(ctx, w.size() * 2), db(ctx, b.size() * 2), dc(ctx, c0.size() * 4);
        da.put(a);
        dw.put(w);
        db.put(b);
        if (g.beta != 0) dc.put(c0); else dc.poison();
        CK(sf_gemm(ctx, da.as<sf_bf16>(), dw.as<sf_bf16>(), g.bias ? db.as<sf_bf16>() : nullptr, g.M, g.N, g.K,
                   g.beta, dc.as<float>()));
        std::vector<double> ref((size_t)g.M * g.N);
        for (int m = 0; m < g.M; ++m)
            for (int n = 0; n < g.N; ++n) {
                double s = 0;
                for (int k = 0; k < g.K; ++k) s += (double)bf2f(a[(size_t)m * g.K + k]) * bf2f(w[(size_t)n * g.K + k]);
                if (g.bias) s += bf2f(b[n]);
                if (g.beta != 0) s += g.beta * c0[(size_t)m * g.N + n];
                ref[(size_t)m * g.N + n] = s;
            }
        char name[128];
        snprintf(name, sizeof name, "gemm M %d N %d K %d%s%s", g.M, g.N, g.K, g.bias ? " +bias" : "",
                 g.beta != 0 ? " beta 1" : "");
        report(name, compare(dc.get<float>(ref.size()), ref), 1e-4, 1e-2);
    }
    CK(sf_context_destroy(ctx));
    return finish("check_gemm");
}
