// Checks sf_attention (tiled tensor-core kernel, split-KV, simple kernel) and sf_attention_merge against a
// float64 CPU reference: GQA, 1-row queries, ragged tiles, non-contiguous positions, all-visible and causal,
// rows with no visible key, all -inf merges, merge order-freedom, and flat device memory over many calls.
#include "check_common.h"
#include <algorithm>
#include <numeric>

// Reference attention in float64 on the BF16-rounded inputs.
static void ref_attention(const std::vector<uint16_t>& q, const std::vector<int>& qpos, int T, int H,
                          const std::vector<uint16_t>& k, const std::vector<uint16_t>& v, const std::vector<int>& kpos,
                          int S, int Hkv, int hd, std::vector<double>& out, std::vector<double>& lse) {
    out.assign((size_t)T * H * hd, 0.0);
    lse.assign((size_t)T * H, -INFINITY);
    const double scale = 1.0 / std::sqrt((double)hd);
    const int G = H / Hkv;
#pragma omp parallel for schedule(dynamic)
    for (int th = 0; th < T * H; ++th) {
        int t = th / H, h = th % H, g = h / G;
        std::vector<double> sc(S);
        double mx = -INFINITY;
        for (int j = 0; j < S; ++j) {
            if (kpos[j] > qpos[t]) { sc[j] = -INFINITY; continue; }
            double d = 0;
            for (int e = 0; e < hd; ++e)
                d += (double)bf2f(q[(size_t)th * hd + e]) * bf2f(k[((size_t)j * Hkv + g) * hd + e]);
            sc[j] = d * scale;
            mx = std::max(mx, sc[j]);
        }
        if (mx == -INFINITY) continue;
        double sum = 0;
        std::vector<double> acc(hd, 0.0);
        for (int j = 0; j < S; ++j) {
            if (sc[j] == -INFINITY) continue;
            double p = std::exp(sc[j] - mx);
            sum += p;
            for (int e = 0; e < hd; ++e) acc[e] += p * bf2f(v[((size_t)j * Hkv + g) * hd + e]);
        }
        for (int e = 0; e < hd; ++e) out[(size_t)th * hd + e] = acc[e] / sum;
        lse[th] = mx + std::log(sum);
    }
}

struct Case {
    std::string name;
    int T, S, H, Hkv, hd;
    std::vector<int> qpos, kpos;
    int algo = SF_ATTN_AUTO, block_m = 0, splits = 0, variant = 0;
};

static std::vector<int> range(int n, int start) {
    std::vector<int> v(n);
    std::iota(v.begin(), v.end(), start);
    return v;
}

static void run_case(sf_context* ctx, Rng& rng, const Case& c) {
    size_t nq = (size_t)c.T * c.H * c.hd, nkv = (size_t)c.S * c.Hkv * c.hd;
    auto q = rand_bf16(rng, nq, 1.0), k = rand_bf16(rng, std::max<size_t>(nkv, 1), 1.0),
         v = rand_bf16(rng, std::max<size_t>(nkv, 1), 1.0);
    Buf dq(ctx, nq * 2), dk(ctx, std::max<size_t>(nkv, 1) * 2), dv(ctx, std::max<size_t>(nkv, 1) * 2),
        dqp(ctx, c.T * 4), dkp(ctx, std::max(c.S, 1) * 4), dout(ctx, nq * 4), dlse(ctx, (size_t)c.T * c.H * 4);
    dq.put(q);
    dk.put(k);
    dv.put(v);
    dqp.put(c.qpos);
    if (c.S) dkp.put(c.kpos);
    dout.poison();
    dlse.poison();
    sf_attention_opts o{c.algo, c.splits, c.block_m, c.variant};
    CK(sf_attention(ctx, dq.as<sf_bf16>(), dqp.as<int>(), c.T, c.H, dk.as<sf_bf16>(), dv.as<sf_bf16>(),
                    dkp.as<int>(), c.S, c.Hkv, c.hd, dout.as<float>(), dlse.as<float>(), &o));
    CK(sf_synchronize(ctx));
    std::vector<double> ro, rl;
    ref_attention(q, c.qpos, c.T, c.H, k, v, c.kpos, c.S, c.Hkv, c.hd, ro, rl);
    auto go = dout.get<float>(nq);
    auto gl = dlse.get<float>((size_t)c.T * c.H);
    // rows with no visible key must be exactly 0 / -inf
    size_t empty_rows = 0, empty_bad = 0;
    for (size_t th = 0; th < rl.size(); ++th)
        if (rl[th] == -INFINITY) {
            empty_rows++;
            for (int e = 0; e < c.hd; ++e)
                if (go[th * c.hd + e] != 0.0f) { empty_bad++; break; }
        }
    Err eo = compare(go, ro), el = compare(gl, rl);
    char extra[160];
    snprintf(extra, sizeof extra, "lse max abs %.1e, empty rows %zu", el.maxabs, empty_rows);
    bool lse_ok = el.unwritten == 0 && el.maxabs <= 2e-3 && empty_bad == 0;
    report(c.name, eo, 1e-2, 5e-2, lse_ok, extra);
}

