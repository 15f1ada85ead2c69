"""CPU learnability probe (no GPU): does a tiny model learn the retrieval tasks on short documents at all?

    python3 training/probe_cpu.py --out /tmp/probe.jsonl [--minutes 20] [--kinds niah_single niah_multikey]

Same data generator and loss as train.py (answer CE + 0.1 x other-token CE), global causal attention through
the SDPA path of model.py, one document per row, right-padded. Logs answer-token accuracy and exact match on
the training batch every 25 steps.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402
from model import Cfg, Llama  # noqa: E402

TOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "starflink-synth-14m", "tokenizer.json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--kinds", nargs="+", default=["niah_single", "niah_multikey", "qa"])
    ap.add_argument("--len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--copy-frac", type=float, default=0.0,
                    help="fraction of rows that are a dense copy task (random numbers, then repeat them)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(TOK)
    enc = lambda s: tok.encode(s, add_special_tokens=False).ids  # noqa: E731
    c = Cfg(n_layers=args.layers, dim=args.dim, n_heads=args.dim // 32, n_kv_heads=max(1, args.dim // 64),
            head_dim=32, ffn_dim=3 * args.dim)
    m = Llama(c)
    opt = torch.optim.AdamW(m.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    t0, step, seed = time.time(), 0, 1 << 62
    log = open(args.out, "w")
    L = args.len + 64
    while time.time() - t0 < args.minutes * 60:
        ids = torch.zeros(args.batch, L, dtype=torch.long)
        tgt = torch.full((args.batch, L), -100)
        cls = torch.zeros(args.batch, L)
        spans = []
        for r in range(args.batch):
            seed += 1
            if r < args.copy_frac * args.batch:
                rng = tasks.SplitMix64(seed)
                nums = " ".join(rng.digits(5) for _ in range(args.len // 14))
                ctx, q, a = [1] + enc("Numbers: " + nums + "."), enc("\nRepeat the numbers:"), enc(" " + nums) + [2]
            else:
                inst = tasks.build(args.kinds[r % len(args.kinds)], args.len, seed, lambda s: len(enc(s)))
                ctx, q, a = [1] + enc(inst.context), enc(inst.question), enc(" " + inst.answer) + [2]
            seq = (ctx + q + a)[:L]
            ids[r, :len(seq)] = torch.tensor(seq)
            s0 = len(ctx) + len(q)
            tgt[r, :len(seq) - 1] = torch.tensor(seq[1:])
            cls[r, :len(seq) - 1] = 0.1
            cls[r, s0 - 1:s0 - 1 + len(a)] = 1.0
            spans.append((s0 - 1, len(a)))
        h, _ = m.encode(ids, torch.arange(L)[None].expand(args.batch, L))
        logits = m.logits(h)
        ce = F.cross_entropy(logits.reshape(-1, c.vocab_size), tgt.reshape(-1), reduction="none",
                             ignore_index=-100).view(args.batch, L)
        ans = (cls == 1.0).float()
        aux = ((cls > 0) & (cls < 1)).float()
        l_ans = (ce * ans).sum() / ans.sum()
        loss = l_ans + 0.1 * (ce * aux).sum() / aux.sum()
        lr = args.lr * min(1.0, (step + 1) / 100)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 25 == 0:
            with torch.no_grad():
                pred = logits.argmax(-1)
                ok = (pred == tgt) | (ans == 0)
                task_rows = [r for r in range(args.batch) if r >= args.copy_frac * args.batch]
                em = sum(bool(ok[r, spans[r][0]:spans[r][0] + spans[r][1]].all()) for r in task_rows) / len(task_rows)
                tr = torch.zeros(args.batch, 1)
                tr[task_rows] = 1
                acc = ((pred == tgt).float() * ans * tr).sum() / (ans * tr).sum()
            rec = {"step": step, "t": round(time.time() - t0), "ans_loss": round(l_ans.item(), 3),
                   "ans_tok_acc": round(acc.item(), 3), "batch_em": em}
            log.write(json.dumps(rec) + "\n")
            log.flush()


if __name__ == "__main__":
    main()
