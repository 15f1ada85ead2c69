"""Benchmarks of libstarflink_gpu next to torch SDPA, in one process (ctypes + torch, same stream).

1. attention prefill, Llama-3.1-8B heads (32 q / 8 kv, hd 128), causal, 16K-64K: ours vs SDPA cuDNN / flash.
2. Star phase 1: a block of b = 8K rows over [anchor 8K (all visible); own 8K (causal)], anchor rows never
   computed, vs SDPA causal over the 2b tokens of [anchor; block] (the reference implementation's work).
3. phase-2 / decode split-KV partial: 1, 4, 16 rows over 8K-32K keys, GB/s of K+V read vs the copy ceiling.
Timing: CUDA events, warm-up, median of repeats; few-row calls are captured in a CUDA graph (50 calls
cycling over KV sets larger than L2) and the replays timed, so launch gaps are not counted.
"""
import argparse, ctypes, json, math, os, statistics, sys
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

ap = argparse.ArgumentParser()
ap.add_argument("--lib", default=os.path.join(os.path.dirname(__file__), "..", "build", "libstarflink_gpu.so"))
ap.add_argument("--out", default=None)
ap.add_argument("--lengths", default="16384,32768,65536")
ap.add_argument("--reps", type=int, default=10)
ap.add_argument("--prefill-only", action="store_true", help="only table 1 (the attention prefill kernels)")
args = ap.parse_args()

lib = ctypes.CDLL(os.path.abspath(args.lib))
P, I, D = ctypes.c_void_p, ctypes.c_int, ctypes.c_double
lib.sf_last_error.restype = ctypes.c_char_p
lib.sf_context_create.argtypes = [I, ctypes.POINTER(P)]
lib.sf_context_set_stream.argtypes = [P, P]
lib.sf_context_reserve.argtypes = [P, ctypes.c_size_t]
lib.sf_context_destroy.argtypes = [P]


class Opts(ctypes.Structure):
    _fields_ = [("algo", I), ("num_splits", I), ("block_m", I), ("variant", I)]


lib.sf_attention.argtypes = [P, P, P, I, I, P, P, P, I, I, I, P, P, ctypes.POINTER(Opts)]
lib.sf_attention_merge.argtypes = [P, I, ctypes.POINTER(P), ctypes.POINTER(P), I, I, I, P, P]
lib.sf_attention2.argtypes = [P, P, P, I, I, P, P, P, I, P, P, P, I, I, I, P, P, ctypes.POINTER(Opts)]

ctx = P()
assert lib.sf_context_create(0, ctypes.byref(ctx)) == 0, lib.sf_last_error()
dev = torch.device("cuda")
# A real (non-null) stream for everything: events, SDPA and our kernels all on it.
main_stream = torch.cuda.Stream()
torch.cuda.set_stream(main_stream)
assert torch.cuda.current_stream().cuda_stream != 0


def bind_stream():
    lib.sf_context_set_stream(ctx, P(torch.cuda.current_stream().cuda_stream))


bind_stream()


def check(rc):
    if rc != 0:
        raise RuntimeError(lib.sf_last_error().decode())


def attn(q, qpos, k, v, kpos, out, lse, opts=None):
    T, H, hd = q.shape
    S, Hkv = k.shape[0], k.shape[1]
    check(lib.sf_attention(ctx, q.data_ptr(), qpos.data_ptr(), T, H, k.data_ptr(), v.data_ptr(), kpos.data_ptr(),
                           S, Hkv, hd, out.data_ptr(), lse.data_ptr(), ctypes.byref(opts) if opts else None))


def attn2(q, qpos, k1, v1, kpos1, k2, v2, kpos2, out, lse, opts=None):
    T, H, hd = q.shape
    check(lib.sf_attention2(ctx, q.data_ptr(), qpos.data_ptr(), T, H, k1.data_ptr(), v1.data_ptr(), kpos1.data_ptr(),
                            k1.shape[0], k2.data_ptr(), v2.data_ptr(), kpos2.data_ptr(), k2.shape[0], k1.shape[1], hd,
                            out.data_ptr(), lse.data_ptr(), ctypes.byref(opts) if opts else None))