// sf_attention2 over two key sets (kept apart, as the engine keeps the anchor and the block) == the float64
// reference over their concatenation.
static void two_sets_case(sf_context* ctx, Rng& rng, const std::string& name, int T, int H, int Hkv, int hd,
                          const std::vector<int>& qpos, const std::vector<int>& kpos1, const std::vector<int>& kpos2,
                          sf_attention_opts o) {
    const int S1 = (int)kpos1.size(), S2 = (int)kpos2.size(), S = S1 + S2;
    size_t nq = (size_t)T * H * hd, row = (size_t)Hkv * hd;
    auto q = rand_bf16(rng, nq, 1.0), k = rand_bf16(rng, std::max<size_t>(S * row, 1), 1.0),
         v = rand_bf16(rng, std::max<size_t>(S * row, 1), 1.0);
    std::vector<int> kpos(kpos1);
    kpos.insert(kpos.end(), kpos2.begin(), kpos2.end());
    auto part = [&](const std::vector<uint16_t>& x, int from, int n) {
        return std::vector<uint16_t>(x.begin() + (size_t)from * row, x.begin() + (size_t)(from + n) * row);
    };
    Buf dq(ctx, nq * 2), dk1(ctx, std::max<size_t>(S1 * row, 1) * 2), dv1(ctx, std::max<size_t>(S1 * row, 1) * 2),
        dk2(ctx, std::max<size_t>(S2 * row, 1) * 2), dv2(ctx, std::max<size_t>(S2 * row, 1) * 2), dqp(ctx, T * 4),
        dkp1(ctx, std::max(S1, 1) * 4), dkp2(ctx, std::max(S2, 1) * 4), dout(ctx, nq * 4),
        dlse(ctx, (size_t)T * H * 4);
    dq.put(q);
    if (S1) { dk1.put(part(k, 0, S1)); dv1.put(part(v, 0, S1)); dkp1.put(kpos1); }
    if (S2) { dk2.put(part(k, S1, S2)); dv2.put(part(v, S1, S2)); dkp2.put(kpos2); }
    dqp.put(qpos);
    dout.poison();
    dlse.poison();
    CK(sf_attention2(ctx, dq.as<sf_bf16>(), dqp.as<int>(), T, H, dk1.as<sf_bf16>(), dv1.as<sf_bf16>(), dkp1.as<int>(),
                     S1, dk2.as<sf_bf16>(), dv2.as<sf_bf16>(), dkp2.as<int>(), S2, Hkv, hd, dout.as<float>(),
                     dlse.as<float>(), &o));
    CK(sf_synchronize(ctx));
    std::vector<double> ro, rl;
    ref_attention(q, qpos, T, H, k, v, kpos, S, Hkv, hd, ro, rl);
    auto go = dout.get<float>(nq);
    auto gl = dlse.get<float>((size_t)T * H);
    size_t empty_rows = 0, empty_bad = 0;
    for (size_t th = 0; th < rl.size(); ++th)
        if (rl[th] == -INFINITY) {
            empty_rows++;
            for (int e = 0; e < hd; ++e)
                if (go[th * hd + e] != 0.0f) { empty_bad++; break; }
        }
    Err eo = compare(go, ro), el = compare(gl, rl);
    char extra[160];
    snprintf(extra, sizeof extra, "lse max abs %.1e, empty rows %zu", el.maxabs, empty_rows);
    report(name, eo, 1e-2, 5e-2, el.unwritten == 0 && el.maxabs <= 2e-3 && empty_bad == 0, extra);
}

