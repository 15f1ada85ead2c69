// Attention forward with log-sum-exp, causal BY POSITION (key j visible to row i iff kpos[j] <= qpos[i]),
// GQA; the LSE merge of partials. docs/gpu-kernels.md has the design and the measurements.
//
// A thread block owns "packed" query rows of one KV head: packed row r = (token r / G, query head
// kvh * G + r % G), so the G query heads that share a KV head share every K/V tile (GQA packing). Keys stream
// through shared memory in tiles of BN = 64 (cp.async, double buffered, 16-byte chunks XOR-swizzled by row; the
// FA3-style kernel: BN3 = 128 by TMA).
// Which key tiles a query tile needs comes from a plan (many query tiles) built from per-tile min/max key
// positions: a tile with min kpos > max qpos is skipped, one with max kpos <= min qpos needs no mask, others
// are masked element by element. With one query tile (decode, phase 2) tiles are classified inline instead.
// Keys may be split over blockIdx.z (split-KV): each split writes a partial (out, lse) and merge_kernel (the
// same kernel as sf_attention_merge) combines them.
//
// Kernels (the host picks one; sf_attention_opts.variant overrides):
//  attn_tiled_kernel<HD, W, MT>   mma.sync m16n8k16 (ldmatrix), W warps x 16*MT rows; hd 64/128, few rows
//  attn_wgmma_kernel<NWG, MINB>   Hopper wgmma m64n64k16, NWG warpgroups x 64 rows; hd 128 prefill (NWG 3 was
//                                 the default before the FA3-style kernel)
//  attn_wgmma_pipe_kernel         wgmma with the next tile's S in flight during the softmax (measured slower)
//  attn_fa3_kernel<PP>            FlashAttention-3 style: a TMA producer warpgroup, 2 consumer warpgroups (ping-pong
//                                 when PP), 128-key tiles, m64n128k16; hd 128 prefill (the default, the fastest)
//  attn_simple_kernel             FP32 CUDA cores, one warp per (row, head); any even hd <= 256
#include "common.cuh"
#include <climits>
#include <mutex>
#include <cuda.h>          // CUtensorMap (types only: the encoder comes from the runtime's driver entry point)
#include <cudaTypedefs.h>

namespace {

constexpr int BN = 64;         // keys per tile
constexpr int kMaxMerge = 64;  // partials per merge launch
constexpr int kDefault128 = 8; // hd 128, > 64 packed rows: internal 2, 3 (mma.sync), 4-7 (wgmma), 8-9 (FA3 style); 8 (FA3 ping-pong) measured fastest

struct AttnArgs {
    const __nv_bfloat16* q;
    const int* qpos;
    int T, H;
    const __nv_bfloat16* k;
    const __nv_bfloat16* v;
    const int* kpos;
    int S, Hkv;
    int G, Tp;                  // query heads per KV head; packed rows per KV head (T * G)
    float* out;                 // [nsplit][T][H][HD]
    float* lse;                 // [nsplit][T][H]
    size_t out_split_stride, lse_split_stride;
    const int* list;            // plan: [nQ][list_stride] entries (tile | partial << 30), or nullptr
    const int* count;           // plan: [nQ]
    int list_stride;
    int nK, nsplit;
    float scale, scale_log2;
    int reverse;                // launch heavy (late) query tiles first
    // FA3-style kernel only: a second key set (k2 / v2 through their tensor maps). Plan tiles >= nK1 are tile
    // (t - nK1) of the second set; with one key set nK1 = nK.
    const __nv_bfloat16* k2;
    const __nv_bfloat16* v2;
    const int* kpos2;
    int S2, nK1;
};

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool pred) {
    int sz = pred ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(sz));
}
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src, bool pred) {
    int sz = pred ? 4 : 0;
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(sz));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}

// The epilogue every tensor-core kernel shares. A thread holds two packed rows (e = 0, 1: r0 and r0 + 8) of an
// output tile in the m16n8 / wgmma accumulator layout: columns d * 8 + (lane & 3) * 2 and + 1 of every 8-column
// chunk d, unnormalized, as acc(d, e, j) for j = 0, 1. l[e] is the thread's part of the row sum (summed over the
// quad here), m[e] the running max in raw score units. Writes out = O / l and lse = m * scale + log l; a row with
// no visible key (l = 0) gets out 0 and lse -inf. Packed row r is token r / G, head kvh * G + r % G.
template <int HD, typename Acc>
__device__ __forceinline__ void store_rows(const AttnArgs& a, int split, int r0, int kvh, const float (&l)[2],
                                           const float (&m)[2], Acc acc) {
    const int lane = threadIdx.x & 31;
    float* outp = a.out + (size_t)split * a.out_split_stride;
    float* lsep = a.lse + (size_t)split * a.lse_split_stride;
#pragma unroll
    for (int e = 0; e < 2; ++e) {
        float ll = l[e];
        ll += __shfl_xor_sync(0xffffffffu, ll, 1);
        ll += __shfl_xor_sync(0xffffffffu, ll, 2);
        const int r = r0 + 8 * e;
        if (r >= a.Tp) continue;
        const int t = r / a.G, h = kvh * a.G + r % a.G;
        float* op = outp + ((size_t)t * a.H + h) * HD;
        const float inv = ll > 0.f ? 1.f / ll : 0.f;
#pragma unroll
        for (int d = 0; d < HD / 8; ++d) {
            const int col = d * 8 + (lane & 3) * 2;
            *reinterpret_cast<float2*>(op + col) = make_float2(acc(d, e, 0) * inv, acc(d, e, 1) * inv);
        }
        if ((lane & 3) == 0) lsep[(size_t)t * a.H + h] = ll > 0.f ? m[e] * a.scale + logf(ll) : -INFINITY;
    }
}

template <int HD, int W, int MT>
__global__ void __launch_bounds__(32 * W, W * MT == 8 ? 2 : 1) attn_tiled_kernel(const AttnArgs a) {
    constexpr int NT = 32 * W, BM = 16 * W * MT, CH = HD / 8;  // CH: 16-byte chunks per row
    extern __shared__ __align__(128) unsigned char smem_raw[];
    __nv_bfloat16* Qs = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [BM][HD]
    __nv_bfloat16* Ks = Qs + BM * HD;                                 // [2][BN][HD]
    __nv_bfloat16* Vs = Ks + 2 * BN * HD;                             // [2][BN][HD]
    int* kps = reinterpret_cast<int*>(Vs + 2 * BN * HD);              // [2][BN]
    __shared__ int s_qmin, s_qmax;

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int qt = a.reverse ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int kvh = blockIdx.y, split = blockIdx.z;
    const int row0 = qt * BM;

    // Q tile -> shared (zero rows past Tp).
    for (int c = tid; c < BM * CH; c += NT) {
        int r = c / CH, ch = c % CH, pr = row0 + r;
        bool ok = pr < a.Tp;
        int t = ok ? pr / a.G : 0, h = kvh * a.G + (ok ? pr % a.G : 0);
        cp_async16(smem_u32(Qs + r * HD + ((ch ^ (r & 7)) * 8)), a.q + ((size_t)t * a.H + h) * HD + ch * 8, ok);
    }
    cp_async_commit();

    const int n_items = a.list ? a.count[qt] : a.nK;
    const int per = (n_items + a.nsplit - 1) / a.nsplit;
    const int i0 = split * per, i1 = min(n_items, i0 + per);
    const int* lst = a.list ? a.list + (size_t)qt * a.list_stride : nullptr;

    auto load_kv = [&](int tile, int buf) {
        const int kbase = tile * BN;
        for (int c = tid; c < BN * CH; c += NT) {
            int r = c / CH, ch = c % CH, key = kbase + r;
            bool ok = key < a.S;
            size_t off = ((size_t)(ok ? key : 0) * a.Hkv + kvh) * HD + ch * 8;
            int so = buf * BN * HD + r * HD + ((ch ^ (r & 7)) * 8);
            cp_async16(smem_u32(Ks + so), a.k + off, ok);
            cp_async16(smem_u32(Vs + so), a.v + off, ok);
        }
        for (int r = tid; r < BN; r += NT) {
            int key = kbase + r;
            bool ok = key < a.S;
            cp_async4(smem_u32(kps + buf * BN + r), a.kpos + (ok ? key : 0), ok);
        }
        cp_async_commit();
    };

    // the first tile goes out before anything that waits on memory
    int entry_next = 0;
    if (i0 < i1) {
        entry_next = lst ? lst[i0] : i0;
        load_kv(entry_next & 0x3fffffff, 0);
    }
    // This thread's rows: m-tile mt, half e (0: lane/4, 1: lane/4 + 8).
    int qp[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            int r = row0 + warp * 16 * MT + mt * 16 + (lane >> 2) + 8 * e;
            qp[mt][e] = r < a.Tp ? a.qpos[r / a.G] : INT_MIN;
        }

    if (!a.list) {  // inline classification needs the block's position range
        if (tid == 0) { s_qmin = INT_MAX; s_qmax = INT_MIN; }
        __syncthreads();
        for (int r = tid; r < BM; r += NT) {
            int pr = row0 + r;
            if (pr < a.Tp) {
                int p = a.qpos[pr / a.G];
                atomicMin(&s_qmin, p);
                atomicMax(&s_qmax, p);
            }
        }
        __syncthreads();
    }
    float o[MT][HD / 8][4];
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int d = 0; d < HD / 8; ++d) o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.f;
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.f;
    }
    const float sl2 = a.scale_log2;

    for (int i = i0; i < i1; ++i) {
        const int buf = (i - i0) & 1;
        const int entry = entry_next;
        cp_async_wait_all();
        __syncthreads();
        if (i + 1 < i1) {
            entry_next = lst ? lst[i + 1] : i + 1;
            load_kv(entry_next & 0x3fffffff, buf ^ 1);
        }
        const int tile = entry & 0x3fffffff;
        const int* kp = kps + buf * BN;
        bool partial;
        if (lst) {
            partial = (entry >> 30) & 1;
        } else {
            int k0 = tile * BN + lane, k1 = k0 + 32;
            int v0 = kp[lane], v1 = kp[lane + 32];
            int mn = min(k0 < a.S ? v0 : INT_MAX, k1 < a.S ? v1 : INT_MAX);
            int mx = max(k0 < a.S ? v0 : INT_MIN, k1 < a.S ? v1 : INT_MIN);
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) {
                mn = min(mn, __shfl_xor_sync(0xffffffffu, mn, off));
                mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            }
            if (mn > s_qmax) continue;  // no key of this tile is visible to any row: skip
            partial = mx > s_qmin || tile * BN + BN > a.S;
        }

        // S = Q K^T (16*MT rows x BN keys per warp); each K fragment feeds MT m-tiles
        float s[MT][BN / 8][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int n = 0; n < BN / 8; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.f;
        const __nv_bfloat16* Kb = Ks + buf * BN * HD;
        const __nv_bfloat16* Vb = Vs + buf * BN * HD;
#pragma unroll
        for (int kk = 0; kk < HD / 16; ++kk) {
            uint32_t qa[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                int r = warp * 16 * MT + mt * 16 + (lane & 15), ch = kk * 2 + (lane >> 4);
                ldsm_x4(qa[mt], smem_u32(Qs + r * HD + ((ch ^ (r & 7)) * 8)));
            }
#pragma unroll
            for (int nn = 0; nn < BN / 16; ++nn) {
                uint32_t kb[4];
                int r = nn * 16 + (lane >> 4) * 8 + (lane & 7), ch = kk * 2 + ((lane >> 3) & 1);
                ldsm_x4(kb, smem_u32(Kb + r * HD + ((ch ^ (r & 7)) * 8)));
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    mma16816(s[mt][2 * nn], qa[mt], kb[0], kb[1]);
                    mma16816(s[mt][2 * nn + 1], qa[mt], kb[2], kb[3]);
                }
            }
        }
        if (partial) {
#pragma unroll
            for (int n = 0; n < BN / 8; ++n) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    int col = n * 8 + (lane & 3) * 2 + e;
                    bool valid = tile * BN + col < a.S;
                    int kv = kp[col];
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        if (!(valid && kv <= qp[mt][0])) s[mt][n][e] = -INFINITY;
                        if (!(valid && kv <= qp[mt][1])) s[mt][n][2 + e] = -INFINITY;
                    }
                }
            }
        }
        // online softmax (raw-score max; exponent in base 2 with the scale folded in)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                float mx = m[mt][e];
