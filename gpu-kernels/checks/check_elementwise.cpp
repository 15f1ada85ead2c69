// Checks the row and elementwise ops (embedding, RMSNorm, RoPE both conventions with llama3 scaling at
// non-contiguous positions, SwiGLU, residual add, cast) against float64 references.
#include "check_common.h"

static std::vector<float> bf_vec(const std::vector<uint16_t>& v) {
    std::vector<float> o(v.size());
    for (size_t i = 0; i < v.size(); ++i) o[i] = bf2f(v[i]);
    return o;
}

// Llama-3 inverse frequencies (rope_scaling factor 8, low 1, high 4, original 8192), computed on the host.
static std::vector<double> llama3_inv_freq(int hd, double theta) {
    std::vector<double> f(hd / 2);
    const double factor = 8, low = 1, high = 4, orig = 8192;
    const double low_wl = orig / low, high_wl = orig / high, pi = 3.14159265358979323846;
    for (int i = 0; i < hd / 2; ++i) {
        double inv = 1.0 / std::pow(theta, 2.0 * i / hd), wl = 2 * pi / inv;
        if (wl < high_wl) f[i] = inv;
        else if (wl > low_wl) f[i] = inv / factor;
        else {
            double s = (orig / wl - low) / (high - low);
            f[i] = (1 - s) * inv / factor + s * inv;
        }
    }
    return f;
}

