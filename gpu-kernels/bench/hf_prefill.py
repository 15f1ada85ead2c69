"""Hugging Face transformers (SDPA) on the shapes GpuBench times, in the same run: the baseline of the GPU
backend's whole-model numbers. A Llama-3.1-8B-shaped LlamaForCausalLM with random bf16 weights; phase-1 prefill
(one forward of the decoder over the context, no logits) at 8K-64K tokens, and decode ms per token with a KV cache.
Usage: python3 hf_prefill.py [max context]"""
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

max_context = int(sys.argv[1]) if len(sys.argv) > 1 else 65536
config = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=128256, max_position_embeddings=131072, rope_theta=500000.0,
                     torch_dtype=torch.bfloat16, attn_implementation="sdpa")
torch.manual_seed(0)
with torch.device("cuda"):
    model = LlamaForCausalLM(config).to(torch.bfloat16).eval()


def timed(fn):
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start, out


with torch.no_grad():
    timed(lambda: model.model(torch.randint(3, 128000, (1, 8192), device="cuda")))  # warm-up
    print("# transformers %s, SDPA, bf16: phase-1 prefill tokens/s (model.model, no logits)" % torch.__version__)
    n = 8192
    while n <= max_context:
        ids = torch.randint(3, 128000, (1, n), device="cuda")
        seconds, _ = timed(lambda: model.model(ids))
        print("%8d %12.0f" % (n, n / seconds))
        del ids
        torch.cuda.empty_cache()
        n *= 2
    print("# transformers decode ms/token (greedy, KV cache, 16 steps after warm-up)")
    for n in (4096, 16384, 65536):
        ids = torch.randint(3, 128000, (1, n), device="cuda")
        out = model(ids, use_cache=True)
        cache = out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        for _ in range(2):
            out = model(token, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(16):
            out = model(token, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        torch.cuda.synchronize()
        print("%8d %10.2f" % (n, (time.perf_counter() - start) * 1000 / 16))
        del out, cache, ids
        torch.cuda.empty_cache()