def merge(outs, lses, out, lse):
    n = len(outs)
    po = (P * n)(*[o.data_ptr() for o in outs])
    pl = (P * n)(*[l.data_ptr() for l in lses])
    T, H, hd = out.shape
    check(lib.sf_attention_merge(ctx, n, po, pl, T, H, hd, out.data_ptr(), lse.data_ptr()))


def time_ms(fn, reps=None, warmup=2):
    reps = reps or args.reps
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts), min(ts), max(ts)


def sdpa(backend, q, k, v, causal, gqa):
    with sdpa_kernel(backend):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)


def sdpa_inputs(q, k, v):
    """[T,H,hd] -> [1,H,T,hd] contiguous; returns (q, k, v, gqa) for the kernels that take GQA, and expanded kv."""
    qs = q.permute(1, 0, 2).contiguous().unsqueeze(0)
    ks = k.permute(1, 0, 2).contiguous().unsqueeze(0)
    vs = v.permute(1, 0, 2).contiguous().unsqueeze(0)
    rep = q.shape[1] // k.shape[1]
    return qs, ks, vs, ks.repeat_interleave(rep, dim=1), vs.repeat_interleave(rep, dim=1)


def run_sdpa(backend, qs, ks, vs, kx, vx, causal):
    """Times SDPA with GQA if the backend takes it, else with KV expanded to all heads (same FLOPs)."""
    try:
        sdpa(backend, qs, ks, vs, causal, True)
        torch.cuda.synchronize()
        return time_ms(lambda: sdpa(backend, qs, ks, vs, causal, True)), "gqa"
    except Exception:
        pass
    try:
        sdpa(backend, qs, kx, vx, causal, False)
        torch.cuda.synchronize()
        return time_ms(lambda: sdpa(backend, qs, kx, vx, causal, False)), "expanded kv"
    except Exception as e:
        return None, "n/a: " + str(e).splitlines()[0][:60]


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)



def print_table1():
    print("\n### 1. attention prefill, causal, 32 q / 8 kv heads, hd 128 (TFLOP/s = 4*N*N*H*hd/2 / time)")
    print("| N | ours FA3-style ping-pong | ours FA3-style | ours wgmma 3 warpgroups | ours wgmma overlapped | ours wgmma | ours wgmma 2 blocks/SM | ours mma.sync 4 warps x 32 rows | ours mma.sync 8 warps x 16 rows | SDPA cuDNN | SDPA flash | best ours / cuDNN | best ours / flash | rel err vs fp32 math |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows1:
        best = max(r[v[0] + "_tflops"] for v in VARIANTS)
        c, fl = r["cudnn_tflops"], r["flash_tflops"]
        print(f"| {r['N']//1024}K | " + " | ".join(f"{r[v[0] + '_tflops']:.0f}" for v in VARIANTS) + f" | {fmt(c, '.0f')} "
              f"({r['cudnn_how']}) | {fmt(fl, '.0f')} ({r['flash_how']}) | {fmt(best / c if c else None, '.2f')} | "
              f"{fmt(best / fl if fl else None, '.2f')} | {r['rel_err_vs_math']:.1e} |")


results = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "cudnn": torch.backends.cudnn.version()}
print(f"device {results['device']}  torch {results['torch']}  cudnn {results['cudnn']}", flush=True)
H, HKV, HD = 32, 8, 128
torch.manual_seed(0)

