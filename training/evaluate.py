"""Evaluate a model in global attention and in Star Attention, exactly per the Starflink contract.

    python3 training/evaluate.py --model DIR --out results.json [--lengths 2048 4096 8192 16384] [--n 40]
                                 [--fixed-blocks 1024] [--gen-check 5]

Context tokens = [BOS] + tok(context) (length N). Star phase 1: block 0 alone; block i>0 as [anchor; block i],
anchor = first a = b tokens at positions 0..a-1, block at its global positions; keep only the block's KV.
Phase 2: question (positions N, N+1, ...) and answer tokens attend to all context KV (every block) plus their
own KV causally. One softmax over the concatenated KV equals the paper's log-sum-exp merge of per-block partials
exactly (same set of keys, same scores), so phase 2 is computed as one SDPA call over [all block KV; own KV].
Global = causal attention over context + question.

Exact match is computed by teacher forcing: the greedy answer equals the gold answer token sequence (then EOS)
iff at every answer position the argmax equals the gold token. (--gen-check runs real greedy decoding with a
KV cache on a subset, decodes, normalizes per docs/tasks.md and reports the agreement.)
Computation: fp32 weights (from the BF16 files) and fp32 activations; TF32 matmuls unless --no-tf32.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from multiprocessing import Pool

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402
from model import load_hf  # noqa: E402

BOS, EOS = 1, 2
_TOK = None


def _init(tok_path):
    global _TOK
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer
    _TOK = Tokenizer.from_file(tok_path)


def _enc(s):
    return _TOK.encode(s, add_special_tokens=False).ids


def make_instance(job):
    kind, T, i = job
    inst = tasks.build(kind, T, tasks.eval_seed(kind, T, i), lambda s: len(_enc(s)))
    return {"kind": kind, "T": T, "i": i, "ctx": [BOS] + _enc(inst.context), "q": _enc(inst.question),
            "a": _enc(" " + inst.answer) + [EOS], "answer": inst.answer}


@torch.no_grad()
def context_kv_global(model, ctx):
    dev = next(model.parameters()).device
    ids = torch.tensor([ctx], device=dev)
    pos = torch.arange(len(ctx), device=dev)[None]
    _, kv = model.encode(ids, pos)
    return kv


@torch.no_grad()
def context_kv_star(model, ctx, b, a=None):
    """Phase 1 of Star Attention. Returns per-layer (k, v) [1, Hkv, N, D] in context order."""
    a = b if a is None else a
    dev = next(model.parameters()).device
    N = len(ctx)
    t = torch.tensor(ctx, device=dev)
    nb = math.ceil(N / b)
    _, kv0 = model.encode(t[None, :min(b, N)], torch.arange(min(b, N), device=dev)[None])
    if nb == 1:
        return kv0
    # blocks 1..nb-1 in one batch: [anchor ; block i], last block right-padded with token 0 (causal: padding
    # after the real tokens cannot change them) and trimmed
    ids = torch.zeros(nb - 1, a + b, dtype=torch.long, device=dev)
    pos = torch.zeros(nb - 1, a + b, dtype=torch.long, device=dev)
    ids[:, :a] = t[:a]
    pos[:, :a] = torch.arange(a, device=dev)
    lens = []
    for i in range(1, nb):
        s, e = i * b, min(N, (i + 1) * b)
        ids[i - 1, a:a + e - s] = t[s:e]
        pos[i - 1, a:] = torch.arange(s, s + b, device=dev)
        lens.append(e - s)
    _, kvb = model.encode(ids, pos)
    out = []
    for (k0, v0), (k, v) in zip(kv0, kvb):
        ks, vs = [k0], [v0]
        for i in range(nb - 1):
            ks.append(k[i:i + 1, :, a:a + lens[i]])
            vs.append(v[i:i + 1, :, a:a + lens[i]])
        out.append((torch.cat(ks, 2), torch.cat(vs, 2)))
    return out


@torch.no_grad()
def phase2_teacher(model, kv, N, q, ans):
    """Question + answer (teacher-forced) over the context KV. Returns (all correct, n correct prefix, argmaxes)."""
    dev = next(model.parameters()).device
    inp = q + ans[:-1]
    ids = torch.tensor([inp], device=dev)
    pos = torch.arange(N, N + len(inp), device=dev)[None]
    h, _ = model.encode(ids, pos, past=kv)
    pred = model.logits(h[:, len(q) - 1:]).argmax(-1)[0].tolist()
    ok = [p == g for p, g in zip(pred, ans)]
    prefix = next((j for j, o in enumerate(ok) if not o), len(ok))
    return all(ok), prefix, pred


@torch.no_grad()
def phase2_generate(model, kv, N, q, max_new):
    dev = next(model.parameters()).device
    ids = torch.tensor([q], device=dev)
    pos = torch.arange(N, N + len(q), device=dev)[None]
    h, own = model.encode(ids, pos, past=kv)
    out, p = [], N + len(q)
    nxt = int(model.logits(h[:, -1]).argmax(-1))
    while nxt != EOS and len(out) < max_new:
        out.append(nxt)
        past = [(torch.cat([k, ok], 2), torch.cat([v, ov], 2)) for (k, v), (ok, ov) in zip(kv, own)]
        h, new = model.encode(torch.tensor([[nxt]], device=dev), torch.tensor([[p]], device=dev), past=past)
        own = [(torch.cat([ok, nk], 2), torch.cat([ov, nv], 2)) for (ok, ov), (nk, nv) in zip(own, new)]
        p += 1
        nxt = int(model.logits(h[:, -1]).argmax(-1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lengths", type=int, nargs="+", default=[2048, 4096, 8192, 16384])
    ap.add_argument("--kinds", nargs="+", default=tasks.KINDS)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--fixed-blocks", type=int, nargs="*", default=[1024])
    ap.add_argument("--gen-check", type=int, default=0, help="greedy-decode this many per kind at --gen-len")
    ap.add_argument("--gen-len", type=int, default=8192)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--no-tf32", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--time-limit", type=float, default=1e9, help="stop (keeping partial results) after this many s")
    args = ap.parse_args()
    t0 = time.time()
    torch.backends.cuda.matmul.allow_tf32 = not args.no_tf32
    torch.backends.cudnn.allow_tf32 = not args.no_tf32
    model = load_hf(args.model, device=args.device, dtype=torch.float32)
    tok_path = os.path.join(args.model, "tokenizer.json")
    jobs = [(k, T, i) for i in range(args.n) for T in args.lengths for k in args.kinds]  # i-major: a time stop keeps every cell
    with Pool(args.procs, initializer=_init, initargs=(tok_path,)) as pool:
        insts = pool.map(make_instance, jobs, chunksize=4)
    print(f"{len(insts)} instances in {time.time() - t0:.1f}s", flush=True)
    _init(tok_path)

    modes = ["global", "star_quarter"] + [f"star_b{b}" for b in args.fixed_blocks]
    res = {}  # (mode, kind, T) -> list of per-example records
    gen = []
    stopped = False
    for inst in insts:
        if time.time() - t0 > args.time_limit:
            stopped = True
            break
        N = len(inst["ctx"])
        for mode in modes:
            if mode == "global":
                kv = context_kv_global(model, inst["ctx"])
            elif mode == "star_quarter":
                kv = context_kv_star(model, inst["ctx"], math.ceil(N / 4))
            else:
                kv = context_kv_star(model, inst["ctx"], int(mode[6:]))
            ok, prefix, pred = phase2_teacher(model, kv, N, inst["q"], inst["a"])
            res.setdefault((mode, inst["kind"], inst["T"]), []).append(
                {"i": inst["i"], "N": N, "em": ok, "prefix": prefix})
            if (args.gen_check and inst["T"] == args.gen_len and inst["i"] < args.gen_check
                    and mode in ("global", "star_quarter")):
                out = phase2_generate(model, kv, N, inst["q"], len(inst["a"]) + 8)
                text = _TOK.decode(out)
                gem = tasks.normalize(inst["kind"], text) == tasks.normalize(inst["kind"], inst["answer"])
                gen.append({"mode": mode, "kind": inst["kind"], "i": inst["i"], "text": text,
                            "answer": inst["answer"], "gen_em": gem, "tf_em": ok})
    table = {}
    for (mode, kind, T), recs in res.items():
        table.setdefault(mode, {}).setdefault(kind, {})[str(T)] = {
            "em": sum(r["em"] for r in recs) / len(recs), "n": len(recs),
            "mean_prefix_tokens": sum(r["prefix"] for r in recs) / len(recs)}
    summary = {}
    for mode in table:
        for T in args.lengths:
            vals = [table[mode][k][str(T)]["em"] for k in table[mode] if str(T) in table[mode][k]]
            if vals:
                summary.setdefault(mode, {})[str(T)] = sum(vals) / len(vals)
    out = {"model": os.path.abspath(args.model), "modes": modes, "lengths": args.lengths, "n_per_cell": args.n,
           "tf32": not args.no_tf32, "stopped_early": stopped, "seconds": round(time.time() - t0, 1),
           "table": table, "mean_over_tasks": summary, "gen_check": gen,
           "gen_check_agreement": (sum(g["gen_em"] == g["tf_em"] for g in gen) / len(gen)) if gen else None}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    # short table to stdout
    for mode in modes:
        if mode not in table:
            continue
        print(mode)
        for kind in args.kinds:
            row = table[mode].get(kind, {})
            print(f"  {kind:16s}" + " ".join(f"{row[str(T)]['em'] * 100:6.1f}" if str(T) in row else "     -"
                                           for T in args.lengths))
        print(f"  {'mean':16s}" + " ".join(f"{summary[mode].get(str(T), float('nan')) * 100:6.1f}"
                                           for T in args.lengths))
    print("gen-check agreement", out["gen_check_agreement"], "seconds", out["seconds"], flush=True)


if __name__ == "__main__":
    main()
