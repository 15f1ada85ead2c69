"""Does the GPU training path compute the gradients it should? (Run this first on the H200.)

    python3 training/check_attention_grads.py [--seq 4096] [--rows 2]

Three GPU runs on 2024-11-29 never formed an induction head (random-token repeat documents stayed at chance for
1,700 steps) while the same model code and data, trained on CPU through a dense SDPA mask, learns them in
300-400 steps (docs/accuracy.md). This script takes one packed batch from train.RowStream (repeat, recall and
RULER documents, half of them with the Star mask) and compares, for a random 8 x 384 model:

  reference   dense SDPA mask, float32, eager
  flex-eager  flex_attention with the tiled block mask (train.make_block_mask), float32, eager
  flex-train  exactly train.py's step: torch.compile(loss) + flex_attention + bf16 autocast

It prints the loss of each and, per parameter tensor, the cosine similarity and the relative norm difference of
the gradients against the reference. Expect ~1e-6 (flex-eager) and cosine > 0.99 (flex-train, bf16); anything
else is the bug.
"""
import argparse
import os
import random
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Cfg, Llama  # noqa: E402
from train import RowStream, dense_mask, make_block_mask, mask_mod_for  # noqa: E402

TOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "starflink-synth-14m", "tokenizer.json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--rows", type=int, default=2)
    ap.add_argument("--device", default="cuda", help="cpu: only the reference runs (flex_attention has no CPU "
                                                      "backward); a smoke test of this script")
    args = ap.parse_args()
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(TOK)
    enc = lambda s: tok.encode(s, add_special_tokens=False).ids  # noqa: E731
    ds = RowStream(TOK, args.seq, args.rows, 0.5, 256, 7)
    ds.repeat_frac, ds.repeat_until = 0.4, 2.0
    ds.recall_frac, ds.recall_until = 0.3, 2.0
    rnd, counter = random.Random(0), [0]

    def next_seed():
        counter[0] += 1
        return (1 << 62) + counter[0]

    rows = [ds.make_row(rnd, enc, lambda s: len(enc(s)), next_seed) for _ in range(args.rows)]
    b = {k: torch.from_numpy(np.stack([r[k] for r in rows])).to(args.device) for k in rows[0]}
    torch.manual_seed(0)
    model = Llama(Cfg(max_pos=args.seq)).to(args.device)
    doc, pos, blk, anc = (b[k] for k in ("doc", "pos", "blk", "anc"))

    def loss_of(mask, bf16):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16 and args.device == "cuda"):
            logits = model.logits(model.forward_train(b["ids"].long(), pos, mask))
        ce = F.cross_entropy(logits.float().view(-1, model.c.vocab_size), b["tgt"].view(-1), reduction="none",
                             ignore_index=-100)
        c = b["tcls"].view(-1)
        ans, aux = (c == 2).float(), (c == 1).float()
        return (ce * ans).sum() / ans.sum() + 0.1 * (ce * aux).sum() / aux.sum()

    def grads(fn, *a):
        model.zero_grad(set_to_none=True)
        loss = fn(*a)
        loss.backward()
        return loss.item(), {n: p.grad.detach().float().clone() for n, p in model.named_parameters()}

    runs = {"reference": grads(loss_of, dense_mask(doc, pos, blk, anc), False)}
    if args.device == "cuda":
        block = make_block_mask(doc, pos, blk, anc, mask_mod=mask_mod_for(doc, pos, blk, anc))
        runs["flex-eager"] = grads(loss_of, block, False)
        runs["flex-train"] = grads(torch.compile(loss_of), block, True)
    ref_loss, ref = runs["reference"]
    print(f"answer targets {int((b['tcls'] == 2).sum())}, aux targets {int((b['tcls'] == 1).sum())}")
    for name, (loss, g) in runs.items():
        cos = {n: F.cosine_similarity(g[n].flatten(), ref[n].flatten(), dim=0).item() for n in ref}
        rel = {n: ((g[n] - ref[n]).norm() / ref[n].norm().clamp(min=1e-30)).item() for n in ref}
        worst = min(cos, key=cos.get)
        print(f"{name:11s} loss {loss:.6f} (ref {ref_loss:.6f})  min grad cosine {cos[worst]:.5f} ({worst})  "
              f"max rel diff {max(rel.values()):.2e}")
        for n in list(ref)[:3] + [n for n in ref if "layers.7." in n][:3]:
            print(f"    {n:40s} cos {cos[n]:.5f} rel {rel[n]:.2e}")


if __name__ == "__main__":
    main()