# ---- copy ceiling ----
nbytes = 4 << 30
src = torch.empty(nbytes // 4, dtype=torch.float32, device=dev).uniform_()
dst = torch.empty_like(src)
ms, _, _ = time_ms(lambda: dst.copy_(src))
copy_gbs = 2 * nbytes / ms / 1e6
results["copy_GBps"] = copy_gbs
del src, dst
print(f"device-to-device copy: {copy_gbs:.0f} GB/s (read + write, 4 GiB)", flush=True)

# ---- 1. prefill ----
VARIANTS = [("ours_fa3_pp", 128, 7), ("ours_fa3", 128, 8), ("ours_wgmma_3wg", 128, 6), ("ours_wgmma_pipe", 128, 5), ("ours_wgmma", 128, 3), ("ours_wgmma_2blk", 128, 4), ("ours_mma_4x32", 128, 2), ("ours_mma_8x16", 128, 1)]
rows1 = []
for N in [int(x) for x in args.lengths.split(",")]:
    q = torch.randn(N, H, HD, device=dev, dtype=torch.bfloat16)
    k = torch.randn(N, HKV, HD, device=dev, dtype=torch.bfloat16)
    v = torch.randn(N, HKV, HD, device=dev, dtype=torch.bfloat16)
    pos = torch.arange(N, device=dev, dtype=torch.int32)
    out = torch.empty(N, H, HD, device=dev, dtype=torch.float32)
    lse = torch.empty(N, H, device=dev, dtype=torch.float32)
    flops = 4.0 * N * N * H * HD / 2
    row = {"N": N}
    for name, bm, w in VARIANTS:
        o = Opts(2, 1, bm, w)
        row[name] = time_ms(lambda: attn(q, pos, k, v, pos, out, lse, o))[0]
    qs, ks, vs, kx, vx = sdpa_inputs(q, k, v)
    for name, be in [("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)]:
        t, how = run_sdpa(be, qs, ks, vs, kx, vx, True)
        row[name] = t[0] if t else None
        row[name + "_how"] = how
    # accuracy spot check of ours vs SDPA (first 2048 rows) in float32
    attn(q, pos, k, v, pos, out, lse)
    ref = sdpa(SDPBackend.MATH, qs[:, :, :2048].float(), kx[:, :, :2048].float(), vx[:, :, :2048].float(), True, False)
    row["rel_err_vs_math"] = ((out[:2048].permute(1, 0, 2) - ref[0]).norm() / ref.norm()).item()
    for key in [v[0] for v in VARIANTS] + ["cudnn", "flash"]:
        row[key + "_tflops"] = flops / row[key] / 1e9 if row.get(key) else None
    rows1.append(row)
    print(json.dumps(row), flush=True)
    del q, k, v, out, lse, qs, ks, vs, kx, vx, ref
    torch.cuda.empty_cache()
results["prefill"] = rows1
if args.prefill_only:
    if args.out:
        with open(os.path.join(args.out, "bench.json"), "w") as f:
            json.dump(results, f, indent=1)
    print_table1()
    sys.exit(0)

# ---- 2. Star phase 1 ----
b = a = 8192
q = torch.randn(b, H, HD, device=dev, dtype=torch.bfloat16)
ka = torch.randn(a, HKV, HD, device=dev, dtype=torch.bfloat16)
va = torch.randn(a, HKV, HD, device=dev, dtype=torch.bfloat16)
kb = torch.randn(b, HKV, HD, device=dev, dtype=torch.bfloat16)
vb = torch.randn(b, HKV, HD, device=dev, dtype=torch.bfloat16)
apos = torch.arange(a, device=dev, dtype=torch.int32)
bpos = torch.arange(b, device=dev, dtype=torch.int32) + 3 * b  # block 3 at its global positions
o1, o2, o = [torch.empty(b, H, HD, device=dev) for _ in range(3)]
l1, l2, l = [torch.empty(b, H, device=dev) for _ in range(3)]


# the fastest prefill variant of table 1 (by its mean TFLOP/s over the lengths)
best_name, _, best_v = max(VARIANTS, key=lambda v: sum(r[v[0] + "_tflops"] for r in rows1))
best_opts = Opts(2, 1, 128, best_v)
print("phase 1 with", best_name, flush=True)


def phase1_two_partials():
    attn(q, bpos, ka, va, apos, o1, l1, best_opts)
    attn(q, bpos, kb, vb, bpos, o2, l2, best_opts)
    merge([o1, o2], [l1, l2], o, l)


kcat, vcat, pcat = torch.cat([ka, kb]), torch.cat([va, vb]), torch.cat([apos, bpos])
p1 = {"b": b, "a": a, "variant": best_name}
p1["ours_two_partials_merge_ms"] = time_ms(phase1_two_partials)[0]
p1["ours_one_call_concat_kv_ms"] = time_ms(lambda: attn(q, bpos, kcat, vcat, pcat, o, l, best_opts))[0]
p1["ours_attention2_ms"] = time_ms(lambda: attn2(q, bpos, ka, va, apos, kb, vb, bpos, o, l, best_opts))[0]
# sf_attention2 == two partials + merge (the same function)
phase1_two_partials()
o_ref, l_ref = o.clone(), l.clone()
attn2(q, bpos, ka, va, apos, kb, vb, bpos, o, l, best_opts)
p1["attention2_vs_two_partials_rel"] = ((o - o_ref).norm() / o_ref.norm()).item()
qr = torch.randn(2 * b, H, HD, device=dev, dtype=torch.bfloat16)
qs, ks, vs, kx, vx = sdpa_inputs(qr, kcat, vcat)
for name, be in [("sdpa_cudnn_causal_2b_ms", SDPBackend.CUDNN_ATTENTION), ("sdpa_flash_causal_2b_ms", SDPBackend.FLASH_ATTENTION)]:
    t, how = run_sdpa(be, qs, ks, vs, kx, vx, True)
    p1[name] = t[0] if t else None
p1["useful_flops"] = 4.0 * b * a * H * HD + 4.0 * b * b * H * HD / 2
p1["reference_flops"] = 4.0 * (2 * b) ** 2 * H * HD / 2
results["phase1"] = p1
print(json.dumps(p1), flush=True)
del q, ka, va, kb, vb, o1, o2, o, l1, l2, l, kcat, vcat, qr, qs, ks, vs, kx, vx
torch.cuda.empty_cache()

# ---- 3. phase-2 split-KV partial ----
rows3 = []
CALLS = 50
for S in [8192, 16384, 32768]:
    kv_bytes = 2 * S * HKV * HD * 2
    nsets = max(2, math.ceil((1 << 30) / kv_bytes))
    ks_ = [torch.randn(S, HKV, HD, device=dev, dtype=torch.bfloat16) for _ in range(nsets)]
    vs_ = [torch.randn(S, HKV, HD, device=dev, dtype=torch.bfloat16) for _ in range(nsets)]
    kpos = torch.arange(S, device=dev, dtype=torch.int32)
    for T in [1, 4, 16]:
        q = torch.randn(T, H, HD, device=dev, dtype=torch.bfloat16)
        qpos = torch.arange(T, device=dev, dtype=torch.int32) + S + 100
        out = torch.empty(T, H, HD, device=dev)
        lse = torch.empty(T, H, device=dev)
        attn(q, qpos, ks_[0], vs_[0], kpos, out, lse)  # grows the scratch before capture
        torch.cuda.synchronize()

        def loop():
            for i in range(CALLS):
                attn(q, qpos, ks_[i % nsets], vs_[i % nsets], kpos, out, lse)

        how = "graph"
        try:
            g = torch.cuda.CUDAGraph()
            s = torch.cuda.Stream()
            with torch.cuda.stream(s):
                with torch.cuda.graph(g, stream=s):
                    bind_stream()
                    loop()
            bind_stream()
            ms = time_ms(lambda: g.replay())[0] / CALLS
            del g
        except Exception as e:
            bind_stream()
            how = "no graph (" + str(e).splitlines()[0][:50] + ")"
            ms = time_ms(loop)[0] / CALLS
        gbs = kv_bytes / ms / 1e6
        r = {"S": S, "T": T, "us_per_call": ms * 1e3, "GBps": gbs, "frac_of_copy": gbs / copy_gbs, "timing": how}
        rows3.append(r)
        print(json.dumps(r), flush=True)
    del ks_, vs_
    torch.cuda.empty_cache()
results["splitkv"] = rows3

# split-count sweep, 1 row over 32K keys
sweep = []
S = 32768
kv_bytes = 2 * S * HKV * HD * 2
nsets = max(2, math.ceil((1 << 30) / kv_bytes))
ks_ = [torch.randn(S, HKV, HD, device=dev, dtype=torch.bfloat16) for _ in range(nsets)]
vs_ = [torch.randn(S, HKV, HD, device=dev, dtype=torch.bfloat16) for _ in range(nsets)]
kpos = torch.arange(S, device=dev, dtype=torch.int32)
q = torch.randn(1, H, HD, device=dev, dtype=torch.bfloat16)
qpos = torch.tensor([S + 5], device=dev, dtype=torch.int32)
out = torch.empty(1, H, HD, device=dev)
lse = torch.empty(1, H, device=dev)
for ns in [8, 16, 32, 64, 128, 256]:
    o = Opts(2, ns, 16, 0)
    attn(q, qpos, ks_[0], vs_[0], kpos, out, lse, o)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        with torch.cuda.graph(g, stream=s):
            bind_stream()
            for i in range(CALLS):
                attn(q, qpos, ks_[i % nsets], vs_[i % nsets], kpos, out, lse, o)
    bind_stream()
    ms = time_ms(lambda: g.replay())[0] / CALLS
    sweep.append({"splits": ns, "us": ms * 1e3, "GBps": kv_bytes / ms / 1e6})
    del g
print(json.dumps(sweep), flush=True)
results["split_sweep_32K_T1"] = sweep
del ks_, vs_

lib.sf_context_destroy(ctx)
if args.out:
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(results, f, indent=1)


print_table1()
print(f"\n### 2. Star phase 1: block b = 8K over [anchor 8K all visible; own 8K causal] (ms; ours = {p1['variant']})")
print("| ours: 2 partials + merge | ours: sf_attention2 (both key sets, one launch) | ours: 1 call over a concatenated KV | SDPA cuDNN causal 16K | SDPA flash causal 16K | sf_attention2 vs cuDNN | sf_attention2 TFLOP/s (useful) | 2 partials + merge TFLOP/s (useful) |")
print("|---|---|---|---|---|---|---|---|")
ou = p1["ours_two_partials_merge_ms"]
o2 = p1["ours_attention2_ms"]
c = p1["sdpa_cudnn_causal_2b_ms"]
print(f"| {ou:.3f} | {o2:.3f} | {p1['ours_one_call_concat_kv_ms']:.3f} | {fmt(c, '.3f')} | {fmt(p1['sdpa_flash_causal_2b_ms'], '.3f')} | "
      f"{fmt(c / o2 if c else None, '.2f')}x | {p1['useful_flops'] / o2 / 1e9:.0f} | {p1['useful_flops'] / ou / 1e9:.0f} |")
print(f"sf_attention2 vs 2 partials + merge: rel L2 {p1['attention2_vs_two_partials_rel']:.1e}")
print("\nsplit sweep, 1 row over 32K keys: " + ", ".join(f"{r['splits']}: {r['GBps']:.0f} GB/s" for r in sweep))
print(f"\n### 3. phase-2 split-KV partial, 32 q / 8 kv heads, hd 128, all keys visible (copy ceiling {copy_gbs:.0f} GB/s)")
print("| keys S | rows T | us / call | GB/s (K+V read) | of copy ceiling | timing |")
print("|---|---|---|---|---|---|")
for r in rows3:
    print(f"| {r['S']//1024}K | {r['T']} | {r['us_per_call']:.1f} | {r['GBps']:.0f} | {100 * r['frac_of_copy']:.0f}% | {r['timing']} |")