#pragma unroll
                for (int n = 0; n < BN / 8; ++n) mx = fmaxf(mx, fmaxf(s[mt][n][2 * e], s[mt][n][2 * e + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float mu = mx == -INFINITY ? 0.f : mx * sl2;
                const float alpha = exp2f(m[mt][e] * sl2 - mu);  // 0 when the old max is -inf
                m[mt][e] = mx;
                float rs = 0.f;
#pragma unroll
                for (int n = 0; n < BN / 8; ++n) {
                    s[mt][n][2 * e] = exp2f(fmaf(s[mt][n][2 * e], sl2, -mu));
                    s[mt][n][2 * e + 1] = exp2f(fmaf(s[mt][n][2 * e + 1], sl2, -mu));
                    rs += s[mt][n][2 * e] + s[mt][n][2 * e + 1];
                }
                l[mt][e] = l[mt][e] * alpha + rs;
#pragma unroll
                for (int d = 0; d < HD / 8; ++d) {
                    o[mt][d][2 * e] *= alpha;
                    o[mt][d][2 * e + 1] *= alpha;
                }
            }
        }
        // O += P V; each V fragment feeds MT m-tiles
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) {
            uint32_t pa[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                pa[mt][0] = pack_bf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                pa[mt][1] = pack_bf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                pa[mt][2] = pack_bf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                pa[mt][3] = pack_bf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
            }
#pragma unroll
            for (int dn = 0; dn < HD / 16; ++dn) {
                uint32_t vb[4];
                int r = kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7), ch = dn * 2 + (lane >> 4);
                ldsm_x4_t(vb, smem_u32(Vb + r * HD + ((ch ^ (r & 7)) * 8)));
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    mma16816(o[mt][2 * dn], pa[mt], vb[0], vb[1]);
                    mma16816(o[mt][2 * dn + 1], pa[mt], vb[2], vb[3]);
                }
            }
        }
    }
    cp_async_wait_all();

#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
        store_rows<HD>(a, split, row0 + warp * 16 * MT + mt * 16 + (lane >> 2), kvh, l[mt], m[mt],
                       [&](int d, int e, int j) { return o[mt][d][2 * e + j]; });
}


// ---- Hopper kernel: wgmma (sm_90a), HD = 128, BM = 128 rows (2 warpgroups x 64), BN = 64 ----
// Shared tiles use the 128-byte swizzle that wgmma descriptors describe: a [rows][128] BF16 tile is kept as
// two column halves [2][rows][64] (128-byte rows), 16-byte chunk j of row r stored at chunk j ^ (r & 7), each
// half 1024-byte aligned. S = Q K^T: A = Q and B = K both K-major from shared memory (m64n64k16, 8 k-steps).
// O += P V: A = P from registers (the S accumulator layout is the A-fragment layout), B = V MN-major
// (transposed) from shared memory, one m64n64k16 per 64-column half of hd.
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SF_WGMMA 1
#endif

