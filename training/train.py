"""Train the synthetic long-context Llama on packed rows of task documents.

    python3 training/train.py --out DIR [--star-p 0.5] [--time-budget 480 | --steps N] [--rows 8] [--seq 16384]

Each row of --seq tokens packs several documents ([BOS] context, question, answer, EOS, optional extra
question/answer pairs) of log-uniform target length in [--min-len, --seq]. Attention is a flex_attention block
mask: causal inside a document; with probability --star-p a document gets the Star mask instead (its context
tokens see only the anchor = first b tokens of the document and their own block, b drawn per document from
{ceil(N/4), ceil(N/2), ceil(N/8), 512, 1024, 2048} below N; question/answer tokens see everything before them).
RoPE positions restart at 0 in every document.
Loss = mean CE over answer tokens (incl. EOS) + --aux-w * mean CE over the other tokens.
With --induction-gate A, training starts on random-token repeat documents alone and switches to the schedule
once their answer accuracy reaches A (an induction head exists): see docs/accuracy.md for why.
Data come from DataLoader workers (CPU), so the GPU never waits on Python generation.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402
from model import Cfg, Llama, load_hf, param_count, save_hf  # noqa: E402

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
BOS, EOS, PAD = 1, 2, 0
LOG_KINDS = tasks.KINDS + ["recall", "assoc", "repeat"]


class RowStream(torch.utils.data.IterableDataset):
    def __init__(self, tok_path, seq, rows, star_p, min_len, seed, progress=None, curriculum=""):
        self.tok_path, self.seq, self.rows, self.star_p, self.min_len, self.seed = tok_path, seq, rows, star_p, min_len, seed
        self.max_extra = 3
        self.assoc_frac, self.assoc_until = 0.0, 0.0  # set by main() from --assoc-frac / --assoc-until
        self.repeat_frac, self.repeat_until = 0.0, 0.0  # from --repeat-frac / --repeat-until
        self.recall_frac, self.recall_until, self.recall_late = 0.0, 0.0, 0.0  # from --recall-*
        self.kind_weights = [1.0] * len(tasks.KINDS)  # relative weights of the RULER kinds, from --kind-weights
        self.progress = progress  # multiprocessing.Value('d'): training progress in [0, 1], set by the main loop
        # curriculum "p1:len1,p2:len2,...": below progress p_i documents are at most len_i tokens
        self.curriculum = [(float(a), int(b)) for a, b in (x.split(":") for x in curriculum.split(",") if x)]

    def repeat_p(self):
        """Probability that a document is a random-token repeat document (1 while the induction gate is
        closed, which the main loop signals with a negative progress)."""
        prog = self.progress.value if self.progress is not None else 1.0
        if prog < 0:
            return 1.0
        return self.repeat_frac if prog < self.repeat_until else 0.0

    def assoc_p(self):
        """Probability that a document is a random-token associative recall document."""
        prog = self.progress.value if self.progress is not None else 1.0
        return self.assoc_frac if prog < self.assoc_until else 0.0

    def recall_p(self):
        """Probability that a document is a dense key -> value recall document (tasks.build_recall)."""
        prog = self.progress.value if self.progress is not None else 1.0
        return self.recall_frac if prog < self.recall_until else self.recall_late

    def max_len(self):
        prog = self.progress.value if self.progress is not None else 1.0
        for p, n in self.curriculum:
            if prog < p:
                return min(n, self.seq)
        return self.seq

    def __iter__(self):
        from tokenizers import Tokenizer
        wi = torch.utils.data.get_worker_info()
        wid = wi.id if wi else 0
        tok = Tokenizer.from_file(self.tok_path)
        enc = lambda s: tok.encode(s, add_special_tokens=False).ids  # noqa: E731
        count = lambda s: len(enc(s))  # noqa: E731
        rnd = random.Random(self.seed * 1000 + wid)
        counter = [0]

        def next_seed():
            counter[0] += 1
            return (1 << 62) + (self.seed << 48) + (wid << 36) + counter[0]

        while True:
            batch = [self.make_row(rnd, enc, count, next_seed) for _ in range(self.rows)]
            yield {k: torch.from_numpy(np.stack([b[k] for b in batch])) for k in batch[0]}

    def make_document(self, rnd, T, enc, count, next_seed):
        """One document of about T tokens: (kind, [BOS] + context ids, [(question ids, answer ids)])."""
        u = rnd.random()
        if u < self.repeat_p():
            # random-token repeat (training only): random ids, then the same ids again after one cue token; the
            # offset of the copy differs per document, so only content-based induction (find the previous
            # occurrence of the current token, copy its successor) predicts it. The classic setting in which
            # induction heads form; the answer-only lookups (assoc, recall, RULER) plateau without it.
            n = rnd.randint(16, max(16, min(T, 2048) // 2))
            x = [rnd.randrange(3, 4096) for _ in range(n)]
            return "repeat", [BOS] + x, [(x[:1], x[1:] + [EOS])]
        u -= self.repeat_p()
        if u < self.assoc_p():
            # random-token associative recall (training only): the context is random token ids; each question
            # is a 2-token span of it and the answer the 4 tokens that follow (find the key, copy what follows).
            # Answer-only lookups like this plateau on their own (docs/accuracy.md); they build on the induction
            # that the repeat documents form.
            m = max(16, min(T, 1024) - 1)
            ctx = [rnd.randrange(3, 4096) for _ in range(m)]
            qa = []
            for _ in range(max(1, m // 16)):
                j = rnd.randrange(0, m - 6)
                qa.append((ctx[j:j + 2], ctx[j + 2:j + 6] + [EOS]))
            return "assoc", [BOS] + ctx, qa
        if u < self.assoc_p() + self.recall_p():
            n_keys = rnd.randint(2, max(2, min(24, T // 48)))
            inst = tasks.build_recall(T, next_seed(), count, n_keys)
            kind = "recall"
        else:
            kind = rnd.choices(tasks.KINDS, weights=self.kind_weights)[0]
            inst = tasks.build(kind, T, next_seed(), count, n_extra=rnd.randrange(self.max_extra + 1))
        qa = [(enc(q), enc(" " + a) + [EOS]) for q, a in [(inst.question, inst.answer)] + list(inst.extra_qa)]
        return kind, [BOS] + enc(inst.context), qa

    def make_row(self, rnd, enc, count, next_seed):
        L = self.seq
        ids = np.full(L, PAD, np.int32)
        pos = np.zeros(L, np.int32)
        doc = np.full(L, -1, np.int32)
        blk = np.full(L, -1, np.int32)
        anc = np.zeros(L, np.int32)
        cls = np.zeros(L, np.int8)  # class of the token at this index: 0 none, 1 aux, 2 answer
        kid = np.full(L, -1, np.int8)  # document kind (index in LOG_KINDS), for per-kind answer accuracy
        cur, d = 0, 0
        maxT = self.max_len()
        while L - cur >= self.min_len + 120:
            rem = L - cur
            T = int(math.exp(rnd.uniform(math.log(self.min_len), math.log(maxT))))
            T = min(T, rem - 120)
            kind, ctx, qa = self.make_document(rnd, T, enc, count, next_seed)
            aux = 0 if kind in ("assoc", "repeat") else 1  # random tokens: nothing to predict outside the answers
            parts = [(ctx, aux, True)]
            for qi, ai in qa:
                if sum(len(p[0]) for p in parts) + len(qi) + len(ai) > rem:
                    break
                parts += [(qi, aux, False), (ai, 2, False)]
            if len(parts) == 1:
                break
            N = len(ctx)
            star = rnd.random() < self.star_p
            if star:
                opts = [b for b in (-(-N // 4), -(-N // 2), -(-N // 8), 512, 1024, 2048) if 64 <= b < N]
                b = rnd.choice(opts) if opts else N
            p = 0
            for toks, c, is_ctx in parts:
                n = len(toks)
                sl = slice(cur, cur + n)
                ids[sl] = toks
                pos[sl] = np.arange(p, p + n)
                doc[sl] = d
                cls[sl] = c
                kid[sl] = LOG_KINDS.index(kind)
                if is_ctx and star:
                    blk[sl] = np.arange(n) // b
                    anc[sl] = b
                cur += n
                p += n
            cls[cur - p] = 0  # BOS is never predicted
            d += 1
        doc[cur:] = d  # padding: its own document
        # targets: next token within the same document
        tgt = np.full(L, -100, np.int64)
        same = doc[1:] == doc[:-1]
        tgt[:-1] = np.where(same & (cls[1:] > 0), ids[1:], -100)
        tcls = np.zeros(L, np.int8)
        tcls[:-1] = np.where(same, cls[1:], 0)
        return {"ids": ids, "pos": pos, "doc": doc, "blk": blk, "anc": anc, "tgt": tgt, "tcls": tcls, "kid": kid}


def answer_accuracy_by_kind(hit, tcls, kid):
    """Answer-token accuracy per document kind on this batch ({kind: accuracy}); the kind of a target is the
    kind of the token it predicts, i.e. kid shifted by one."""
    ans = tcls.view(-1) == 2
    k = torch.roll(kid.view(-1).long(), -1)  # a row's last token never predicts (target -100), so roll is safe
    out = {}
    for i, name in enumerate(LOG_KINDS):
        sel = ans & (k == i)
        n = int(sel.sum())
        if n:
            out[name] = round(float(hit.view(-1)[sel].float().mean()), 3)
    return out


def mask_mod_for(doc, pos, blk, anc):
    def mask_mod(b, h, q, kv):
        same = doc[b, q] == doc[b, kv]
        causal = q >= kv
        bq = blk[b, q]
        star_ok = (bq < 0) | (bq == blk[b, kv]) | (pos[b, kv] < anc[b, q])
        return same & causal & star_ok
    return mask_mod


def dense_mask(doc, pos, blk, anc):
    """mask_mod_for's mask, materialised by evaluating it on broadcast indices: bool [B, 1, L, L] (True = attend)."""
    B, L = doc.shape
    ar = torch.arange(L, device=doc.device)
    rows = torch.arange(B, device=doc.device)[:, None, None]
    return mask_mod_for(doc, pos, blk, anc)(rows, 0, ar[None, :, None], ar[None, None, :])[:, None]