int main() {
    Rng rng(check_seed());
    sf_context* ctx;
    CK(sf_context_create(0, &ctx));
    printf("== elementwise (BF16 outputs: rel L2 <= 5e-3, max abs <= 1 bf16 ulp of the largest; FP32: 1e-6) ==\n");

    {  // embedding: exact
        int vocab = 5000, dim = 576, T = 37;
        auto table = rand_bf16(rng, (size_t)vocab * dim, 1.0);
        std::vector<int> tok(T);
        for (auto& t : tok) t = rng.integer(0, vocab - 1);
        tok[0] = 0;
        tok[1] = vocab - 1;
        Buf dt(ctx, table.size() * 2), dk(ctx, T * 4), dout(ctx, (size_t)T * dim * 4);
        dt.put(table);
        dk.put(tok);
        dout.poison();
        CK(sf_embedding(ctx, dt.as<sf_bf16>(), vocab, dk.as<int>(), T, dim, dout.as<float>()));
        std::vector<double> ref((size_t)T * dim);
        for (int t = 0; t < T; ++t)
            for (int d = 0; d < dim; ++d) ref[(size_t)t * dim + d] = bf2f(table[(size_t)tok[t] * dim + d]);
        report("embedding gather vocab 5000 dim 576 T 37 (exact)", compare(dout.get<float>(ref.size()), ref), 0, 0);
    }
    for (int dim : {576, 4096, 4097}) {  // RMSNorm
        int T = 33;
        auto x = rand_f32(rng, (size_t)T * dim, 2.0);
        auto w = rand_bf16(rng, dim, 1.0);
        float eps = 1e-5f;
        Buf dx(ctx, x.size() * 4), dw(ctx, w.size() * 2), dout(ctx, x.size() * 2);
        dx.put(x);
        dw.put(w);
        dout.poison();
        CK(sf_rmsnorm(ctx, dx.as<float>(), dw.as<sf_bf16>(), eps, T, dim, dout.as<sf_bf16>()));
        std::vector<double> ref(x.size());
        double mx = 0;
        for (int t = 0; t < T; ++t) {
            double ss = 0;
            for (int d = 0; d < dim; ++d) ss += (double)x[(size_t)t * dim + d] * x[(size_t)t * dim + d];
            double inv = 1.0 / std::sqrt(ss / dim + eps);
            for (int d = 0; d < dim; ++d) {
                ref[(size_t)t * dim + d] = x[(size_t)t * dim + d] * inv * bf2f(w[d]);
                mx = std::max(mx, std::fabs(ref[(size_t)t * dim + d]));
            }
        }
        report("rmsnorm T 33 dim " + std::to_string(dim), compare(bf_vec(dout.get<uint16_t>(x.size())), ref), 5e-3,
               mx / 128);
    }
    for (int style : {SF_ROPE_INTERLEAVED, SF_ROPE_HALF})
        for (int hd : {64, 128}) {  // RoPE at Star positions: anchor 0..a-1, then a block at 8192.., one at 131000
            int T = 40, heads = 8;
            std::vector<int> pos(T);
            for (int t = 0; t < T; ++t) pos[t] = t < 16 ? t : (t < 32 ? 8192 + t : 131000 + t);
            auto inv = llama3_inv_freq(hd, 500000.0);
            auto x = rand_f32(rng, (size_t)T * heads * hd, 1.0);
            Buf dx(ctx, x.size() * 4), dp(ctx, T * 4), df(ctx, inv.size() * 8), dout(ctx, x.size() * 2);
            dx.put(x);
            dp.put(pos);
            df.put(inv);
            dout.poison();
            CK(sf_rope(ctx, dx.as<float>(), dp.as<int>(), T, heads, hd, df.as<double>(), style, dout.as<sf_bf16>()));
            std::vector<double> ref(x.size());
            double mx = 0;
            for (int t = 0; t < T; ++t)
                for (int h = 0; h < heads; ++h)
                    for (int i = 0; i < hd / 2; ++i) {
                        size_t base = ((size_t)t * heads + h) * hd;
                        size_t a = style == SF_ROPE_INTERLEAVED ? base + 2 * i : base + i;
                        size_t b = style == SF_ROPE_INTERLEAVED ? a + 1 : a + hd / 2;
                        double ang = (double)pos[t] * inv[i], c = std::cos(ang), s = std::sin(ang);
                        ref[a] = x[a] * c - x[b] * s;
                        ref[b] = x[a] * s + x[b] * c;
                        mx = std::max({mx, std::fabs(ref[a]), std::fabs(ref[b])});
                    }
            report(std::string("rope ") + (style == SF_ROPE_HALF ? "half" : "interleaved") + " hd " +
                       std::to_string(hd) + " llama3, positions 0..15, 8208.., 131032..",
                   compare(bf_vec(dout.get<uint16_t>(x.size())), ref), 5e-3, mx / 128);
        }
    {  // SwiGLU, add, cast
        size_t n = 3 * 14336 + 5;
        auto g = rand_f32(rng, n, 3.0), u = rand_f32(rng, n, 1.0);
        Buf dg(ctx, n * 4), du(ctx, n * 4), dout(ctx, n * 2), dc(ctx, n * 2);
        dg.put(g);
        du.put(u);
        dout.poison();
        dc.poison();
        CK(sf_swiglu(ctx, dg.as<float>(), du.as<float>(), n, dout.as<sf_bf16>()));
        std::vector<double> ref(n), refc(n);
        double mx = 0, mxc = 0;
        for (size_t i = 0; i < n; ++i) {
            ref[i] = g[i] / (1 + std::exp(-(double)g[i])) * u[i];
            refc[i] = g[i];
            mx = std::max(mx, std::fabs(ref[i]));
            mxc = std::max(mxc, std::fabs(refc[i]));
        }
        report("swiglu n = 3 x 14336 + 5", compare(bf_vec(dout.get<uint16_t>(n)), ref), 5e-3, mx / 128);
        CK(sf_cast_f32_bf16(ctx, dg.as<float>(), n, dc.as<sf_bf16>()));
        auto gc = dc.get<uint16_t>(n);
        size_t wrong = 0;
        for (size_t i = 0; i < n; ++i) wrong += gc[i] != f2bf(g[i]);
        Err e = compare(bf_vec(gc), refc);
        report("cast f32 -> bf16 (round to nearest even, bit exact)", e, 5e-3, mxc / 128, wrong == 0,
               "bits differing " + std::to_string(wrong));
        CK(sf_add(ctx, dg.as<float>(), du.as<float>(), n));
        std::vector<double> refa(n);
        for (size_t i = 0; i < n; ++i) refa[i] = (double)g[i] + u[i];
        report("residual add x += y (FP32)", compare(dg.get<float>(n), refa), 1e-6, 1e-5);
    }
    CK(sf_context_destroy(ctx));
    return finish("check_elementwise");
}