__device__ __forceinline__ uint64_t wg_desc(uint32_t saddr) {
    uint64_t d = (uint64_t)((saddr & 0x3FFFF) >> 4);
    d |= (uint64_t)1 << 16;             // leading byte offset (unused by these layouts)
    d |= (uint64_t)(1024 >> 4) << 32;   // stride byte offset: 8 rows x 128 B
    d |= (uint64_t)1 << 62;             // 128-byte swizzle
    return d;
}
__device__ __forceinline__ void wg_fence() {
#ifdef SF_WGMMA
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_commit() {
#ifdef SF_WGMMA
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_wait0() {
#ifdef SF_WGMMA
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void fence_proxy_async() {
#ifdef SF_WGMMA
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_acc_fence(float (&d)[32]) {
#pragma unroll
    for (int i = 0; i < 32; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
// d (+)= A(smem) B(smem), m64n64k16, both K-major
__device__ __forceinline__ void wgmma_ss(float (&d)[32], uint64_t da, uint64_t db, int scale_d) {
#ifdef SF_WGMMA
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db), "r"(scale_d));
#endif
}
// d += A(registers) B(smem, MN-major), m64n64k16
__device__ __forceinline__ void wgmma_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t db) {
#ifdef SF_WGMMA
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
#endif
}

// d (+)= A(smem) B(smem), m64n128k16, both K-major (S = Q K^T over a 128-key tile)
__device__ __forceinline__ void wgmma_ss128(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {
#ifdef SF_WGMMA
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(da), "l"(db), "r"(scale_d));
#endif
}
// d += A(registers) B(smem, MN-major), m64n128k16 (O += P V over all 128 columns of hd)
__device__ __forceinline__ void wgmma_rs128(float (&d)[64], const uint32_t (&a)[4], uint64_t db) {
#ifdef SF_WGMMA
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
#endif
}

template <int NWG, int MINB>
__global__ void __launch_bounds__(128 * NWG, MINB) attn_wgmma_kernel(const AttnArgs a) {
#ifndef SF_WGMMA
    __trap();  // compiled without sm_90a features (wgmma): fail loudly rather than return garbage
#endif
    constexpr int HD = 128, NT = 128 * NWG, BM = 64 * NWG, CH = HD / 8;
    extern __shared__ unsigned char smem_dyn[];
    unsigned char* smem = (unsigned char*)(((uintptr_t)smem_dyn + 1023) & ~(uintptr_t)1023);
    unsigned char* Qs = smem;                 // [2 halves][BM rows][128 B]
    unsigned char* Ks = Qs + 2 * BM * 128;    // [2 stages][2 halves][64 rows][128 B] = 32 KB
    unsigned char* Vs = Ks + 2 * 2 * BN * 128;
    int* kps = reinterpret_cast<int*>(Vs + 2 * 2 * BN * 128);  // [2][BN]

    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
    const int qt = a.reverse ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int kvh = blockIdx.y, split = blockIdx.z;
    const int row0 = qt * BM;

    auto sw = [](int rows, int r, int c) {  // byte offset of element (r, c), c a multiple of 8
        return (c >> 6) * rows * 128 + r * 128 + ((((c & 63) >> 3) ^ (r & 7)) << 4);
    };
    for (int c = tid; c < BM * CH; c += NT) {
        int r = c / CH, ch = c % CH, pr = row0 + r;
        bool ok = pr < a.Tp;
        int t = ok ? pr / a.G : 0, h = kvh * a.G + (ok ? pr % a.G : 0);
        cp_async16(smem_u32(Qs + sw(BM, r, ch * 8)), a.q + ((size_t)t * a.H + h) * HD + ch * 8, ok);
    }
    cp_async_commit();

    int qp[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
        int r = row0 + wg * 64 + warp * 16 + (lane >> 2) + 8 * e;
        qp[e] = r < a.Tp ? a.qpos[r / a.G] : INT_MIN;
    }
    const int n_items = a.count[qt];  // this kernel always runs with a plan
    const int per = (n_items + a.nsplit - 1) / a.nsplit;
    const int i0 = split * per, i1 = min(n_items, i0 + per);
    const int* lst = a.list + (size_t)qt * a.list_stride;

    auto load_kv = [&](int tile, int buf) {
        const int kbase = tile * BN;
        for (int c = tid; c < BN * CH; c += NT) {
            int r = c / CH, ch = c % CH, key = kbase + r;
            bool ok = key < a.S;
            size_t off = ((size_t)(ok ? key : 0) * a.Hkv + kvh) * HD + ch * 8;
            int so = buf * 2 * BN * 128 + sw(BN, r, ch * 8);
            cp_async16(smem_u32(Ks + so), a.k + off, ok);
            cp_async16(smem_u32(Vs + so), a.v + off, ok);
        }
        for (int r = tid; r < BN; r += NT) {
            int key = kbase + r;
            bool ok = key < a.S;
            cp_async4(smem_u32(kps + buf * BN + r), a.kpos + (ok ? key : 0), ok);
        }
        cp_async_commit();
    };

    float o0[32], o1[32];  // O columns 0..63 and 64..127, accumulator layout
#pragma unroll
    for (int i = 0; i < 32; ++i) o0[i] = o1[i] = 0.f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
    const float sl2 = a.scale_log2;
    const uint32_t q_base = smem_u32(Qs) + wg * 64 * 128;

    int entry_next = 0;
    if (i0 < i1) {
        entry_next = lst[i0];
        load_kv(entry_next & 0x3fffffff, 0);
    }
    for (int i = i0; i < i1; ++i) {
        const int buf = (i - i0) & 1;
        const int entry = entry_next;
        cp_async_wait_all();
        fence_proxy_async();  // cp.async wrote the tiles that the tensor cores read next
        __syncthreads();
        if (i + 1 < i1) {
            entry_next = lst[i + 1];
            load_kv(entry_next & 0x3fffffff, buf ^ 1);
        }
        const int tile = entry & 0x3fffffff;
        const bool partial = (entry >> 30) & 1;
        const int* kp = kps + buf * BN;
        const uint32_t k_base = smem_u32(Ks + buf * 2 * BN * 128);
        const uint32_t v_base = smem_u32(Vs + buf * 2 * BN * 128);

        float s[32];
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < HD / 16; ++kk) {
            uint32_t off = (kk >> 2) * 0 + (kk & 3) * 32;
            wgmma_ss(s, wg_desc(q_base + (kk >> 2) * BM * 128 + off), wg_desc(k_base + (kk >> 2) * BN * 128 + off),
                     kk > 0);
        }
        wg_commit();
        wg_wait0();
        wg_acc_fence(s);

        if (partial) {
#pragma unroll
            for (int n = 0; n < BN / 8; ++n)
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    int col = n * 8 + (lane & 3) * 2 + e;
                    bool valid = tile * BN + col < a.S;
                    int kv = kp[col];
                    if (!(valid && kv <= qp[0])) s[n * 4 + e] = -INFINITY;
                    if (!(valid && kv <= qp[1])) s[n * 4 + 2 + e] = -INFINITY;
                }
        }
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            float mx = m[e];
#pragma unroll
            for (int n = 0; n < BN / 8; ++n) mx = fmaxf(mx, fmaxf(s[n * 4 + 2 * e], s[n * 4 + 2 * e + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float mu = mx == -INFINITY ? 0.f : mx * sl2;
            const float alpha = exp2f(m[e] * sl2 - mu);
            m[e] = mx;
            float rs = 0.f;
#pragma unroll
            for (int n = 0; n < BN / 8; ++n) {
                s[n * 4 + 2 * e] = exp2f(fmaf(s[n * 4 + 2 * e], sl2, -mu));
                s[n * 4 + 2 * e + 1] = exp2f(fmaf(s[n * 4 + 2 * e + 1], sl2, -mu));
                rs += s[n * 4 + 2 * e] + s[n * 4 + 2 * e + 1];
            }
            l[e] = l[e] * alpha + rs;
#pragma unroll
            for (int n = 0; n < 8; ++n) {
                o0[n * 4 + 2 * e] *= alpha;
                o0[n * 4 + 2 * e + 1] *= alpha;
                o1[n * 4 + 2 * e] *= alpha;
                o1[n * 4 + 2 * e + 1] *= alpha;
            }
        }
        uint32_t pa[BN / 16][4];
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) {
            pa[kk][0] = pack_bf16(s[(2 * kk) * 4 + 0], s[(2 * kk) * 4 + 1]);
            pa[kk][1] = pack_bf16(s[(2 * kk) * 4 + 2], s[(2 * kk) * 4 + 3]);
            pa[kk][2] = pack_bf16(s[(2 * kk + 1) * 4 + 0], s[(2 * kk + 1) * 4 + 1]);
            pa[kk][3] = pack_bf16(s[(2 * kk + 1) * 4 + 2], s[(2 * kk + 1) * 4 + 3]);
        }
        wg_acc_fence(o0);
        wg_acc_fence(o1);
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) {
            wgmma_rs(o0, pa[kk], wg_desc(v_base + kk * 16 * 128));
            wgmma_rs(o1, pa[kk], wg_desc(v_base + BN * 128 + kk * 16 * 128));
        }
        wg_commit();
        wg_wait0();
        wg_acc_fence(o0);
        wg_acc_fence(o1);
    }
    cp_async_wait_all();

    store_rows<HD>(a, split, row0 + wg * 64 + warp * 16 + (lane >> 2), kvh, l, m,
                   [&](int d, int e, int j) { return d < 8 ? o0[d * 4 + 2 * e + j] : o1[(d - 8) * 4 + 2 * e + j]; });
}


__device__ __forceinline__ void cp_async_wait_1() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

// One online-softmax step on an S tile in the m64n64 accumulator layout: mask (if partial), running max/sum,
// rescale O, and the P fragments (A operand of the PV wgmma).
__device__ __forceinline__ void wg_softmax_step(float (&s)[32], float (&o0)[32], float (&o1)[32], float (&m)[2],
                                                float (&l)[2], float sl2, bool partial, const int* kp, int tile,
                                                int S, const int (&qp)[2], int lane, uint32_t (&pa)[4][4]) {
    if (partial) {
#pragma unroll
        for (int n = 0; n < BN / 8; ++n)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                int col = n * 8 + (lane & 3) * 2 + e;
                bool valid = tile * BN + col < S;
                int kv = kp[col];
                if (!(valid && kv <= qp[0])) s[n * 4 + e] = -INFINITY;
                if (!(valid && kv <= qp[1])) s[n * 4 + 2 + e] = -INFINITY;
            }
    }
#pragma unroll
    for (int e = 0; e < 2; ++e) {
        float mx = m[e];
#pragma unroll
        for (int n = 0; n < BN / 8; ++n) mx = fmaxf(mx, fmaxf(s[n * 4 + 2 * e], s[n * 4 + 2 * e + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float mu = mx == -INFINITY ? 0.f : mx * sl2;
        const float alpha = exp2f(m[e] * sl2 - mu);
        m[e] = mx;
        float rs = 0.f;
#pragma unroll
        for (int n = 0; n < BN / 8; ++n) {
            s[n * 4 + 2 * e] = exp2f(fmaf(s[n * 4 + 2 * e], sl2, -mu));
            s[n * 4 + 2 * e + 1] = exp2f(fmaf(s[n * 4 + 2 * e + 1], sl2, -mu));
            rs += s[n * 4 + 2 * e] + s[n * 4 + 2 * e + 1];
        }
        l[e] = l[e] * alpha + rs;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
            o0[n * 4 + 2 * e] *= alpha;
            o0[n * 4 + 2 * e + 1] *= alpha;
            o1[n * 4 + 2 * e] *= alpha;
            o1[n * 4 + 2 * e + 1] *= alpha;
        }
    }
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
        pa[kk][0] = pack_bf16(s[(2 * kk) * 4 + 0], s[(2 * kk) * 4 + 1]);
        pa[kk][1] = pack_bf16(s[(2 * kk) * 4 + 2], s[(2 * kk) * 4 + 3]);
        pa[kk][2] = pack_bf16(s[(2 * kk + 1) * 4 + 0], s[(2 * kk + 1) * 4 + 1]);
        pa[kk][3] = pack_bf16(s[(2 * kk + 1) * 4 + 2], s[(2 * kk + 1) * 4 + 3]);
    }
}

// The wgmma kernel with the next tile's S = Q K^T in flight on the tensor cores while this tile's softmax
// runs (FlashAttention-3's intra-warpgroup overlap, without warp specialization): 3 shared-memory stages,
// one block of 2 warpgroups per SM, no register cap.
__global__ void __launch_bounds__(256, 1) attn_wgmma_pipe_kernel(const AttnArgs a) {
#ifndef SF_WGMMA
    __trap();  // compiled without sm_90a features (wgmma): fail loudly rather than return garbage
#endif
    constexpr int HD = 128, NT = 256, BM = 128, CH = HD / 8, NS = 3;
    constexpr int STAGE = 2 * BN * 128;  // bytes of one K (or V) stage
    extern __shared__ unsigned char smem_dyn[];
    unsigned char* smem = (unsigned char*)(((uintptr_t)smem_dyn + 1023) & ~(uintptr_t)1023);
    unsigned char* Qs = smem;  // [2 halves][128 rows][128 B]
    unsigned char* Ks = Qs + 2 * BM * 128;
    unsigned char* Vs = Ks + NS * STAGE;
    int* kps = reinterpret_cast<int*>(Vs + NS * STAGE);  // [NS][BN]

    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
    const int qt = a.reverse ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int kvh = blockIdx.y, split = blockIdx.z;
    const int row0 = qt * BM;
    auto sw = [](int rows, int r, int c) {
        return (c >> 6) * rows * 128 + r * 128 + ((((c & 63) >> 3) ^ (r & 7)) << 4);
    };
    for (int c = tid; c < BM * CH; c += NT) {
        int r = c / CH, ch = c % CH, pr = row0 + r;
        bool ok = pr < a.Tp;
        int t = ok ? pr / a.G : 0, h = kvh * a.G + (ok ? pr % a.G : 0);
        cp_async16(smem_u32(Qs + sw(BM, r, ch * 8)), a.q + ((size_t)t * a.H + h) * HD + ch * 8, ok);
    }
    cp_async_commit();
    int qp[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
        int r = row0 + wg * 64 + warp * 16 + (lane >> 2) + 8 * e;
        qp[e] = r < a.Tp ? a.qpos[r / a.G] : INT_MIN;
    }
    const int n_items = a.count[qt];
    const int per = (n_items + a.nsplit - 1) / a.nsplit;
    const int i0 = split * per, i1 = min(n_items, i0 + per);
    const int* lst = a.list + (size_t)qt * a.list_stride;
    auto load_kv = [&](int tile, int buf) {
        const int kbase = tile * BN;
        for (int c = tid; c < BN * CH; c += NT) {
            int r = c / CH, ch = c % CH, key = kbase + r;
            bool ok = key < a.S;
            size_t off = ((size_t)(ok ? key : 0) * a.Hkv + kvh) * HD + ch * 8;
            int so = buf * STAGE + sw(BN, r, ch * 8);
            cp_async16(smem_u32(Ks + so), a.k + off, ok);
            cp_async16(smem_u32(Vs + so), a.v + off, ok);
        }
        for (int r = tid; r < BN; r += NT) {
            int key = kbase + r;
            bool ok = key < a.S;
            cp_async4(smem_u32(kps + buf * BN + r), a.kpos + (ok ? key : 0), ok);
        }
        cp_async_commit();
    };
    const uint32_t q_base = smem_u32(Qs) + wg * 64 * 128;
    auto issue_s = [&](float (&s)[32], int buf) {
        const uint32_t k_base = smem_u32(Ks + buf * STAGE);
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < HD / 16; ++kk) {
            uint32_t off = (kk & 3) * 32;
            wgmma_ss(s, wg_desc(q_base + (kk >> 2) * BM * 128 + off), wg_desc(k_base + (kk >> 2) * BN * 128 + off),
                     kk > 0);
        }
        wg_commit();
    };

    float o0[32], o1[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) o0[i] = o1[i] = 0.f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
    const float sl2 = a.scale_log2;

    if (i0 < i1) {
        int e_cur = lst[i0], e_nxt = i0 + 1 < i1 ? lst[i0 + 1] : 0;
        load_kv(e_cur & 0x3fffffff, 0);
        if (i0 + 1 < i1) {
            load_kv(e_nxt & 0x3fffffff, 1);
            cp_async_wait_1();  // Q and tile i0 landed
        } else {
            cp_async_wait_all();
        }
        fence_proxy_async();
        __syncthreads();
        float s[32];
        issue_s(s, 0);
        wg_wait0();
        wg_acc_fence(s);
        for (int i = i0; i < i1; ++i) {
            const int j = i - i0, buf = j % NS;
            const bool has_next = i + 1 < i1;
            cp_async_wait_all();  // tile i + 1 landed
            fence_proxy_async();
            __syncthreads();      // ... for every thread; and every thread is done with tile i - 1's buffers
            int e_nn = 0;
            if (i + 2 < i1) {
                e_nn = lst[i + 2];
                load_kv(e_nn & 0x3fffffff, (j + 2) % NS);
            }
            float sn[32];
            if (has_next) issue_s(sn, (j + 1) % NS);  // tensor cores: S of tile i + 1 ...
            uint32_t pa[BN / 16][4];                  // ... while this warpgroup does tile i's softmax
            wg_softmax_step(s, o0, o1, m, l, sl2, (e_cur >> 30) & 1, kps + buf * BN, e_cur & 0x3fffffff, a.S, qp,
                            lane, pa);
            wg_acc_fence(o0);
            wg_acc_fence(o1);
            wg_fence();
            const uint32_t v_base = smem_u32(Vs + buf * STAGE);
#pragma unroll
            for (int kk = 0; kk < BN / 16; ++kk) {
                wgmma_rs(o0, pa[kk], wg_desc(v_base + kk * 16 * 128));
                wgmma_rs(o1, pa[kk], wg_desc(v_base + BN * 128 + kk * 16 * 128));
            }
            wg_commit();
            wg_wait0();
            wg_acc_fence(o0);
            wg_acc_fence(o1);
            if (has_next) {
                wg_acc_fence(sn);
#pragma unroll
                for (int x = 0; x < 32; ++x) s[x] = sn[x];
            }
            e_cur = e_nxt;
            e_nxt = e_nn;
        }
    }
    cp_async_wait_all();

    store_rows<HD>(a, split, row0 + wg * 64 + warp * 16 + (lane >> 2), kvh, l, m,
                   [&](int d, int e, int j) { return d < 8 ? o0[d * 4 + 2 * e + j] : o1[(d - 8) * 4 + 2 * e + j]; });
}

