"""Reference logits from Hugging Face transformers for the Java engine's tests.

    python3 training/hf_export.py --model models/starflink-synth-14m --out .../reference/hf_logits.json

Loads the shipped BF16 files with LlamaForCausalLM in float32 (eager attention), runs 4 prompts given as
explicit token ids (lengths 16 to ~2000), and writes per prompt: the token ids, the argmax id at every
position, the full float32 logit row at the last position, the first 64 logits at a few positions, and the
greedy continuation (global attention, stop at EOS). Also checks our own PyTorch model (training/model.py,
global mode) against HF on the same prompts and records the max abs logit difference.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402
from model import load_hf  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    enc = lambda s: tok.encode(s, add_special_tokens=False).ids  # noqa: E731
    count = lambda s: len(enc(s))  # noqa: E731
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    hf = LlamaForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager").to(dev).eval()
    ours = load_hf(args.model, device=dev, dtype=torch.float32)

    prompts = []
    i0 = tasks.build("qa", 600, 424242, count)
    prompts.append(("first_16_tokens", [1] + enc(i0.context)[:15]))
    i1 = tasks.build("qa", 256, 424243, count)
    prompts.append(("qa_256", [1] + enc(i1.context) + enc(i1.question)))
    i2 = tasks.build("vt", 1000, 424244, count)
    prompts.append(("vt_1000", [1] + enc(i2.context) + enc(i2.question)))
    i3 = tasks.build("niah_single", 2000, 424245, count)
    prompts.append(("niah_single_2000", [1] + enc(i3.context) + enc(i3.question)))
    answers = {"qa_256": i1.answer, "vt_1000": i2.answer, "niah_single_2000": i3.answer}

    out = {"model_dir": os.path.basename(os.path.abspath(args.model)),
           "reference": "transformers LlamaForCausalLM, float32 weights upcast from the shipped BF16 files, "
                        "eager attention, no TF32",
           "transformers_version": __import__("transformers").__version__, "torch_version": torch.__version__,
           "bos_id": 1, "eos_id": 2, "prompts": []}
    worst = 0.0
    for name, ids in prompts:
        x = torch.tensor([ids], device=dev)
        with torch.no_grad():
            lh = hf(x).logits[0].float()
            h, _ = ours.encode(x, torch.arange(len(ids), device=dev)[None])
            lo = ours.logits(h)[0]
            gen = hf.generate(x, max_new_tokens=48, do_sample=False, eos_token_id=2, pad_token_id=0)[0, len(ids):]
        d = (lh - lo).abs().max().item()
        worst = max(worst, d)
        gen = gen.tolist()
        if 2 in gen:
            gen = gen[:gen.index(2) + 1]
        L = len(ids)
        sample_pos = sorted(set([0, L // 3, (2 * L) // 3, L - 1]))
        out["prompts"].append({
            "name": name, "length": L, "token_ids": ids,
            "argmax_ids": lh.argmax(-1).tolist(),
            "last_position": L - 1,
            "last_logits": [round(v, 6) for v in lh[-1].tolist()],
            "sampled_positions": sample_pos,
            "sampled_logits_first64": [[round(v, 6) for v in lh[p, :64].tolist()] for p in sample_pos],
            "greedy_generation_ids": gen,
            "greedy_generation_text": tok.decode([t for t in gen if t != 2]),
            "expected_answer": answers.get(name),
            "ours_vs_hf_max_abs_diff": d,
        })
        print(f"{name:18s} L={L:5d} ours-vs-HF max|d|={d:.2e} greedy={tok.decode([t for t in gen if t != 2])!r} "
              f"expected={answers.get(name)!r}", flush=True)
    out["ours_vs_hf_max_abs_diff"] = worst
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f)
    print("worst ours-vs-HF", worst)


if __name__ == "__main__":
    main()
