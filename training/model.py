"""A Llama decoder (RoPE half-rotation as in HF, RMSNorm, SwiGLU, grouped-query attention, tied embeddings)
with three attention paths:

* training: flex_attention with a packed-document block mask (global causal or the Star mask),
* evaluation: SDPA with a KV cache (global, and Star Attention phase 1 / phase 2 per the contract),
* export/import of Hugging Face LlamaForCausalLM files (config.json + sharded BF16 safetensors).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Cfg:
    vocab_size: int = 4096
    dim: int = 384
    n_layers: int = 8
    n_heads: int = 6
    n_kv_heads: int = 2
    head_dim: int = 64
    ffn_dim: int = 1024
    rope_theta: float = 1_000_000.0
    norm_eps: float = 1e-5
    max_pos: int = 16384
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = 0


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dt)


def rope_cos_sin(pos, head_dim, theta, dtype):
    """pos: [B, L] int -> cos, sin [B, 1, L, head_dim] (HF: cat(freqs, freqs), computed in fp32)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=pos.device, dtype=torch.int64).float() / head_dim))
    freqs = pos.float()[..., None] * inv
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(dtype)[:, None], emb.sin().to(dtype)[:, None]


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x, cos, sin):
    return x * cos + rotate_half(x) * sin


class Block(nn.Module):
    def __init__(self, c: Cfg):
        super().__init__()
        self.c = c
        self.input_layernorm = RMSNorm(c.dim, c.norm_eps)
        self.post_attention_layernorm = RMSNorm(c.dim, c.norm_eps)
        self.q_proj = nn.Linear(c.dim, c.n_heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.dim, c.n_kv_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.dim, c.n_kv_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.n_heads * c.head_dim, c.dim, bias=False)
        self.gate_proj = nn.Linear(c.dim, c.ffn_dim, bias=False)
        self.up_proj = nn.Linear(c.dim, c.ffn_dim, bias=False)
        self.down_proj = nn.Linear(c.ffn_dim, c.dim, bias=False)

    def qkv(self, x, cos, sin):
        B, L, _ = x.shape
        c = self.c
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, L, c.n_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(B, L, c.n_kv_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(B, L, c.n_kv_heads, c.head_dim).transpose(1, 2)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def finish(self, x, attn):
        B, H, L, D = attn.shape
        x = x + self.o_proj(attn.transpose(1, 2).reshape(B, L, H * D))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, c: Cfg):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c.vocab_size, c.dim)
        self.layers = nn.ModuleList([Block(c) for _ in range(c.n_layers)])
        self.norm = RMSNorm(c.dim, c.norm_eps)
        self.apply(self._init)
        for b in self.layers:
            nn.init.normal_(b.o_proj.weight, std=0.02 / math.sqrt(2 * c.n_layers))
            nn.init.normal_(b.down_proj.weight, std=0.02 / math.sqrt(2 * c.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def logits(self, h):
        return F.linear(self.norm(h), self.embed_tokens.weight)

    # ---- training: packed rows, flex attention ----
    def forward_train(self, ids, pos, block_mask):
        from torch.nn.attention.flex_attention import flex_attention
        x = self.embed_tokens(ids)
        cos, sin = rope_cos_sin(pos, self.c.head_dim, self.c.rope_theta, x.dtype)
        for b in self.layers:
            q, k, v = b.qkv(x, cos, sin)
            if torch.is_autocast_enabled("cuda"):
                q, k, v = q.to(torch.bfloat16), k.to(torch.bfloat16), v.to(torch.bfloat16)
            if isinstance(block_mask, torch.Tensor):  # dense bool [B, 1, L, L] (CPU probes: no flex backward)
                a = F.scaled_dot_product_attention(q, k, v, attn_mask=block_mask, enable_gqa=True)
            else:
                a = flex_attention(q, k, v, block_mask=block_mask, enable_gqa=True)
            x = b.finish(x, a)
        return x  # final hidden states (pre-norm); call logits()

    # ---- evaluation: SDPA with explicit KV ----
    def encode(self, ids, pos, past=None, mask=None):
        """ids/pos [B, L]. past: list per layer of (k, v) [B, Hkv, P, D] visible to every new token.
        mask: None = causal among the new tokens with all of `past` visible; or a bool [L, P+L] (True = attend).
        Returns (hidden [B, L, dim], new per-layer (k, v) of these L tokens)."""
        x = self.embed_tokens(ids)
        cos, sin = rope_cos_sin(pos, self.c.head_dim, self.c.rope_theta, x.dtype)
        L = ids.shape[1]
        P = 0 if past is None else past[0][0].shape[2]
        if mask is None and P > 0:
            mask = torch.ones(L, P + L, dtype=torch.bool, device=ids.device)
            mask[:, P:] = torch.ones(L, L, dtype=torch.bool, device=ids.device).tril()
        kvs = []
        for li, b in enumerate(self.layers):
            q, k, v = b.qkv(x, cos, sin)
            kvs.append((k, v))
            if past is not None:
                k = torch.cat([past[li][0], k], dim=2)
                v = torch.cat([past[li][1], v], dim=2)
            if mask is None:
                a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            else:
                a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
            x = b.finish(x, a)
        return x, kvs


def param_count(m):
    return sum(p.numel() for p in m.parameters())


# ---------------- Hugging Face format ----------------

def hf_config(c: Cfg):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": c.vocab_size,
        "hidden_size": c.dim,
        "intermediate_size": c.ffn_dim,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": c.max_pos,
        "rms_norm_eps": c.norm_eps,
        "rope_theta": c.rope_theta,
        "rope_scaling": None,
        "rope_parameters": {"rope_type": "default", "rope_theta": c.rope_theta},
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": True,
        "bos_token_id": c.bos_id,
        "eos_token_id": c.eos_id,
        "pad_token_id": c.pad_id,
        "initializer_range": 0.02,
        "use_cache": True,
        "torch_dtype": "bfloat16",
        "dtype": "bfloat16",
    }


def hf_state_dict(m: Llama):
    sd = {"model.embed_tokens.weight": m.embed_tokens.weight, "model.norm.weight": m.norm.weight}
    for i, b in enumerate(m.layers):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = b.input_layernorm.weight
        sd[p + "post_attention_layernorm.weight"] = b.post_attention_layernorm.weight
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            sd[p + f"self_attn.{n}.weight"] = getattr(b, n).weight
        for n in ("gate_proj", "up_proj", "down_proj"):
            sd[p + f"mlp.{n}.weight"] = getattr(b, n).weight
    return sd


def save_hf(m: Llama, out_dir, shard_bytes=14 * 1024 * 1024):
    """config.json + model-0000k-of-0000n.safetensors (BF16, each under shard_bytes) + index."""
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.detach().to(torch.bfloat16).contiguous().cpu() for k, v in hf_state_dict(m).items()}
    shards, cur, size = [], {}, 0
    for k, v in sd.items():
        nb = v.numel() * 2
        if cur and size + nb > shard_bytes:
            shards.append(cur)
            cur, size = {}, 0
        cur[k] = v
        size += nb
    shards.append(cur)
    n = len(shards)
    weight_map, total = {}, 0
    for i, sh in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{n:05d}.safetensors" if n > 1 else "model.safetensors"
        save_file(sh, os.path.join(out_dir, name), metadata={"format": "pt"})
        for k, v in sh.items():
            weight_map[k] = name
            total += v.numel() * 2
    if n > 1:
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config(m.c), f, indent=2)
    with open(os.path.join(out_dir, "starflink_train_cfg.json"), "w") as f:
        json.dump(asdict(m.c), f, indent=2)


def load_hf(d, device="cpu", dtype=torch.float32):
    from safetensors.torch import load_file
    with open(os.path.join(d, "config.json")) as f:
        h = json.load(f)
    c = Cfg(vocab_size=h["vocab_size"], dim=h["hidden_size"], n_layers=h["num_hidden_layers"],
            n_heads=h["num_attention_heads"], n_kv_heads=h["num_key_value_heads"], head_dim=h["head_dim"],
            ffn_dim=h["intermediate_size"], rope_theta=h["rope_theta"], norm_eps=h["rms_norm_eps"],
            max_pos=h["max_position_embeddings"], bos_id=h["bos_token_id"], eos_id=h["eos_token_id"],
            pad_id=h.get("pad_token_id", 0))
    sd = {}
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    for fn in files:
        sd.update(load_file(os.path.join(d, fn)))
    m = Llama(c)
    own = hf_state_dict(m)
    with torch.no_grad():
        for k, p in own.items():
            p.copy_(sd[k].to(torch.float32))
    return m.to(device=device, dtype=dtype).eval()