// ---- FlashAttention-3-style kernel (sm_90a): warp specialization, TMA, mbarriers, 128-key tiles ----
// 3 warpgroups: warpgroup 0 is the producer (one thread issues the TMA loads of K and V tiles into a two-stage
// shared ring, then the warpgroup gives its registers away: setmaxnreg 24), warpgroups 1 and 2 are consumers
// (setmaxnreg 240), each owning 64 of the block's 128 packed query rows. Tiles are BN3 = 128 keys x hd 128,
// kept as two 64-column halves in the 128-byte swizzle (TMA writes that layout itself, box 64 x 1 x 128 over
// the [S][Hkv][hd] tensor; rows past S arrive as zeros). K and V have their own full / empty mbarriers per
// stage, so K of tile j + 1 can land while V of tile j - 1 is still being read.
// Consumer schedule per tile j (FlashAttention-3's intra-warpgroup overlap):
//   issue S_j = Q K_j (m64n128k16, 8 k-steps) and O += P_{j-1} V_{j-1} (m64n128k16 x 8, P from registers);
//   wait for S_j only; release K_j; mask (partial tiles) and softmax S_j -> P_j while P V runs;
//   wait for P V; release V_{j-1}; rescale O by the new max.
// With PP (ping-pong), the two consumer warpgroups take turns issuing their products (named barriers 3 and 4),
// so one warpgroup's softmax runs while the other's products occupy the tensor cores.
// The masking rule, the plan (here over 128-key tiles), GQA packing, splits and the out / lse outputs are the
// other kernels'.
constexpr int BN3 = 128;       // keys per tile (FA3 kernel)
constexpr int kFa3Stages = 2;

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    uint32_t done;
    do {
        asm volatile(
            "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
            : "=r"(done)
            : "r"(bar), "r"(parity)
            : "memory");
    } while (!done);
}
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2,
                                            uint32_t bar) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(
            dst),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
        : "memory");
}
__device__ __forceinline__ void named_bar_sync(int id, int n) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}
__device__ __forceinline__ void named_bar_arrive(int id, int n) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}
template <int N>
__device__ __forceinline__ void wg_wait() {
#ifdef SF_WGMMA
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
__device__ __forceinline__ void wg_acc_fence64(float (&d)[64]) {
#pragma unroll
    for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
__device__ __forceinline__ void reg_fence(uint32_t (&p)[8][4]) {
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(p[i][j])::"memory");
}
// wgmma descriptor with an explicit leading byte offset (MN-major operands wider than one 64-column atom)
__device__ __forceinline__ uint64_t wg_desc_lbo(uint32_t saddr, uint32_t lbo) {
    uint64_t d = (uint64_t)((saddr & 0x3FFFF) >> 4);
    d |= (uint64_t)((lbo >> 4) & 0x3FFF) << 16;
    d |= (uint64_t)(1024 >> 4) << 32;
    d |= (uint64_t)1 << 62;
    return d;
}

// Mask (partial tiles, positions from global memory), online softmax of a 64 x 128 S tile in the accumulator
// layout (S becomes P in place); returns the rescale factor per row half in alpha (O is rescaled by the caller once
// the previous P V product has finished).
__device__ __forceinline__ void fa3_softmax(float (&s)[64], float (&m)[2], float (&l)[2], float (&alpha)[2],
                                            float sl2, bool partial, const int* __restrict__ kpos, int tile, int S,
                                            const int (&qp)[2], int lane) {
    if (partial) {
#pragma unroll
        for (int n = 0; n < BN3 / 8; ++n)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int key = tile * BN3 + n * 8 + (lane & 3) * 2 + e;
                const int kv = key < S ? __ldg(kpos + key) : INT_MAX;
                if (!(key < S && kv <= qp[0])) s[n * 4 + e] = -INFINITY;
                if (!(key < S && kv <= qp[1])) s[n * 4 + 2 + e] = -INFINITY;
            }
    }
#pragma unroll
    for (int e = 0; e < 2; ++e) {
        float mx = m[e];
#pragma unroll
        for (int n = 0; n < BN3 / 8; ++n) mx = fmaxf(mx, fmaxf(s[n * 4 + 2 * e], s[n * 4 + 2 * e + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float mu = mx == -INFINITY ? 0.f : mx * sl2;
        alpha[e] = exp2f(m[e] * sl2 - mu);  // 0 when the old max is -inf
        m[e] = mx;
        float rs = 0.f;
#pragma unroll
        for (int n = 0; n < BN3 / 8; ++n) {
            s[n * 4 + 2 * e] = exp2f(fmaf(s[n * 4 + 2 * e], sl2, -mu));
            s[n * 4 + 2 * e + 1] = exp2f(fmaf(s[n * 4 + 2 * e + 1], sl2, -mu));
            rs += s[n * 4 + 2 * e] + s[n * 4 + 2 * e + 1];
        }
        l[e] = l[e] * alpha[e] + rs;
    }
}
// P (the exponentiated S tile) as BF16 A fragments of the P V product.
__device__ __forceinline__ void fa3_pack(const float (&s)[64], uint32_t (&pa)[8][4]) {
#pragma unroll
    for (int kk = 0; kk < BN3 / 16; ++kk) {
        pa[kk][0] = pack_bf16(s[(2 * kk) * 4 + 0], s[(2 * kk) * 4 + 1]);
        pa[kk][1] = pack_bf16(s[(2 * kk) * 4 + 2], s[(2 * kk) * 4 + 3]);
        pa[kk][2] = pack_bf16(s[(2 * kk + 1) * 4 + 0], s[(2 * kk + 1) * 4 + 1]);
        pa[kk][3] = pack_bf16(s[(2 * kk + 1) * 4 + 2], s[(2 * kk + 1) * 4 + 3]);
    }
}
// fa3_softmax for plan entry e (tile | partial << 30): the tile's key set picks the positions to mask with.
__device__ __forceinline__ void fa3_softmax_entry(float (&s)[64], float (&m)[2], float (&l)[2], float (&alpha)[2],
                                                  float sl2, int e, const AttnArgs& a, const int (&qp)[2], int lane) {
    const int tile = e & 0x3fffffff;
    const bool second = tile >= a.nK1;
    fa3_softmax(s, m, l, alpha, sl2, (e >> 30) & 1, second ? a.kpos2 : a.kpos, second ? tile - a.nK1 : tile,
                second ? a.S2 : a.S, qp, lane);
}
__device__ __forceinline__ void fa3_rescale(float (&o)[64], const float (&alpha)[2]) {
#pragma unroll
    for (int n = 0; n < 16; ++n) {
        o[n * 4 + 0] *= alpha[0];
        o[n * 4 + 1] *= alpha[0];
        o[n * 4 + 2] *= alpha[1];
        o[n * 4 + 3] *= alpha[1];
    }
}

template <bool PP>
__global__ void __launch_bounds__(384, 1)
    attn_fa3_kernel(const AttnArgs a, const __grid_constant__ CUtensorMap tmK, const __grid_constant__ CUtensorMap tmV,
                    const __grid_constant__ CUtensorMap tmK2, const __grid_constant__ CUtensorMap tmV2) {
#ifndef SF_WGMMA
    __trap();  // compiled without sm_90a features (wgmma, setmaxnreg): fail loudly rather than return garbage
#else
    constexpr int HD = 128, BM = 128, CH = HD / 8, NS = kFa3Stages;
    constexpr int TILE = BN3 * HD * 2;           // bytes of one K (or V) tile: 32 KB
    constexpr int HALF = BN3 * 128;              // bytes of one 64-column half of a tile
    extern __shared__ unsigned char smem_dyn[];
    unsigned char* smem = (unsigned char*)(((uintptr_t)smem_dyn + 1023) & ~(uintptr_t)1023);
    unsigned char* Qs = smem;                    // [2 halves][128 rows][128 B] = 32 KB
    unsigned char* Ks = Qs + 2 * BM * 128;       // [NS][2 halves][128 keys][128 B]
    unsigned char* Vs = Ks + NS * TILE;
    uint64_t* bars = reinterpret_cast<uint64_t*>(Vs + NS * TILE);  // fullK, fullV, emptyK, emptyV [NS] each
    const uint32_t bar0 = smem_u32(bars);
    auto fullK = [&](int s) { return bar0 + 8 * s; };
    auto fullV = [&](int s) { return bar0 + 8 * (NS + s); };
    auto emptyK = [&](int s) { return bar0 + 8 * (2 * NS + s); };
    auto emptyV = [&](int s) { return bar0 + 8 * (3 * NS + s); };

    const int tid = threadIdx.x, wg = tid >> 7, lane = tid & 31;
    const int qt = a.reverse ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int kvh = blockIdx.y, split = blockIdx.z;
    const int row0 = qt * BM;
    const int n_items = a.count[qt];
    const int per = (n_items + a.nsplit - 1) / a.nsplit;
    const int i0 = split * per, i1 = min(n_items, i0 + per);
    const int n = max(0, i1 - i0);
    const int* lst = a.list + (size_t)qt * a.list_stride;

    if (tid == 0) {
        for (int s = 0; s < NS; ++s) {
            mbar_init(fullK(s), 1);
            mbar_init(fullV(s), 1);
            mbar_init(emptyK(s), 8);  // one arrive per consumer warp
            mbar_init(emptyV(s), 8);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (wg == 0) {  // ---- producer ----
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
        if (tid == 0) {
            asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tmK)) : "memory");
            asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tmV)) : "memory");
            const uint32_t k_s = smem_u32(Ks), v_s = smem_u32(Vs);
            for (int j = 0; j < n; ++j) {
                const int tile = lst[i0 + j] & 0x3fffffff;
                const bool second = tile >= a.nK1;
                const CUtensorMap* mk = second ? &tmK2 : &tmK;
                const CUtensorMap* mv = second ? &tmV2 : &tmV;
                const int key0 = (second ? tile - a.nK1 : tile) * BN3;
                const int s = j % NS;
                const uint32_t ph = (uint32_t)(j / NS) & 1u;
                if (j >= NS) mbar_wait(emptyK(s), ph ^ 1u);
                mbar_expect_tx(fullK(s), TILE);
                tma_load_3d(k_s + s * TILE, mk, 0, kvh, key0, fullK(s));
                tma_load_3d(k_s + s * TILE + HALF, mk, 64, kvh, key0, fullK(s));
                if (j >= NS) mbar_wait(emptyV(s), ph ^ 1u);
                mbar_expect_tx(fullV(s), TILE);
                tma_load_3d(v_s + s * TILE, mv, 0, kvh, key0, fullV(s));
                tma_load_3d(v_s + s * TILE + HALF, mv, 64, kvh, key0, fullV(s));
            }
        }
        return;
    }
    // ---- consumers ----
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
    const int c = wg - 1, ctid = tid - 128 * wg, warp = ctid >> 5;
    // this warpgroup's 64 Q rows -> shared (zero rows past Tp)
    for (int x = ctid; x < 64 * CH; x += 128) {
        const int r = c * 64 + x / CH, ch = x % CH, pr = row0 + r;
        const bool ok = pr < a.Tp;
        const int t = ok ? pr / a.G : 0, h = kvh * a.G + (ok ? pr % a.G : 0);
        const int off = (ch >> 3) * BM * 128 + r * 128 + (((ch & 7) ^ (r & 7)) << 4);
        cp_async16(smem_u32(Qs + off), a.q + ((size_t)t * a.H + h) * HD + ch * 8, ok);
    }
    cp_async_commit();
    int qp[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
        const int r = row0 + c * 64 + warp * 16 + (lane >> 2) + 8 * e;
        qp[e] = r < a.Tp ? a.qpos[r / a.G] : INT_MIN;
    }
    cp_async_wait_all();
    fence_proxy_async();  // cp.async wrote Q, the tensor cores read it
    named_bar_sync(1 + c, 128);

    float o[64];