// Merge reference in float64.
static void ref_merge(const std::vector<std::vector<float>>& outs, const std::vector<std::vector<float>>& lses,
                      int rows, int hd, std::vector<double>& out, std::vector<double>& lse) {
    out.assign((size_t)rows * hd, 0.0);
    lse.assign(rows, -INFINITY);
    int n = (int)outs.size();
    for (int r = 0; r < rows; ++r) {
        double mx = -INFINITY;
        for (int i = 0; i < n; ++i) mx = std::max(mx, (double)lses[i][r]);
        if (mx == -INFINITY) continue;
        double s = 0;
        for (int i = 0; i < n; ++i)
            if (lses[i][r] != -INFINITY) s += std::exp(lses[i][r] - mx);
        double L = mx + std::log(s);
        lse[r] = L;
        for (int i = 0; i < n; ++i) {
            if (lses[i][r] == -INFINITY) continue;
            double w = std::exp(lses[i][r] - L);
            for (int e = 0; e < hd; ++e) out[(size_t)r * hd + e] += w * outs[i][(size_t)r * hd + e];
        }
    }
}

static void merge_case(sf_context* ctx, Rng& rng, const std::string& name, int n, int T, int H, int hd,
                       double p_neg_inf, bool all_neg_inf, bool alias) {
    int rows = T * H;
    std::vector<std::vector<float>> outs(n), lses(n);
    std::vector<Buf*> bo, bl;
    std::vector<const float*> po, pl;
    for (int i = 0; i < n; ++i) {
        outs[i] = rand_f32(rng, (size_t)rows * hd, 1.0);
        lses[i].resize(rows);
        for (int r = 0; r < rows; ++r) {
            bool ninf = all_neg_inf || rng.uniform(0, 1) < p_neg_inf;
            lses[i][r] = ninf ? -INFINITY : (float)rng.uniform(-30, 30);
            if (ninf)  // a partial with no visible key: its out must not be read (NaN here)
                for (int e = 0; e < hd; ++e) outs[i][(size_t)r * hd + e] = NAN;
        }
        bo.push_back(new Buf(ctx, (size_t)rows * hd * 4));
        bl.push_back(new Buf(ctx, (size_t)rows * 4));
        bo.back()->put(outs[i]);
        bl.back()->put(lses[i]);
        po.push_back(bo.back()->as<float>());
        pl.push_back(bl.back()->as<float>());
    }
    Buf dout(ctx, (size_t)rows * hd * 4), dlse(ctx, (size_t)rows * 4);
    float* o = alias ? bo[0]->as<float>() : dout.as<float>();
    float* l = alias ? bl[0]->as<float>() : dlse.as<float>();
    if (!alias) {
        dout.poison();
        dlse.poison();
    }
    CK(sf_attention_merge(ctx, n, po.data(), pl.data(), T, H, hd, o, l));
    CK(sf_synchronize(ctx));
    std::vector<double> ro, rl;
    ref_merge(outs, lses, rows, hd, ro, rl);
    std::vector<float> go(ro.size()), gl(rl.size());
    CK(sf_download(ctx, go.data(), o, go.size() * 4));
    CK(sf_download(ctx, gl.data(), l, gl.size() * 4));
    Err eo = compare(go, ro), el = compare(gl, rl);
    size_t ninf = 0;
    for (double x : rl) ninf += x == -INFINITY;
    char extra[128];
    snprintf(extra, sizeof extra, "lse max abs %.1e, -inf rows %zu", el.maxabs, ninf);
    report(name, eo, 1e-5, 1e-4, el.unwritten == 0 && el.maxabs <= 1e-4, extra);
    for (auto* b : bo) delete b;
    for (auto* b : bl) delete b;
}

