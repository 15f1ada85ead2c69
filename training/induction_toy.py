"""Toy induction check against model.py alone (no tokenizer, no packing): how fast does a 2 x 128 Llama learn
to copy? The numbers in docs/accuracy.md ("over a 4,093 / 60 / 10-token alphabet") come from this script.

    python3 training/induction_toy.py --alphabet 4093 [--task repeat|assoc] [--steps 1200]

repeat: 32 rows of n random tokens (n drawn per batch in [16, 64)) followed by the same n tokens again; loss and
        accuracy on the second copy. The offset changes every batch, so only content-based induction solves it.
assoc:  a 64-token random context, then 8 questions (a 2-token span of the context) each answered by the 4
        tokens that follow it and EOS; loss and accuracy on the answers only (the answer-only lookup that
        train.py's `assoc` documents use).
Prints step, loss, accuracy every 100 steps.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Cfg, Llama  # noqa: E402

EOS = 2


def repeat_batch(rows, alphabet):
    n = int(torch.randint(16, 64, ()).item())
    x = torch.randint(3, 3 + alphabet, (rows, n))
    ids = torch.cat([x, x], 1)
    tgt = torch.full_like(ids, -100)
    tgt[:, n:-1] = ids[:, n + 1:]  # position i predicts token i + 1 inside the copy
    return ids, tgt


def assoc_batch(rows, alphabet, context=64, questions=8):
    seqs, tgts = [], []
    for _ in range(rows):
        ctx = torch.randint(3, 3 + alphabet, (context,)).tolist()
        seq, tgt = [1] + ctx, [-100] * (context + 1)
        for j in torch.randint(0, context - 6, (questions,)).tolist():
            answer = ctx[j + 2:j + 6] + [EOS]
            seq += ctx[j:j + 2] + answer
            tgt += [-100] + answer + [-100]  # the second key token predicts answer[0], ...; EOS predicts nothing
        seqs.append(seq)
        tgts.append(tgt)
    return torch.tensor(seqs), torch.tensor(tgts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--alphabet", type=int, default=4093, help="number of distinct random tokens")
    ap.add_argument("--task", choices=["repeat", "assoc"], default="repeat")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    vocab = 3 + args.alphabet
    m = Llama(Cfg(vocab_size=vocab, n_layers=2, dim=128, n_heads=2, n_kv_heads=1, head_dim=64, ffn_dim=256))
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        ids, tgt = repeat_batch(32, args.alphabet) if args.task == "repeat" else assoc_batch(32, args.alphabet)
        B, L = ids.shape
        causal = torch.ones(L, L, dtype=torch.bool).tril()[None, None].expand(B, 1, L, L)
        logits = m.logits(m.forward_train(ids, torch.arange(L)[None].expand(B, -1), causal))
        loss = F.cross_entropy(logits.reshape(-1, vocab), tgt.reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            sel = tgt != -100
            acc = (logits.argmax(-1)[sel] == tgt[sel]).float().mean().item()
            print(f"step {step} loss {loss.item():.3f} acc {acc:.3f} t {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