#pragma unroll
    for (int x = 0; x < 64; ++x) o[x] = 0.f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, alpha[2];
    const float sl2 = a.scale_log2;
    const uint32_t q_base = smem_u32(Qs) + c * 64 * 128;
    const uint32_t k_s = smem_u32(Ks), v_s = smem_u32(Vs);
    auto issue_s = [&](float (&s)[64], int st) {
        const uint32_t kb = k_s + st * TILE;
#pragma unroll
        for (int kk = 0; kk < HD / 16; ++kk) {
            const uint32_t off = (kk & 3) * 32;
            wgmma_ss128(s, wg_desc(q_base + (kk >> 2) * BM * 128 + off), wg_desc(kb + (kk >> 2) * HALF + off), kk > 0);
        }
    };
    auto issue_pv = [&](const uint32_t (&p)[8][4], int st) {
        const uint32_t vb = v_s + st * TILE;
#pragma unroll
        for (int kk = 0; kk < BN3 / 16; ++kk) wgmma_rs128(o, p[kk], wg_desc_lbo(vb + kk * 16 * 128, HALF));
    };
    const int bar_me = 3 + c, bar_other = 3 + (c ^ 1);

    if (n > 0) {
        if (PP && c == 1) named_bar_arrive(3, 256);  // consumer 0 takes the first turn
        uint32_t pa[8][4];
        {   // tile 0: S only
            const int e0 = lst[i0];
            mbar_wait(fullK(0), 0);
            float s[64];
            if (PP) named_bar_sync(bar_me, 256);
            wg_fence();
            issue_s(s, 0);
            wg_commit();
            if (PP) named_bar_arrive(bar_other, 256);
            wg_wait<0>();
            wg_acc_fence64(s);
            if (lane == 0) mbar_arrive(emptyK(0));
            fa3_softmax_entry(s, m, l, alpha, sl2, e0, a, qp, lane);
            fa3_pack(s, pa);
        }
        for (int j = 1; j < n; ++j) {
            const int st = j % NS, sp = (j - 1) % NS;
            const int ej = lst[i0 + j];
            mbar_wait(fullK(st), (uint32_t)(j / NS) & 1u);
            mbar_wait(fullV(sp), (uint32_t)((j - 1) / NS) & 1u);
            float s[64];
            if (PP) named_bar_sync(bar_me, 256);
            wg_acc_fence64(o);  // the rescale and the P registers are final before the products start
            reg_fence(pa);
            wg_fence();
            issue_s(s, st);
            wg_commit();
            issue_pv(pa, sp);
            wg_commit();
            if (PP) named_bar_arrive(bar_other, 256);
            wg_wait<1>();  // S_j done (P V of tile j - 1 still running)
            wg_acc_fence64(s);
            if (lane == 0) mbar_arrive(emptyK(st));
            float al[2];
            fa3_softmax_entry(s, m, l, al, sl2, ej, a, qp, lane);
            wg_wait<0>();  // P_{j-1} V_{j-1} done: its P registers and O may be written again
            wg_acc_fence64(o);
            reg_fence(pa);
            if (lane == 0) mbar_arrive(emptyV(sp));
            fa3_rescale(o, al);
            fa3_pack(s, pa);
        }
        {   // the last tile's P V
            const int sp = (n - 1) % NS;
            mbar_wait(fullV(sp), (uint32_t)((n - 1) / NS) & 1u);
            if (PP) named_bar_sync(bar_me, 256);
            wg_acc_fence64(o);
            reg_fence(pa);
            wg_fence();
            issue_pv(pa, sp);
            wg_commit();
            if (PP && c == 0) named_bar_arrive(bar_other, 256);  // consumer 1 has no turn left to hand over
            wg_wait<0>();
            wg_acc_fence64(o);
            reg_fence(pa);
            if (lane == 0) mbar_arrive(emptyV(sp));
        }
    }
    // the first tile's rescale (alpha of tile 0) is moot: O was 0

    store_rows<HD>(a, split, row0 + c * 64 + warp * 16 + (lane >> 2), kvh, l, m,
                   [&](int d, int e, int j) { return o[d * 4 + 2 * e + j]; });