// Attention over the whole KV == merge of attention over random pieces (the Star Attention identity).
static void split_merge_case(sf_context* ctx, Rng& rng, int pieces) {
    int T = 40, H = 8, Hkv = 2, hd = 128, S = 1500;
    std::vector<int> qpos(T), kpos(S);
    for (int t = 0; t < T; ++t) qpos[t] = 1000 + t * 20;
    for (int j = 0; j < S; ++j) kpos[j] = j;
    auto q = rand_bf16(rng, (size_t)T * H * hd, 1.0), k = rand_bf16(rng, (size_t)S * Hkv * hd, 1.0),
         v = rand_bf16(rng, (size_t)S * Hkv * hd, 1.0);
    Buf dq(ctx, q.size() * 2), dk(ctx, k.size() * 2), dv(ctx, v.size() * 2), dqp(ctx, T * 4), dkp(ctx, S * 4);
    dq.put(q);
    dk.put(k);
    dv.put(v);
    dqp.put(qpos);
    dkp.put(kpos);
    std::vector<int> cuts = {0, S};
    for (int i = 1; i < pieces; ++i) cuts.push_back(rng.integer(1, S - 1));
    std::sort(cuts.begin(), cuts.end());
    std::vector<Buf*> bufs;
    std::vector<const float*> po, pl;
    std::vector<int> order(pieces);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng.g);
    for (int pi : order) {
        int s0 = cuts[pi], s1 = cuts[pi + 1];
        Buf* o = new Buf(ctx, (size_t)T * H * hd * 4);
        Buf* l = new Buf(ctx, (size_t)T * H * 4);
        o->poison();
        l->poison();
        size_t off = (size_t)s0 * Hkv * hd;
        CK(sf_attention(ctx, dq.as<sf_bf16>(), dqp.as<int>(), T, H, dk.as<sf_bf16>() + off, dv.as<sf_bf16>() + off,
                        dkp.as<int>() + s0, s1 - s0, Hkv, hd, o->as<float>(), l->as<float>(), nullptr));
        bufs.push_back(o);
        bufs.push_back(l);
        po.push_back(o->as<float>());
        pl.push_back(l->as<float>());
    }
    Buf dout(ctx, (size_t)T * H * hd * 4), dlse(ctx, (size_t)T * H * 4);
    dout.poison();
    dlse.poison();
    CK(sf_attention_merge(ctx, pieces, po.data(), pl.data(), T, H, hd, dout.as<float>(), dlse.as<float>()));
    CK(sf_synchronize(ctx));
    std::vector<double> ro, rl;
    ref_attention(q, qpos, T, H, k, v, kpos, S, Hkv, hd, ro, rl);
    Err eo = compare(dout.get<float>(ro.size()), ro), el = compare(dlse.get<float>(rl.size()), rl);
    char extra[96];
    snprintf(extra, sizeof extra, "lse max abs %.1e", el.maxabs);
    report("attention in " + std::to_string(pieces) + " shuffled pieces + merge == whole", eo, 1e-2, 5e-2,
           el.unwritten == 0 && el.maxabs <= 2e-3, extra);
    for (auto* b : bufs) delete b;
}

// Thousands of calls: device memory must stay flat.
static void memory_flat_case(sf_context* ctx, Rng& rng) {
    int T = 64, H = 8, Hkv = 2, hd = 128, S = 700;
    auto q = rand_bf16(rng, (size_t)T * H * hd, 1.0), k = rand_bf16(rng, (size_t)S * Hkv * hd, 1.0);
    std::vector<int> qpos = range(T, S - T), kpos = range(S, 0);
    Buf dq(ctx, q.size() * 2), dk(ctx, k.size() * 2), dqp(ctx, T * 4), dkp(ctx, S * 4),
        dout(ctx, (size_t)T * H * hd * 4), dlse(ctx, (size_t)T * H * 4);
    dq.put(q);
    dk.put(k);
    dqp.put(qpos);
    dkp.put(kpos);
    auto call = [&](int i) {
        sf_attention_opts o{SF_ATTN_TILED, 1 + i % 5, i % 2 ? 16 : 64, 0};
        if (i % 3 == 0) o = {SF_ATTN_TILED, 0, 128, 7 + (i / 3) % 2};  // the FA3-style kernel too (tensor maps)
        CK(sf_attention(ctx, dq.as<sf_bf16>(), dqp.as<int>(), 1 + i % T, H, dk.as<sf_bf16>(), dk.as<sf_bf16>(),
                        dkp.as<int>(), S, Hkv, hd, dout.as<float>(), dlse.as<float>(), &o));
        const int h = S / 2;  // the same keys as two sets (fused or two calls + merge, by the options)
        const sf_bf16* k2 = dk.as<sf_bf16>() + (size_t)h * Hkv * hd;
        CK(sf_attention2(ctx, dq.as<sf_bf16>(), dqp.as<int>(), 1 + i % T, H, dk.as<sf_bf16>(), dk.as<sf_bf16>(),
                         dkp.as<int>(), h, k2, k2, dkp.as<int>() + h, S - h, Hkv, hd, dout.as<float>(),
                         dlse.as<float>(), &o));
        const float* po[2] = {dout.as<float>(), dout.as<float>()};
        const float* pl[2] = {dlse.as<float>(), dlse.as<float>()};
        CK(sf_attention_merge(ctx, 2, po, pl, T, H, hd, dout.as<float>(), dlse.as<float>()));
        void* tmp;
        CK(sf_malloc(ctx, &tmp, 4096 + i));
        CK(sf_free(ctx, tmp));
    };
    for (int i = 0; i < 50; ++i) call(i);
    size_t used0, total, used1;
    CK(sf_device_memory(ctx, &used0, &total));
    for (int i = 0; i < 3000; ++i) call(i);
    CK(sf_device_memory(ctx, &used1, &total));
    Err e;
    bool ok = used1 == used0;
    char extra[128];
    snprintf(extra, sizeof extra, "device memory used %zu -> %zu bytes", used0, used1);
    report("3000 x (attention + attention2 + merge + malloc/free): memory flat", e, 0, 0, ok, extra);
}

