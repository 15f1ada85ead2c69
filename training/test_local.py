"""CPU sanity checks (no GPU needed):

1. the training Star mask (flex_attention, packed rows) gives exactly the logits of Star inference
   (evaluate.context_kv_star + phase 2) on the question/answer tokens, and the global mask those of global;
2. our model matches HF LlamaForCausalLM on a random init after save_hf/load;
3. the row packer produces consistent targets;
4. flex_attention with the tiled block mask (eager and torch.compile) equals the dense mask on packed rows.

    python3 training/test_local.py
"""
import math
import os
import random
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402
from evaluate import context_kv_global, context_kv_star  # noqa: E402
from model import Cfg, Llama, load_hf, save_hf  # noqa: E402
from train import RowStream, dense_mask, make_block_mask, mask_mod_for  # noqa: E402

TOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "starflink-synth-14m", "tokenizer.json")


def main():
    from tokenizers import Tokenizer
    from torch.nn.attention.flex_attention import create_block_mask
    torch.manual_seed(0)
    tok = Tokenizer.from_file(TOK)
    enc = lambda s: tok.encode(s, add_special_tokens=False).ids  # noqa: E731
    c = Cfg(n_layers=2, dim=128, n_heads=4, n_kv_heads=2, head_dim=32, ffn_dim=256)
    m = Llama(c).eval()

    # one row with two docs: doc 0 global, doc 1 star with b=37 (odd size: last block short)
    inst0 = tasks.build("niah_single", 150, 11, lambda s: len(enc(s)))
    inst1 = tasks.build("vt", 300, 12, lambda s: len(enc(s)))
    rows, meta = [], []
    for inst, b in ((inst0, None), (inst1, 37)):
        ctx = [1] + enc(inst.context)
        qa = enc(inst.question) + enc(" " + inst.answer) + [2]
        meta.append((ctx, qa, b))
    L = sum(len(a) + len(q) for a, q, _ in meta) + 5
    ids = torch.zeros(1, L, dtype=torch.long)
    pos = torch.zeros(1, L, dtype=torch.int32)
    doc = torch.full((1, L), 2, dtype=torch.int32)
    blk = torch.full((1, L), -1, dtype=torch.int32)
    anc = torch.zeros(1, L, dtype=torch.int32)
    cur = 0
    for d, (ctx, qa, b) in enumerate(meta):
        n = len(ctx) + len(qa)
        ids[0, cur:cur + n] = torch.tensor(ctx + qa)
        pos[0, cur:cur + n] = torch.arange(n)
        doc[0, cur:cur + n] = d
        if b:
            blk[0, cur:cur + len(ctx)] = torch.arange(len(ctx)) // b
            anc[0, cur:cur + len(ctx)] = b
        cur += n

    def mask_mod(bb, h, q, kv):
        same = doc[bb, q] == doc[bb, kv]
        bq = blk[bb, q]
        return same & (q >= kv) & ((bq < 0) | (bq == blk[bb, kv]) | (pos[bb, kv] < anc[bb, q]))

    bm = create_block_mask(mask_mod, 1, None, L, L, device="cpu", _compile=False)
    Lp = -(-L // 128) * 128  # the eager tile builder (used in training) on a padded copy
    pad = lambda t, v: torch.cat([t, torch.full((1, Lp - L), v, dtype=t.dtype)], 1)  # noqa: E731
    bm2 = make_block_mask(pad(doc, 2), pad(pos, 0), pad(blk, -1), pad(anc, 0))
    with torch.no_grad():
        h2 = m.forward_train(pad(ids, 0), pad(pos, 0), bm2)[:, :L]
    with torch.no_grad():
        h = m.forward_train(ids, pos, bm)
        lt = m.logits(h)[0]
    d2 = (m.logits(h2)[0] - lt).abs().max().item()
    print(f"eager tile block mask vs create_block_mask: max |dlogit| = {d2:.2e}")
    assert d2 < 1e-5
    cur = 0
    for ctx, qa, b in meta:
        N = len(ctx)
        kv = context_kv_star(m, ctx, b) if b else context_kv_global(m, ctx)
        with torch.no_grad():
            hq, _ = m.encode(torch.tensor([qa]), torch.arange(N, N + len(qa))[None], past=kv)
            li = m.logits(hq)[0]
        diff = (li - lt[cur + N:cur + N + len(qa)]).abs().max().item()
        print(f"train-mask vs inference ({'star b=%d' % b if b else 'global'}): max |dlogit| = {diff:.2e}")
        assert diff < 1e-4
        if b:  # star must differ from global (sanity that the mask does something)
            kvg = context_kv_global(m, ctx)
            with torch.no_grad():
                hg, _ = m.encode(torch.tensor([qa]), torch.arange(N, N + len(qa))[None], past=kvg)
            print(f"  star vs global differ by {(m.logits(hg)[0] - li).abs().max().item():.2e}")
        cur += N + len(qa)

    # HF equivalence
    with tempfile.TemporaryDirectory() as d:
        save_hf(m, d, shard_bytes=600_000)
        m2 = load_hf(d)
        from transformers import LlamaForCausalLM
        hf = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
        x = torch.randint(3, c.vocab_size, (1, 200))
        with torch.no_grad():
            a, _ = m2.encode(x, torch.arange(200)[None])
            diff = (m2.logits(a) - hf(x).logits).abs().max().item()
        print(f"ours vs HF LlamaForCausalLM: max |dlogit| = {diff:.2e}")
        assert diff < 1e-4

    # packer
    rs = RowStream(TOK, 4096, 1, 0.5, 400, 3)
    rnd = random.Random(0)
    cnt = [0]

    def nxt():
        cnt[0] += 1
        return (1 << 62) + cnt[0]

    r = rs.make_row(rnd, enc, lambda s: len(enc(s)), nxt)
    ndocs = len(set(r["doc"].tolist()))
    ans = (r["tcls"] == 2).sum()
    print(f"packed row: {ndocs} docs (incl. padding), {ans} answer targets, "
          f"{(r['blk'] >= 0).sum()} star-masked context tokens")
    t = r["tgt"]
    valid = t >= 0
    assert np.all(t[:-1][valid[:-1]] == r["ids"][1:][valid[:-1]])

    # the training step's mask: flex_attention with the eagerly tiled block mask, eager and compiled (the
    # mask_mod reads fixed buffers that change every step), equals the dense mask on packed rows
    L = 1024
    mbuf = {k: torch.zeros(2, L, dtype=torch.int32) for k in ("doc", "pos", "blk", "anc")}
    mm = mask_mod_for(mbuf["doc"], mbuf["pos"], mbuf["blk"], mbuf["anc"])
    fwd = lambda ids, pos, mask: m.logits(m.forward_train(ids, pos, mask))  # noqa: E731
    compiled = torch.compile(fwd)
    rs2 = RowStream(TOK, L, 2, 0.5, 100, 4)
    for step in range(2):
        rows = [rs2.make_row(rnd, enc, lambda s: len(enc(s)), nxt) for _ in range(2)]
        for k in mbuf:
            mbuf[k].copy_(torch.from_numpy(np.stack([row[k] for row in rows])))
        ids = torch.from_numpy(np.stack([row["ids"] for row in rows])).long()
        block = make_block_mask(mbuf["doc"], mbuf["pos"], mbuf["blk"], mbuf["anc"], mask_mod=mm)
        with torch.no_grad():
            ref = fwd(ids, mbuf["pos"], dense_mask(mbuf["doc"], mbuf["pos"], mbuf["blk"], mbuf["anc"]))
            d_eager = (fwd(ids, mbuf["pos"], block) - ref).abs().max().item()
            d_comp = (compiled(ids, mbuf["pos"], block) - ref).abs().max().item()
        print(f"batch {step}: flex vs dense mask max |dlogit| eager {d_eager:.1e}, compiled {d_comp:.1e}")
        assert d_eager < 1e-5 and d_comp < 1e-5
    print("ok")


if __name__ == "__main__":
    main()