#endif
}

// Per key tile of TB keys: (min, max) key position; an incomplete last tile gets max = INT_MAX (always masked).
template <int TB>
__global__ void tile_minmax_kernel(const int* __restrict__ kpos, int S, int nK, int2* __restrict__ mm) {
    int tile = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (tile >= nK) return;
    int mn = INT_MAX, mx = INT_MIN;
#pragma unroll
    for (int x = 0; x < TB / 32; ++x) {
        const int key = tile * TB + lane + 32 * x;
        if (key < S) {
            const int v = kpos[key];
            mn = min(mn, v);
            mx = max(mx, v);
        }
    }
    for (int off = 16; off > 0; off >>= 1) {
        mn = min(mn, __shfl_xor_sync(0xffffffffu, mn, off));
        mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    }
    if (tile * TB + TB > S) mx = INT_MAX;
    if (lane == 0) mm[tile] = make_int2(mn, mx);
}

// Per query tile: the ordered list of key tiles with at least one visible key, flagged partial when some
// key may be masked for some row.
__global__ void plan_kernel(const int* __restrict__ qpos, int G, int Tp, int BM, const int2* __restrict__ mm,
                            int nK, int* __restrict__ list, int* __restrict__ count, int stride) {
    __shared__ int s_qmin, s_qmax, s_base, s_wc[32];
    const int qt = blockIdx.x, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
    if (tid == 0) { s_qmin = INT_MAX; s_qmax = INT_MIN; s_base = 0; }
    __syncthreads();
    int r1 = min(Tp, qt * BM + BM);
    for (int t = qt * BM / G + tid; t <= (r1 - 1) / G; t += blockDim.x) {
        int p = qpos[t];
        atomicMin(&s_qmin, p);
        atomicMax(&s_qmax, p);
    }
    __syncthreads();
    const int qmin = s_qmin, qmax = s_qmax;
    int* out = list + (size_t)qt * stride;
    for (int c0 = 0; c0 < nK; c0 += blockDim.x) {
        int j = c0 + tid, entry = 0;
        bool inc = false;
        if (j < nK) {
            int2 v = mm[j];
            inc = v.x <= qmax;
            entry = j | (v.y > qmin ? (1 << 30) : 0);
        }
        unsigned bal = __ballot_sync(0xffffffffu, inc);
        if (lane == 0) s_wc[warp] = __popc(bal);
        __syncthreads();
        int off = s_base;
        for (int w = 0; w < warp; ++w) off += s_wc[w];
        off += __popc(bal & ((1u << lane) - 1u));
        if (inc) out[off] = entry;
        __syncthreads();
        if (tid == 0) {
            int b = s_base;
            for (int w = 0; w < nw; ++w) b += s_wc[w];
            s_base = b;
        }
        __syncthreads();
    }
    if (tid == 0) count[qt] = s_base;
}

// Simple reference kernel: one warp per (row, head), FP32, any even hd <= 256.
__global__ void attn_simple_kernel(const uint16_t* __restrict__ q, const int* __restrict__ qpos, int T, int H,
                                   const uint16_t* __restrict__ k, const uint16_t* __restrict__ v,
                                   const int* __restrict__ kpos, int S, int Hkv, int hd, float scale,
                                   float* __restrict__ out, float* __restrict__ lse) {
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= T * H) return;
    int t = row / H, h = row % H, g = h / (H / Hkv);
    float qv[8], acc[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        int d = lane + 32 * j;
        qv[j] = d < hd ? bfbits2f(q[(size_t)row * hd + d]) * scale : 0.f;
        acc[j] = 0.f;
    }
    float m = -INFINITY, l = 0.f;
    int qp = qpos[t];
    for (int s = 0; s < S; ++s) {
        if (kpos[s] > qp) continue;
        const uint16_t* kr = k + ((size_t)s * Hkv + g) * hd;
        const uint16_t* vr = v + ((size_t)s * Hkv + g) * hd;
        float dot = 0.f;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            int d = lane + 32 * j;
            if (d < hd) dot += qv[j] * bfbits2f(kr[d]);
        }
        for (int off = 16; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
        float mn = fmaxf(m, dot);
        float corr = expf(m - mn), p = expf(dot - mn);
        l = l * corr + p;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            int d = lane + 32 * j;
            acc[j] = acc[j] * corr + (d < hd ? p * bfbits2f(vr[d]) : 0.f);
        }
        m = mn;
    }
    float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        int d = lane + 32 * j;
        if (d < hd) out[(size_t)row * hd + d] = acc[j] * inv;
    }
    if (lane == 0) lse[row] = l > 0.f ? m + logf(l) : -INFINITY;
}

struct MergePtrs {
    const float* o[kMaxMerge];
    const float* l[kMaxMerge];
};

// One block of 256 threads per (row, head): LSE merge of n <= kMaxMerge partials in order 0..n-1.
// Warp 0 computes LSE and the weights; then P = 256 / ceil32(hd/2) groups of threads each sum every P-th
// partial (float2 per thread, independent loads in flight), and the groups are added in a fixed order.
// Every read of a partial happens before the barrier that precedes the writes, so out may alias a partial.
__global__ void __launch_bounds__(256) merge_kernel(const MergePtrs p, int n, int hd, float* __restrict__ out,
                                                    float* __restrict__ lse) {
    __shared__ float s_w[kMaxMerge];
    __shared__ float s_L;
    __shared__ float2 s_acc[256];
    const int row = blockIdx.x, tid = threadIdx.x;
    if (tid < 32) {
        float li0 = tid < n ? p.l[tid][row] : -INFINITY;
        float li1 = tid + 32 < n ? p.l[tid + 32][row] : -INFINITY;
        float mx = fmaxf(li0, li1);
        for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        float sum = 0.f;
        if (mx != -INFINITY) {
            sum = (li0 != -INFINITY ? expf(li0 - mx) : 0.f) + (li1 != -INFINITY ? expf(li1 - mx) : 0.f);
            for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
        }
        float L = mx != -INFINITY ? mx + logf(sum) : -INFINITY;
        if (tid < n) s_w[tid] = li0 != -INFINITY ? expf(li0 - L) : 0.f;
        if (tid + 32 < n) s_w[tid + 32] = li1 != -INFINITY ? expf(li1 - L) : 0.f;
        if (tid == 0) s_L = L;
    }
    __syncthreads();
    const int half = hd / 2;                    // float2 per thread
    const int gsize = (half + 31) & ~31;        // threads per group
    const int ngroups = 256 / gsize;            // >= 1 for hd <= 512
    const int g = tid / gsize, j = tid % gsize;
    float2 acc = make_float2(0.f, 0.f);
    if (g < ngroups && j < half) {
#pragma unroll 4
        for (int i = g; i < n; i += ngroups) {
            float w = s_w[i];
            if (w == 0.f) continue;  // no visible key (or negligible): never read its out
            float2 v = reinterpret_cast<const float2*>(p.o[i] + (size_t)row * hd)[j];
            acc.x += w * v.x;
            acc.y += w * v.y;
        }
    }
    s_acc[tid] = acc;
    __syncthreads();
    if (tid < half) {
        float2 r = make_float2(0.f, 0.f);
        for (int gg = 0; gg < ngroups; ++gg) {
            float2 v = s_acc[gg * gsize + tid];
            r.x += v.x;
            r.y += v.y;
        }
        reinterpret_cast<float2*>(out + (size_t)row * hd)[tid] = r;
    }
    if (tid == 0) lse[row] = s_L;
}

