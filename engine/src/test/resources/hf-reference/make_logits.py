"""Last-position logits of the test checkpoints, by Hugging Face transformers in float32.

Usage: python3 make_logits.py CHECKPOINT_ROOT > logits.json
CHECKPOINT_ROOT holds one folder per case, written by the builders in HfReferenceLogitsTest.checkpoint(case).
"""
import json
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM

TOKENS = [264, 116, 257, 258, 120, 259, 1, 5, 9, 200, 33, 44, 55, 66, 77, 88, 99, 111, 222, 250]
CASES = ["llama3-gqa-bf16", "qwen2-f16-tied"]

result = {"transformers": transformers.__version__, "torch": torch.__version__, "tokens": TOKENS, "logits": {}}
for case in CASES:
    model = AutoModelForCausalLM.from_pretrained(f"{sys.argv[1]}/{case}", dtype=torch.float32)
    with torch.no_grad():
        result["logits"][case] = model(torch.tensor([TOKENS])).logits[0, -1].tolist()
json.dump(result, sys.stdout)