def make_block_mask(doc, pos, blk, anc, bs=128, mask_mod=None):
    """BlockMask built eagerly (no compile): the dense mask of one row at a time (bounded memory), reduced to
    128x128 tiles (empty / full / partial); partial tiles are refined in the kernel by the same mask_mod."""
    from torch.nn.attention.flex_attention import BlockMask
    B, L = doc.shape
    nb = L // bs
    partial_l, full_l = [], []
    for r in range(B):
        m = dense_mask(doc[r:r + 1], pos[r:r + 1], blk[r:r + 1], anc[r:r + 1])[0, 0]  # [L, L]
        mb = m.view(nb, bs, nb, bs)
        anyb = mb.any(dim=3).any(dim=1)
        allb = mb.all(dim=3).all(dim=1)
        partial_l.append(anyb & ~allb)
        full_l.append(allb)
    partial = torch.stack(partial_l)[:, None]  # [B, 1, nb, nb]
    full = torch.stack(full_l)[:, None]

    def idx(x):
        num = x.sum(-1).to(torch.int32)
        ind = torch.argsort((~x).to(torch.int8), dim=-1, stable=True).to(torch.int32)
        return num, ind

    kv_num, kv_ind = idx(partial)
    f_num, f_ind = idx(full)
    return BlockMask.from_kv_blocks(kv_num, kv_ind, f_num, f_ind, BLOCK_SIZE=bs,
                                    mask_mod=mask_mod or mask_mod_for(doc, pos, blk, anc),
                                    seq_lengths=(L, L))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer", default=os.path.join(os.path.dirname(__file__), "..", "models",
                                                        "starflink-synth-14m", "tokenizer.json"))
    ap.add_argument("--star-p", type=float, default=0.0)
    ap.add_argument("--time-budget", type=float, default=0, help="seconds of training (0: use --steps)")
    ap.add_argument("--deadline", type=float, default=0, help="absolute unix time to stop training")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--seq", type=int, default=16384)
    ap.add_argument("--min-len", type=int, default=256)
    ap.add_argument("--curriculum", default="0.35:2048,0.5:4096,0.65:8192",
                    help="progress:max_doc_len steps; documents are log-uniform in [min-len, max]")
    ap.add_argument("--assoc-frac", type=float, default=0.0,
                    help="share of random-token associative recall documents while progress < --assoc-until")
    ap.add_argument("--assoc-until", type=float, default=0.0)
    ap.add_argument("--repeat-frac", type=float, default=0.0,
                    help="share of random-token repeat documents while progress < --repeat-until")
    ap.add_argument("--repeat-until", type=float, default=0.0)
    ap.add_argument("--recall-frac", type=float, default=0.0,
                    help="share of documents that are dense recall documents while progress < --recall-until")
    ap.add_argument("--recall-until", type=float, default=0.0)
    ap.add_argument("--recall-late", type=float, default=0.0, help="share of recall documents after that")
    ap.add_argument("--kind-weights", default="",
                    help="kind:weight,... relative weights of the RULER task kinds (default 1 each), e.g. "
                         "niah_multivalue:2,vt:2 to spend more of the budget on the hard ones")
    ap.add_argument("--induction-gate", type=float, default=0.0,
                    help="if > 0: repeat documents only until their answer accuracy reaches this at two logging "
                         "steps in a row; the schedule (curriculum, document mix, cosine) then runs over the rest")
    ap.add_argument("--induction-gate-max", type=float, default=0.5,
                    help="open the induction gate anyway after this share of the budget")
    ap.add_argument("--init", default="", help="start from these HF weights (a fine-tuning stage) instead of random")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--dim", type=int, default=384, help="model width (heads of 64; a third as many KV heads)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--aux-w", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--no-compile", action="store_true", help="(CPU smoke tests) eager flex attention, no compile")
    ap.add_argument("--attention", choices=["flex", "dense"], default=None,
                    help="flex: flex_attention with a tiled block mask (default on CUDA); dense: SDPA with the "
                         "materialised mask (default on CPU, where flex_attention has no backward)")
    ap.add_argument("--save-every", type=float, default=150, help="seconds between interim HF saves")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    t_start = time.time()
    dev = args.device
    torch.backends.cuda.matmul.allow_tf32 = True
    heads = args.dim // 64
    cfg = Cfg(max_pos=args.seq, n_layers=args.layers, dim=args.dim, n_heads=heads, n_kv_heads=max(1, heads // 3),
              ffn_dim=args.dim * 8 // 3 // 64 * 64)
    if args.init:
        model = load_hf(args.init, device=dev)  # weights only: the optimizer starts fresh (with --warmup)
        cfg = model.c
        cfg.max_pos = args.seq  # the config saved with these weights says what they were trained at
    else:
        model = Llama(cfg).to(dev)
    print(f"params {param_count(model) / 1e6:.2f}M", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1, fused=(dev == "cuda"))

    import multiprocessing as mp
    progress = mp.Value("d", -1.0 if args.induction_gate > 0 else 0.0, lock=False)  # < 0: induction gate closed
    ds = RowStream(os.path.abspath(args.tokenizer), args.seq, args.rows, args.star_p, args.min_len, args.seed,
                   progress, args.curriculum)
    ds.assoc_frac, ds.assoc_until = args.assoc_frac, args.assoc_until
    ds.repeat_frac, ds.repeat_until = args.repeat_frac, args.repeat_until
    ds.recall_frac, ds.recall_until, ds.recall_late = args.recall_frac, args.recall_until, args.recall_late
    for item in filter(None, args.kind_weights.split(",")):
        kind, weight = item.split(":")
        ds.kind_weights[tasks.KINDS.index(kind)] = float(weight)
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=args.workers, prefetch_factor=4,
                                     pin_memory=(dev == "cuda"), persistent_workers=True)

    def loss_fn(ids, pos, bm, tgt, tcls):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(dev == "cuda")):
            h = model.forward_train(ids, pos, bm)
            logits = model.logits(h)
        logits = logits.float().view(-1, cfg.vocab_size)
        t = tgt.view(-1)
        ce = F.cross_entropy(logits, t, reduction="none", ignore_index=-100)
        c = tcls.view(-1)
        ans, aux = (c == 2).float(), (c == 1).float()
        l_ans = (ce * ans).sum() / ans.sum().clamp(min=1)
        l_aux = (ce * aux).sum() / aux.sum().clamp(min=1)
        hit = (logits.argmax(-1) == t) & (c == 2)
        acc = hit.float().sum() / ans.sum().clamp(min=1)
        return l_ans + args.aux_w * l_aux, l_ans, l_aux, acc, hit

    closs = loss_fn if args.no_compile else torch.compile(loss_fn)
    deadline = args.deadline or (t_start + args.time_budget if args.time_budget else 0)
    log = open(os.path.join(args.out, "loss_log.jsonl"), "w")
    step, t_train0, last_save, tokens = 0, None, time.time(), 0
    mbuf = {k: torch.zeros(args.rows, args.seq, dtype=torch.int32, device=dev) for k in ("doc", "pos", "blk", "anc")}
    mask_mod = mask_mod_for(mbuf["doc"], mbuf["pos"], mbuf["blk"], mbuf["anc"])
    attention = args.attention or ("flex" if dev == "cuda" else "dense")
    it = iter(dl)
    gated, gate_hits, schedule_start, gate_opened_at = args.induction_gate > 0, 0, None, None
    print(f"setup {time.time() - t_start:.1f}s", flush=True)
    while True:
        tb = time.time()
        b = next(it)
        if step < 3:
            print(f"step {step}: batch wait {time.time() - tb:.2f}s", flush=True)
        b = {k: v.to(dev, non_blocking=True) for k, v in b.items()}
        tm = time.time()
        for k in mbuf:  # fixed buffers: the same mask_mod closure every step, so compile never re-traces it
            mbuf[k].copy_(b[k])
        if attention == "dense":
            bm = dense_mask(mbuf["doc"], mbuf["pos"], mbuf["blk"], mbuf["anc"])
        else:
            bm = make_block_mask(mbuf["doc"], mbuf["pos"], mbuf["blk"], mbuf["anc"], mask_mod=mask_mod)
        if step < 3 and dev == "cuda":
            torch.cuda.synchronize()
            print(f"step {step}: block mask {time.time() - tm:.2f}s (t={time.time() - t_start:.1f})", flush=True)
        if t_train0 is None:
            t_train0 = time.time()
        if deadline:
            budget_used = (time.time() - t_train0) / max(1.0, deadline - t_train0)
        else:
            budget_used = step / args.steps
        if budget_used >= 1.0:
            break
        if gated and budget_used >= args.induction_gate_max:
            gated = False
            print(f"induction gate opened by the cap at step {step}", flush=True)
        if gated:
            prog = 0.0
            progress.value = -1.0  # workers: repeat documents only
        else:
            if schedule_start is None:
                schedule_start = budget_used
                gate_opened_at = step if args.induction_gate > 0 else None
            prog = (budget_used - schedule_start) / (1.0 - schedule_start)
            progress.value = prog
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(prog, 1.0))))
        for g in opt.param_groups:
            g["lr"] = lr
        loss, l_ans, l_aux, acc, hit = closs(b["ids"].long(), mbuf["pos"], bm, b["tgt"], b["tcls"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int(b["ids"].numel())
        step += 1
        if step <= 3 and dev == "cuda":
            torch.cuda.synchronize()
            print(f"step {step} done t={time.time() - t_start:.1f}", flush=True)
        if step % 10 == 0 or step == 1:
            rec = {"step": step, "t": round(time.time() - t_start, 1), "lr": round(lr, 6), "loss": round(loss.item(), 4),
                   "ans_loss": round(l_ans.item(), 4), "aux_loss": round(l_aux.item(), 4),
                   "ans_tok_acc": round(acc.item(), 4), "grad_norm": round(gn.item(), 3),
                   "tok_per_s": round(tokens / max(1e-6, time.time() - t_train0)), "max_doc_len": ds.max_len(),
                   "ans_acc_by_kind": answer_accuracy_by_kind(hit, b["tcls"], b["kid"])}
            if gated:
                gate_hits = gate_hits + 1 if rec["ans_acc_by_kind"].get("repeat", 0) >= args.induction_gate else 0
                if gate_hits >= 2:
                    gated = False
                    print(f"induction gate opened at step {step}", flush=True)
            rec["induction_gate_open"] = not gated
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if step % 50 == 0 or step == 1:
                print(json.dumps(rec), flush=True)
        if time.time() - last_save > args.save_every:
            save_hf(model, os.path.join(args.out, "hf"))
            last_save = time.time()
    save_hf(model, os.path.join(args.out, "hf"))
    meta = {"steps": step, "tokens": tokens, "train_seconds": round(time.time() - t_train0, 1),
            "total_seconds": round(time.time() - t_start, 1), "induction_gate_opened_at_step": gate_opened_at,
            "args": vars(args), "params": param_count(model),
            "gpu": torch.cuda.get_device_name() if dev == "cuda" else "cpu"}
    json.dump(meta, open(os.path.join(args.out, "train_meta.json"), "w"), indent=2)
    print("done", json.dumps(meta), flush=True)
    os._exit(0)  # don't wait on persistent workers


if __name__ == "__main__":
    main()