int launch_merge(sf_context* ctx, int n, const float* const* outs, size_t out_stride, const float* const* lses,
                 size_t lse_stride, const float* out_base, const float* lse_base, int rows, int hd, float* out,
                 float* lse, const char* fn) {
    // Either pointer arrays (outs/lses) or a strided base (out_base + i * out_stride).
    int done = 0;
    bool first = true;
    while (done < n) {
        MergePtrs p;
        int m = 0;
        if (!first) {  // continue from the running result
            p.o[0] = out;
            p.l[0] = lse;
            m = 1;
        }
        while (m < kMaxMerge && done < n) {
            p.o[m] = outs ? outs[done] : out_base + (size_t)done * out_stride;
            p.l[m] = lses ? lses[done] : lse_base + (size_t)done * lse_stride;
            if (!p.o[m] || !p.l[m]) return sf_set_error(SF_ERR_INVALID, "%s: partial %d is null", fn, done);
            ++m;
            ++done;
        }
        merge_kernel<<<rows, 256, 0, ctx->stream>>>(p, m, hd, out, lse);
        int r = sf_after_launch(ctx, fn);
        if (r) return r;
        first = false;
    }
    return 0;
}

template <int HD, int W, int MT>
int launch_tiled(sf_context* ctx, AttnArgs& a, int nQ, const char* fn) {
    constexpr int BM = 16 * W * MT;
    size_t smem = (size_t)(BM * HD + 4 * BN * HD) * 2 + 2 * BN * sizeof(int);
    auto kern = attn_tiled_kernel<HD, W, MT>;
    SF_CUDA(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), fn);
    dim3 grid(nQ, a.Hkv, a.nsplit);
    kern<<<grid, 32 * W, smem, ctx->stream>>>(a);
    return sf_after_launch(ctx, fn);
}

template <int NWG, int MINB>
int launch_wgmma(sf_context* ctx, AttnArgs& a, int nQ, const char* fn) {
    size_t smem = 1024 + (size_t)(64 * NWG * 128 + 4 * BN * 128) * 2 + 2 * BN * sizeof(int);
    auto kern = attn_wgmma_kernel<NWG, MINB>;
    SF_CUDA(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), fn);
    dim3 grid(nQ, a.Hkv, a.nsplit);
    kern<<<grid, 128 * NWG, smem, ctx->stream>>>(a);
    return sf_after_launch(ctx, fn);
}

int launch_wgmma_pipe(sf_context* ctx, AttnArgs& a, int nQ, const char* fn) {
    size_t smem = 1024 + (size_t)(128 * 128 + 6 * BN * 128) * 2 + 3 * BN * sizeof(int);
    SF_CUDA(cudaFuncSetAttribute(attn_wgmma_pipe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), fn);
    dim3 grid(nQ, a.Hkv, a.nsplit);
    attn_wgmma_pipe_kernel<<<grid, 256, smem, ctx->stream>>>(a);
    return sf_after_launch(ctx, fn);
}

// cuTensorMapEncodeTiled through the runtime's driver entry point (no link against libcuda).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
    static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
    static std::once_flag once;
    std::call_once(once, [] {
        void* p = nullptr;
        cudaDriverEntryPointQueryResult q;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) ==
                cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            fn = (PFN_cuTensorMapEncodeTiled_v12000)p;
    });
    return fn;
}

// A [S][Hkv][128] BF16 tensor as 64 x 1 x BN3 boxes (one 64-column half of a 128-key tile of one KV head) in the
// 128-byte swizzle; boxes reaching past S are zero-filled.
int kv_tensor_map(CUtensorMap* map, const void* base, int S, int Hkv, const char* fn) {
    auto enc = tensor_map_encoder();
    if (!enc) return sf_set_error(SF_ERR_CUDA, "%s: cuTensorMapEncodeTiled not available from the driver", fn);
    cuuint64_t dims[3] = {128, (cuuint64_t)Hkv, (cuuint64_t)S};
    cuuint64_t strides[2] = {128 * 2, (cuuint64_t)Hkv * 128 * 2};
    cuuint32_t box[3] = {64, 1, (cuuint32_t)BN3};
    cuuint32_t estr[3] = {1, 1, 1};
    CUresult r = enc(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims, strides, box, estr,
                     CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                     CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS)
        return sf_set_error(SF_ERR_CUDA, "%s: cuTensorMapEncodeTiled failed (CUresult %d; K/V must be 16-byte aligned)",
                            fn, (int)r);
    return 0;
}

template <bool PP>
int launch_fa3(sf_context* ctx, AttnArgs& a, int nQ, const char* fn) {
    CUtensorMap tk, tv, tk2, tv2;
    int r = kv_tensor_map(&tk, a.k, a.S, a.Hkv, fn);
    if (!r) r = kv_tensor_map(&tv, a.v, a.S, a.Hkv, fn);
    if (r) return r;
    if (a.k2) {
        r = kv_tensor_map(&tk2, a.k2, a.S2, a.Hkv, fn);
        if (!r) r = kv_tensor_map(&tv2, a.v2, a.S2, a.Hkv, fn);
        if (r) return r;
    } else {
        tk2 = tk;
        tv2 = tv;
    }
    size_t smem = 1024 + (size_t)(128 * 128 * 2) + (size_t)kFa3Stages * 2 * (BN3 * 128 * 2) + 4 * kFa3Stages * 8;
    auto kern = attn_fa3_kernel<PP>;
    SF_CUDA(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), fn);
    dim3 grid(nQ, a.Hkv, a.nsplit);
    kern<<<grid, 384, smem, ctx->stream>>>(a, tk, tv, tk2, tv2);
    return sf_after_launch(ctx, fn);
}

// Variants: 0 = 16 rows, 1 warp; 1 = 64 rows, 4 warps; 2 = 128 rows, 8 warps x 16; 3 = 128 rows, 4 warps x 32.
template <int HD>
int launch_tiled_v(sf_context* ctx, AttnArgs& a, int v, int nQ, const char* fn) {
    switch (v) {
        case 0: return launch_tiled<HD, 1, 1>(ctx, a, nQ, fn);
        case 1: return launch_tiled<HD, 4, 1>(ctx, a, nQ, fn);
        case 2: return launch_tiled<HD, 8, 1>(ctx, a, nQ, fn);
        case 3: return launch_tiled<HD, 4, 2>(ctx, a, nQ, fn);
        case 4: return launch_wgmma<2, 1>(ctx, a, nQ, fn);  // HD 128 only
        case 5: return launch_wgmma<2, 2>(ctx, a, nQ, fn);
        case 6: return launch_wgmma_pipe(ctx, a, nQ, fn);
        case 8: return launch_fa3<true>(ctx, a, nQ, fn);   // FA3 style, ping-pong
        case 9: return launch_fa3<false>(ctx, a, nQ, fn);  // FA3 style, no ping-pong
        default: return launch_wgmma<3, 1>(ctx, a, nQ, fn);  // 7: 192 rows
    }
}

size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

struct KeySet {
    const sf_bf16* k;
    const sf_bf16* v;
    const int32_t* kpos;
    int S;
};