int main() {
    Rng rng(check_seed());
    sf_context* ctx;
    CK(sf_context_create(0, &ctx));
    std::vector<Case> cases;
    auto add = [&](Case c) { cases.push_back(std::move(c)); };
    // global causal prefill (qpos == kpos == 0..T-1), GQA 8/2 and 32/8, ragged T and S
    add({"causal T=S=1000 H8/Hkv2 hd128 (ragged, plan)", 1000, 1000, 8, 2, 128, range(1000, 0), range(1000, 0)});
    add({"causal T=S=700 H32/Hkv8 hd128", 700, 700, 32, 8, 128, range(700, 0), range(700, 0)});
    add({"causal T=S=777 H8/Hkv8 hd64 (no GQA)", 777, 777, 8, 8, 64, range(777, 0), range(777, 0)});
    add({"causal T=S=513 H8/Hkv2 hd64 block_m 64", 513, 513, 8, 2, 64, range(513, 0), range(513, 0), SF_ATTN_TILED, 64});
    add({"causal T=S=300 H8/Hkv2 hd128 block_m 16", 300, 300, 8, 2, 128, range(300, 0), range(300, 0), SF_ATTN_TILED, 16});
    add({"causal T=S=1000 H8/Hkv2 hd128 mma.sync 4 warps x 32", 1000, 1000, 8, 2, 128, range(1000, 0), range(1000, 0), SF_ATTN_TILED, 128, 0, 2});
    add({"causal T=S=1000 H8/Hkv2 hd128 mma.sync 8 warps x 16", 1000, 1000, 8, 2, 128, range(1000, 0), range(1000, 0), SF_ATTN_TILED, 128, 0, 1});
    add({"causal T=S=555 H8/Hkv2 hd64 mma.sync 4 warps x 32", 555, 555, 8, 2, 64, range(555, 0), range(555, 0), SF_ATTN_TILED, 128, 0, 2});
    {
        std::vector<int> qp = range(600, 8192), kp = range(640, 0), own = range(600, 8192);
        kp.insert(kp.end(), own.begin(), own.end());
        add({"phase-1 [anchor;block] hd128 mma.sync 4 warps x 32", 600, 1240, 32, 8, 128, qp, kp, SF_ATTN_TILED, 128, 0, 2});
        add({"phase-1 [anchor;block] hd128 wgmma", 600, 1240, 32, 8, 128, qp, kp, SF_ATTN_TILED, 128, 0, 3});
    }
    add({"wgmma: causal T=S=2000 H32/Hkv8 hd128", 2000, 2000, 32, 8, 128, range(2000, 0), range(2000, 0), SF_ATTN_TILED, 128, 0, 3});
    add({"wgmma: 20 rows (1 q-tile) over S=3001 all visible, 3 splits", 20, 3001, 32, 8, 128, range(20, 5000), range(3001, 0), SF_ATTN_TILED, 128, 3, 3});
    add({"wgmma 2 blocks/SM: causal T=S=1500 H8/Hkv2 hd128", 1500, 1500, 8, 2, 128, range(1500, 0), range(1500, 0), SF_ATTN_TILED, 128, 0, 4});
    add({"wgmma overlapped: causal T=S=1500 H8/Hkv2 hd128", 1500, 1500, 8, 2, 128, range(1500, 0), range(1500, 0), SF_ATTN_TILED, 128, 0, 5});
    add({"wgmma overlapped: 2 q-tiles, 1 and 2 key tiles (S=100)", 70, 100, 8, 2, 128, range(70, 30), range(100, 0), SF_ATTN_TILED, 128, 0, 5});
    add({"wgmma overlapped: 20 rows over S=3001, 3 splits", 20, 3001, 32, 8, 128, range(20, 5000), range(3001, 0), SF_ATTN_TILED, 128, 3, 5});
    {
        std::vector<int> qp = range(600, 8192), kp = range(640, 0), own = range(600, 8192);
        kp.insert(kp.end(), own.begin(), own.end());
        add({"wgmma overlapped: phase-1 [anchor;block]", 600, 1240, 32, 8, 128, qp, kp, SF_ATTN_TILED, 128, 0, 5});
        std::vector<int> rq(300), rk(900);
        for (auto& x : rq) x = rng.integer(0, 2000);
        for (auto& x : rk) x = rng.integer(0, 2000);
        add({"wgmma overlapped: random unsorted positions", 300, 900, 8, 2, 128, rq, rk, SF_ATTN_TILED, 128, 0, 5});
    }
    add({"wgmma 3 warpgroups: causal T=S=1500 H8/Hkv2 hd128", 1500, 1500, 8, 2, 128, range(1500, 0), range(1500, 0), SF_ATTN_TILED, 128, 0, 6});
    add({"wgmma 3 warpgroups: 20 rows over S=3001, 3 splits", 20, 3001, 32, 8, 128, range(20, 5000), range(3001, 0), SF_ATTN_TILED, 128, 3, 6});
    {
        std::vector<int> qp = range(600, 8192), kp = range(640, 0), own = range(600, 8192);
        kp.insert(kp.end(), own.begin(), own.end());
        add({"wgmma 3 warpgroups: phase-1 [anchor;block]", 600, 1240, 32, 8, 128, qp, kp, SF_ATTN_TILED, 128, 0, 6});
    }
    add({"wgmma: S = 0", 40, 0, 32, 8, 128, range(40, 0), {}, SF_ATTN_TILED, 128, 0, 3});
    // FA3-style kernel (TMA + mbarriers, warp-specialized, 128-key tiles), with (7) and without (8) ping-pong
    for (int fv : {7, 8}) {
        const std::string p = fv == 7 ? "fa3 ping-pong: " : "fa3: ";
        auto fa = [&](std::string name, int T, int S, int H, int Hkv, std::vector<int> qp, std::vector<int> kp,
                      int splits = 0) {
            add({p + name, T, S, H, Hkv, 128, std::move(qp), std::move(kp), SF_ATTN_TILED, 128, splits, fv});
        };
        fa("causal T=S=1500 H8/Hkv2 (GQA 4, ragged tiles)", 1500, 1500, 8, 2, range(1500, 0), range(1500, 0));
        fa("causal T=S=2000 H32/Hkv8", 2000, 2000, 32, 8, range(2000, 0), range(2000, 0));
        fa("causal T=S=777 H8/Hkv8 (no GQA)", 777, 777, 8, 8, range(777, 0), range(777, 0));
        fa("causal T=S=129 (one full + one 1-key tile)", 129, 129, 8, 2, range(129, 0), range(129, 0));
        fa("2 q-tiles, 1 key tile (S=100)", 70, 100, 8, 2, range(70, 30), range(100, 0));
        fa("1 row over S=5000 all visible (auto splits)", 1, 5000, 32, 8, {9000}, range(5000, 0));
        fa("20 rows over S=3001 all visible, 3 splits", 20, 3001, 32, 8, range(20, 5000), range(3001, 0), 3);
        std::vector<int> qp = range(600, 8192), kp = range(640, 0), own = range(600, 8192);
        kp.insert(kp.end(), own.begin(), own.end());
        fa("phase-1 [anchor 0..639; block at 8192..]", 600, 1240, 32, 8, qp, kp);
        fa("phase-1 anchor only (all visible, no mask)", 600, 640, 8, 2, range(600, 8192), range(640, 0));
        std::vector<int> rq(300), rk(900);
        for (auto& x : rq) x = rng.integer(0, 2000);
        for (auto& x : rk) x = rng.integer(0, 2000);
        fa("random unsorted positions T=300 S=900", 300, 900, 8, 2, rq, rk);
        fa("empty partial: every key after every query", 50, 300, 8, 2, range(50, 0), range(300, 1000));
        std::vector<int> qe(200);
        for (int t = 0; t < 200; ++t) qe[t] = t * 3;
        fa("some rows empty (qpos < min kpos)", 200, 400, 8, 2, qe, range(400, 150));
        fa("S = 0", 40, 0, 32, 8, range(40, 0), {});
    }
    add({"mma.sync 8x16: causal T=S=600 H8/Hkv2 hd128 4 splits", 600, 600, 8, 2, 128, range(600, 0), range(600, 0), SF_ATTN_TILED, 128, 4, 1});
    add({"causal T=S=600 H8/Hkv2 hd128 4 splits", 600, 600, 8, 2, 128, range(600, 0), range(600, 0), SF_ATTN_TILED, 128, 4});
    // Star phase 1: block at global positions 8192.. over the anchor (0..a-1, all visible) and its own KV
    {
        std::vector<int> qp = range(600, 8192);
        add({"phase-1 own block causal at 8192.. H8/Hkv2 hd128", 600, 600, 8, 2, 128, qp, range(600, 8192)});
        add({"phase-1 anchor 0..639 all visible H8/Hkv2 hd128", 600, 640, 8, 2, 128, qp, range(640, 0)});
        std::vector<int> kp = range(640, 0), own = range(600, 8192);
        kp.insert(kp.end(), own.begin(), own.end());
        add({"phase-1 [anchor;block] positions 0..639,8192.. hd128", 600, 1240, 8, 2, 128, qp, kp});
        add({"phase-1 [anchor;block] hd64 H32/Hkv8", 600, 1240, 32, 8, 64, qp, kp});
    }
    // phase 2 / decode: few rows over a long block, all visible (split-KV)
    add({"decode 1 row over S=5000 all visible H32/Hkv8 hd128", 1, 5000, 32, 8, 128, {9000}, range(5000, 0)});
    add({"decode 1 row over S=4097 all visible H8/Hkv2 hd64", 1, 4097, 8, 2, 64, {5000}, range(4097, 0)});
    add({"phase-2 16 rows over S=3000 H32/Hkv8 hd128", 16, 3000, 32, 8, 128, range(16, 20000), range(3000, 4096)});
    add({"phase-2 4 rows over S=2001 H8/Hkv2 hd128 7 splits", 4, 2001, 8, 2, 128, range(4, 3000), range(2001, 0),
         SF_ATTN_TILED, 0, 7});
    add({"query host own tokens causal T=5 S=5 H8/Hkv2 hd128", 5, 5, 8, 2, 128, range(5, 100), range(5, 100)});
    add({"decode step T=1 over own KV S=37 (last is self)", 1, 37, 32, 8, 128, {136}, range(37, 100)});
    // rows with no visible key
    add({"empty partial: every key after every query (hd128)", 50, 300, 8, 2, 128, range(50, 0), range(300, 1000)});
    add({"empty partial: 1 row, split path (hd64)", 1, 3000, 8, 2, 64, {5}, range(3000, 10)});
    {
        std::vector<int> qp(200);
        for (int t = 0; t < 200; ++t) qp[t] = t * 3;  // rows with qpos < 150 see nothing
        add({"some rows empty (qpos < min kpos) hd128", 200, 400, 8, 2, 128, qp, range(400, 150)});
    }
    add({"S = 0 (no keys at all)", 3, 0, 8, 2, 128, range(3, 0), {}});
    // arbitrary (unsorted, repeated) positions through the plan and inline paths
    {
        std::vector<int> qp(300), kp(900);
        for (auto& x : qp) x = rng.integer(0, 2000);
        for (auto& x : kp) x = rng.integer(0, 2000);
        add({"random unsorted positions T=300 S=900 hd128 (plan)", 300, 900, 8, 2, 128, qp, kp});
        std::vector<int> qp2(qp.begin(), qp.begin() + 3);
        add({"random unsorted positions T=3 S=900 hd64 (inline)", 3, 900, 8, 2, 64, qp2, kp});
    }
    // simple kernel: other head dims, and the fast shapes against the reference too
    add({"simple kernel hd 80 causal T=S=200 H8/Hkv2", 200, 200, 8, 2, 80, range(200, 0), range(200, 0), SF_ATTN_SIMPLE});
    add({"simple kernel hd 256 phase-2 T=3 S=500", 3, 500, 4, 1, 256, range(3, 900), range(500, 0), SF_ATTN_SIMPLE});
    add({"simple kernel hd 128 causal ragged T=S=333", 333, 333, 8, 2, 128, range(333, 0), range(333, 0), SF_ATTN_SIMPLE});
    add({"auto on hd 96 -> simple kernel", 50, 120, 6, 3, 96, range(50, 70), range(120, 0)});

    printf("== attention (out: rel L2 <= 1e-2, max abs <= 5e-2; lse: max abs <= 2e-3, -inf exact) ==\n");
    for (auto& c : cases) run_case(ctx, rng, c);

    printf("== two key sets in one call (sf_attention2; tolerances as above) ==\n");
    {
        const sf_attention_opts dflt{SF_ATTN_AUTO, 0, 0, 0}, nopp{SF_ATTN_TILED, 0, 128, 8},
            wg3{SF_ATTN_TILED, 0, 128, 6};
        std::vector<int> qp = range(600, 8192), anchor = range(640, 0), own = range(600, 8192);
        two_sets_case(ctx, rng, "2 sets, phase 1 [anchor 0..639 | block at 8192..] H32/Hkv8 (fused, FA3)", 600, 32, 8,
                      128, qp, anchor, own, dflt);
        two_sets_case(ctx, rng, "2 sets, phase 1, FA3 without ping-pong (fused)", 600, 8, 2, 128, qp, anchor, own, nopp);
        two_sets_case(ctx, rng, "2 sets, phase 1, wgmma 3 warpgroups (two calls + merge)", 600, 8, 2, 128, qp, anchor,
                      own, wg3);
        two_sets_case(ctx, rng, "2 sets, phase 1 hd64 (mma.sync: two calls + merge)", 600, 32, 8, 64, qp, anchor, own,
                      dflt);
        two_sets_case(ctx, rng, "2 sets, 3 rows over 700 | 300 keys (split-KV: two calls + merge)", 3, 32, 8, 128,
                      range(3, 5000), range(700, 0), range(300, 700), dflt);
        std::vector<int> rq(300), r1(129), r2(77);
        for (auto& x : rq) x = rng.integer(0, 2000);
        for (auto& x : r1) x = rng.integer(0, 2000);
        for (auto& x : r2) x = rng.integer(0, 2000);
        two_sets_case(ctx, rng, "2 sets, random unsorted positions, 129 | 77 keys (fused)", 300, 8, 2, 128, rq, r1, r2,
                      dflt);
        two_sets_case(ctx, rng, "2 sets, second empty (S2 = 0)", 200, 8, 2, 128, range(200, 100), range(300, 0), {},
                      dflt);
        two_sets_case(ctx, rng, "2 sets, first empty (S1 = 0)", 200, 8, 2, 128, range(200, 100), {}, range(300, 0),
                      dflt);
        two_sets_case(ctx, rng, "2 sets, no visible key in either (empty partial)", 150, 8, 2, 128, range(150, 0),
                      range(200, 1000), range(100, 5000), dflt);
        std::vector<int> qe(200);
        for (int t = 0; t < 200; ++t) qe[t] = t * 3;
        two_sets_case(ctx, rng, "2 sets, some rows see only the second set, some nothing", 200, 8, 2, 128, qe,
                      range(100, 400), range(200, 150), dflt);
    }

    printf("== merge (FP32: rel L2 <= 1e-5, max abs <= 1e-4) ==\n");
    merge_case(ctx, rng, "merge all partials -inf (every row): out 0, lse -inf", 3, 7, 8, 128, 0, true, false);
    merge_case(ctx, rng, "merge n=1", 1, 33, 8, 128, 0.1, false, false);
    merge_case(ctx, rng, "merge n=2 with -inf partials (NaN outs ignored)", 2, 33, 32, 128, 0.3, false, false);
    merge_case(ctx, rng, "merge n=5 hd 64", 5, 100, 8, 64, 0.2, false, false);
    merge_case(ctx, rng, "merge n=70 (> 64 per launch) hd 128", 70, 5, 8, 128, 0.5, false, false);
    merge_case(ctx, rng, "merge n=3 hd 256, in place (out = outs[0])", 3, 9, 4, 256, 0.2, false, true);
    merge_case(ctx, rng, "merge n=4 hd 80", 4, 20, 4, 80, 0.6, false, false);
    split_merge_case(ctx, rng, 2);
    split_merge_case(ctx, rng, 5);

    printf("== resources ==\n");
    memory_flat_case(ctx, rng);
    CK(sf_context_destroy(ctx));
    return finish("check_attention");
}
