// Checks sf_argmax (ties -> lowest index, NaN never chosen) and sf_sample_top_p against a C++ port of
// org.starflink.engine.generate.Sampler.sample (float64 softmax, nucleus sorted by probability then id).
#include "check_common.h"
#include <algorithm>
#include <numeric>

// Sampler.sample with the random draw r given.
static int sampler_ref(const std::vector<float>& logits, double temperature, double top_p, double r) {
    int vocab = (int)logits.size();
    double mx = -INFINITY;
    for (float l : logits) mx = std::max(mx, (double)l);
    std::vector<double> p(vocab);
    double sum = 0;
    for (int i = 0; i < vocab; ++i) {
        p[i] = std::exp((logits[i] - mx) / temperature);
        sum += p[i];
    }
    std::vector<int> order(vocab);
    for (int i = 0; i < vocab; ++i) {
        order[i] = i;
        p[i] /= sum;
    }
    std::sort(order.begin(), order.end(), [&](int a, int b) { return p[a] != p[b] ? p[a] > p[b] : a < b; });
    double mass = 0;
    int kept = 0;
    while (kept < vocab && (kept == 0 || mass < top_p)) mass += p[order[kept++]];
    double target = r * mass, cum = 0;
    for (int i = 0; i < kept; ++i) {
        cum += p[order[i]];
        if (target < cum) return order[i];
    }
    return order[kept - 1];
}

int main() {
    Rng rng(check_seed());
    sf_context* ctx;
    CK(sf_context_create(0, &ctx));
    printf("== sampling (token ids must be equal) ==\n");
    {
        int rows = 4, vocab = 128256;
        std::vector<float> l(rows * (size_t)vocab);
        for (auto& x : l) x = (float)rng.normal(3.0);
        std::vector<int> expect(rows);
        // row 0: a tie of the maximum at 900 and 77 -> 77; row 1: NaNs around; row 2: max at the end; row 3: all equal
        l[900] = 100.f;
        l[77] = 100.f;
        expect[0] = 77;
        float* r1 = l.data() + vocab;
        r1[0] = NAN;
        r1[5] = NAN;
        r1[4000] = 50.f;
        expect[1] = 4000;
        float* r2 = l.data() + 2 * (size_t)vocab;
        r2[vocab - 1] = 60.f;
        expect[2] = vocab - 1;
        float* r3 = l.data() + 3 * (size_t)vocab;
        for (int i = 0; i < vocab; ++i) r3[i] = -1.5f;
        expect[3] = 0;
        Buf dl(ctx, l.size() * 4), dout(ctx, rows * 4);
        dl.put(l);
        dout.poison();
        CK(sf_argmax(ctx, dl.as<float>(), rows, vocab, dout.as<int>()));
        auto got = dout.get<int>(rows);
        Err e;
        bool ok = got == expect;
        char extra[128];
        snprintf(extra, sizeof extra, "got %d %d %d %d, expected %d %d %d %d", got[0], got[1], got[2], got[3],
                 expect[0], expect[1], expect[2], expect[3]);
        report("argmax 4 rows x 128256: tie, NaN, last index, all equal", e, 0, 0, ok, extra);
    }
    {
        int trials = 0, mismatches = 0;
        std::string first_bad;
        for (int vocab : {1, 7, 32000, 128256}) {
            for (int trial = 0; trial < 40; ++trial) {
                std::vector<float> l(vocab);
                double sd = rng.uniform(0.5, 6.0);
                for (auto& x : l) x = (float)rng.normal(sd);
                if (trial % 4 == 1)  // ties: quantized logits
                    for (auto& x : l) x = std::round(x * 2) / 2;
                double temp = std::vector<double>{0.3, 0.7, 1.0, 1.5}[trial % 4];
                double top_p = std::vector<double>{0.5, 0.9, 0.95, 1.0, 0.1}[trial % 5];
                double r = rng.uniform(0, 1);
                Buf dl(ctx, (size_t)vocab * 4), dout(ctx, 4);
                dl.put(l);
                dout.poison();
                CK(sf_sample_top_p(ctx, dl.as<float>(), vocab, temp, top_p, r, dout.as<int>()));
                int got = dout.get<int>(1)[0], want = sampler_ref(l, temp, top_p, r);
                trials++;
                if (got != want) {
                    mismatches++;
                    if (first_bad.empty())
                        first_bad = "vocab " + std::to_string(vocab) + " got " + std::to_string(got) + " want " +
                                    std::to_string(want);
                }
            }
        }
        Err e;
        report("top-p sampling vs Sampler port, " + std::to_string(trials) + " draws (ties, T 0.3-1.5, p 0.1-1)", e,
               0, 0, mismatches == 0, "mismatches " + std::to_string(mismatches) + " " + first_bad);
    }
    {  // temperature 0 -> argmax
        std::vector<float> l(1000);
        for (auto& x : l) x = (float)rng.normal(1.0);
        l[321] = 9.f;
        Buf dl(ctx, l.size() * 4), dout(ctx, 4);
        dl.put(l);
        dout.poison();
        CK(sf_sample_top_p(ctx, dl.as<float>(), 1000, 0.0, 0.9, 0.5, dout.as<int>()));
        Err e;
        int got = dout.get<int>(1)[0];
        report("top-p with temperature 0 == argmax", e, 0, 0, got == 321, "got " + std::to_string(got));
    }
    CK(sf_context_destroy(ctx));
    return finish("check_sampling");
}