// sf_attention over key set k1 and, when k2 is not null, also over k2 in the same pass. A second key set is only
// taken by the FA3-style kernel: when the options resolve to another kernel, nothing is launched and *fused is
// false (the caller merges two calls instead).
int attention_run(sf_context* ctx, const char* fn, const sf_bf16* q, const int32_t* qpos, int T, int H,
                  const KeySet& k1, const KeySet* k2, int Hkv, int hd, float* out, float* lse,
                  const sf_attention_opts* opts, bool* fused) {
    const sf_bf16* k = k1.k;
    const sf_bf16* v = k1.v;
    const int32_t* kpos = k1.kpos;
    const int S1 = k1.S;
    const int S = S1 + (k2 ? k2->S : 0);
    if (fused) *fused = false;
    SF_CHECK_ARG(T >= 0 && S >= 0 && H > 0 && Hkv > 0 && H % Hkv == 0, fn);
    SF_CHECK_ARG(hd > 0 && hd % 2 == 0 && hd <= 256, fn);
    if (T == 0) return 0;
    SF_CHECK_ARG(q && qpos && out && lse, fn);
    SF_CHECK_ARG(S1 == 0 || (k && v && kpos), fn);
    SF_CHECK_ARG(!k2 || k2->S == 0 || (k2->k && k2->v && k2->kpos), fn);
    SF_CHECK_ARG((long long)T * H <= INT_MAX && (long long)S + BN3 <= INT_MAX, fn);
    int algo = opts ? opts->algo : SF_ATTN_AUTO;
    bool fast = hd == 64 || hd == 128;
    if (algo == SF_ATTN_AUTO) algo = fast ? SF_ATTN_TILED : SF_ATTN_SIMPLE;
    const float scale = 1.0f / sqrtf((float)hd);
    if (algo == SF_ATTN_SIMPLE) {
        if (k2) return 0;  // not fused
        const int warps = 4;
        attn_simple_kernel<<<ceil_div_u((size_t)T * H, warps), warps * 32, 0, ctx->stream>>>(
            q, qpos, T, H, k, v, kpos, S, Hkv, hd, scale, out, lse);
        return sf_after_launch(ctx, fn);
    }
    if (algo != SF_ATTN_TILED) return sf_set_error(SF_ERR_INVALID, "%s: unknown algo %d", fn, algo);
    if (!fast) return sf_set_error(SF_ERR_INVALID, "%s: the tiled kernel supports hd 64 or 128, not %d", fn, hd);

    AttnArgs a{};
    a.q = (const __nv_bfloat16*)q;
    a.qpos = qpos;
    a.T = T;
    a.H = H;
    a.k = (const __nv_bfloat16*)k;
    a.v = (const __nv_bfloat16*)v;
    a.kpos = kpos;
    a.S = S;
    a.Hkv = Hkv;
    a.G = H / Hkv;
    a.Tp = T * a.G;
    a.scale = scale;
    a.scale_log2 = scale * 1.4426950408889634f;
    a.nK = (S + BN - 1) / BN;

    int bm = opts ? opts->block_m : 0, kv = opts ? opts->variant : 0;
    if (bm == 0) bm = a.Tp <= 16 ? 16 : (a.Tp <= 64 ? 64 : 128);
    int variant;
    if (bm == 16) variant = 0;
    else if (bm == 64) variant = 1;
    else if (bm == 128) {
        // opts.variant 1..6 -> internal 2..7; 7, 8 (FA3 style with / without ping-pong) -> internal 8, 9
        static const int map[9] = {-1, 2, 3, 4, 5, 6, 7, 8, 9};
        variant = kv >= 1 && kv <= 8 ? map[kv] : (hd == 128 ? kDefault128 : 3);
    }
    else return sf_set_error(SF_ERR_INVALID, "%s: block_m must be 0, 16, 64 or 128, not %d", fn, bm);
    if (variant >= 4 && S == 0) variant = 3;  // nothing to stream: the plan-free kernel writes the empty rows
    if (variant >= 4 && hd != 128) return sf_set_error(SF_ERR_INVALID, "%s: variant 3 (wgmma) needs hd 128", fn);
    if (variant >= 8 && (((uintptr_t)k | (uintptr_t)v) & 15)) variant = 7;  // TMA needs 16-byte aligned K/V
    if (k2 && (variant < 8 || S1 == 0 || k2->S == 0 || (((uintptr_t)k2->k | (uintptr_t)k2->v) & 15))) return 0;
    const bool fa3 = variant >= 8;
    const int BM = variant == 7 ? 192 : bm;
    const int nQ = (a.Tp + BM - 1) / BM;
    const int TB = fa3 ? BN3 : BN;  // keys per tile of the chosen kernel (and of its plan)
    a.nK1 = (S1 + TB - 1) / TB;
    a.nK = a.nK1 + (k2 ? (k2->S + TB - 1) / TB : 0);
    if (k2) {
        a.k2 = (const __nv_bfloat16*)k2->k;
        a.v2 = (const __nv_bfloat16*)k2->v;
        a.kpos2 = k2->kpos;
        a.S2 = k2->S;
        a.S = S1;  // the first key set's length (tiles of the second are numbered from nK1)
    }

    int nsplit = opts && opts->num_splits > 0 ? opts->num_splits : 0;
    if (nsplit == 0) {
        int blocks = nQ * Hkv;
        int per_sm = variant == 0 ? 3 : 2;
        int target = ctx->num_sms * per_sm;
        nsplit = 1;
        if (blocks < target && a.nK >= 4) nsplit = std::min((target + blocks - 1) / blocks, a.nK / 2);
    }
    nsplit = std::max(1, std::min(nsplit, std::max(1, a.nK)));
    a.nsplit = nsplit;
    const bool use_list = (nQ > 1 || variant >= 4) && a.nK > 0;

    size_t need = 0, off_mm = 0, off_list = 0, off_count = 0, off_po = 0, off_pl = 0;
    if (use_list) {
        off_mm = need;
        need = align256(need + (size_t)a.nK * sizeof(int2));
        off_list = need;
        need = align256(need + (size_t)nQ * a.nK * sizeof(int));
        off_count = need;
        need = align256(need + (size_t)nQ * sizeof(int));
    }
    if (nsplit > 1) {
        off_po = need;
        need = align256(need + (size_t)nsplit * T * H * hd * sizeof(float));
        off_pl = need;
        need = align256(need + (size_t)nsplit * T * H * sizeof(float));
    }
    char* scratch = nullptr;
    if (need) {
        int r = sf_scratch(ctx, need, (void**)&scratch, fn);
        if (r) return r;
    }
    if (use_list) {
        int2* mm = (int2*)(scratch + off_mm);
        if (fa3) {
            tile_minmax_kernel<BN3><<<ceil_div_u((size_t)a.nK1 * 32, 256), 256, 0, ctx->stream>>>(kpos, S1, a.nK1, mm);
            if (k2)
                tile_minmax_kernel<BN3><<<ceil_div_u((size_t)(a.nK - a.nK1) * 32, 256), 256, 0, ctx->stream>>>(
                    k2->kpos, k2->S, a.nK - a.nK1, mm + a.nK1);
        } else {
            tile_minmax_kernel<BN><<<ceil_div_u((size_t)a.nK * 32, 256), 256, 0, ctx->stream>>>(kpos, S, a.nK, mm);
        }
        int r = sf_after_launch(ctx, fn);
        if (r) return r;
        a.list = (const int*)(scratch + off_list);
        a.count = (const int*)(scratch + off_count);
        a.list_stride = a.nK;
        plan_kernel<<<nQ, 256, 0, ctx->stream>>>(qpos, a.G, a.Tp, BM, mm, a.nK, (int*)(scratch + off_list),
                                                  (int*)(scratch + off_count), a.nK);
        r = sf_after_launch(ctx, fn);
        if (r) return r;
        a.reverse = 1;
    }
    if (nsplit > 1) {
        a.out = (float*)(scratch + off_po);
        a.lse = (float*)(scratch + off_pl);
        a.out_split_stride = (size_t)T * H * hd;
        a.lse_split_stride = (size_t)T * H;
    } else {
        a.out = out;
        a.lse = lse;
    }
    int r = hd == 64 ? launch_tiled_v<64>(ctx, a, variant, nQ, fn) : launch_tiled_v<128>(ctx, a, variant, nQ, fn);
    if (r) return r;
    if (fused) *fused = k2 != nullptr;
    if (nsplit > 1)
        return launch_merge(ctx, nsplit, nullptr, a.out_split_stride, nullptr, a.lse_split_stride, a.out, a.lse,
                            T * H, hd, out, lse, fn);
    return 0;
}

}  // namespace

extern "C" int sf_attention(sf_context* ctx, const sf_bf16* q, const int32_t* qpos, int T, int H,
                            const sf_bf16* k, const sf_bf16* v, const int32_t* kpos, int S, int Hkv, int hd,
                            float* out, float* lse, const sf_attention_opts* opts) {
    const char* fn = "sf_attention";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(S >= 0, fn);
    return attention_run(ctx, fn, q, qpos, T, H, KeySet{k, v, kpos, S}, nullptr, Hkv, hd, out, lse, opts, nullptr);
}

extern "C" int sf_attention2(sf_context* ctx, const sf_bf16* q, const int32_t* qpos, int T, int H,
                             const sf_bf16* k1, const sf_bf16* v1, const int32_t* kpos1, int S1,
                             const sf_bf16* k2, const sf_bf16* v2, const int32_t* kpos2, int S2, int Hkv, int hd,
                             float* out, float* lse, const sf_attention_opts* opts) {
    const char* fn = "sf_attention2";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(S1 >= 0 && S2 >= 0 && (long long)S1 + S2 + BN3 <= INT_MAX, fn);
    const KeySet a{k1, v1, kpos1, S1}, b{k2, v2, kpos2, S2};
    if (S2 == 0) return attention_run(ctx, fn, q, qpos, T, H, a, nullptr, Hkv, hd, out, lse, opts, nullptr);
    if (S1 == 0) return attention_run(ctx, fn, q, qpos, T, H, b, nullptr, Hkv, hd, out, lse, opts, nullptr);
    bool fused = false;
    int r = attention_run(ctx, fn, q, qpos, T, H, a, &b, Hkv, hd, out, lse, opts, &fused);
    if (r || fused || T == 0) return r;
    // another kernel: the first key set into out / lse, the second into the context's second scratch, merged
    r = attention_run(ctx, fn, q, qpos, T, H, a, nullptr, Hkv, hd, out, lse, opts, nullptr);
    if (r) return r;
    const size_t n_out = (size_t)T * H * hd;
    float* part = nullptr;
    r = sf_scratch_aux(ctx, (n_out + (size_t)T * H) * sizeof(float), (void**)&part, fn);
    if (r) return r;
    r = attention_run(ctx, fn, q, qpos, T, H, b, nullptr, Hkv, hd, part, part + n_out, opts, nullptr);
    if (r) return r;
    const float* outs[2] = {out, part};
    const float* lses[2] = {lse, part + n_out};
    return launch_merge(ctx, 2, outs, 0, lses, 0, nullptr, nullptr, T * H, hd, out, lse, fn);
}

extern "C" int sf_attention_merge(sf_context* ctx, int n, const float* const* outs, const float* const* lses, int T,
                                  int H, int hd, float* out, float* lse) {
    const char* fn = "sf_attention_merge";
    SF_ENTER(ctx, fn);
    SF_CHECK_ARG(n >= 1 && outs && lses && out && lse && T >= 0 && H > 0 && hd > 0 && hd % 2 == 0 && hd <= 512, fn);
    SF_CHECK_ARG((long long)T * H <= INT_MAX, fn);
    if (T == 0) return 0;
    return launch_merge(ctx, n, outs, 0, lses, 0, nullptr, nullptr, T * H, hd, out, lse, fn);
}
