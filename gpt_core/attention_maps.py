"""Attention opened: the weights each head gives every earlier token, for a chart.

The model's own forward computes attention with `scaled_dot_product_attention`, which never
materialises the weights. Here the same blocks are run by hand for one text: each block's
queries and keys give `softmax(Q K^T / sqrt(head_dim))` with the causal mask (a token sees
itself and the tokens before it, never after), the weights times the values give the block's
output, and the residual stream goes on as in `TransformerBlock.forward` in eval mode (no
dropout). Training and generation are untouched by this module.

A fresh model -- the same config and seed, untrained -- is what the trained one started from
(`fresh_model`), so the two can be compared side by side.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .config import GPTConfig
from .model import GPTModel, MultiHeadAttention


def causal_attention(att: MultiHeadAttention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One attention module by hand on x (B, T, d): (weights (B, H, T, T), output (B, T, d)).
    Masked positions (key after query) get weight exactly 0."""
    b, t, _ = x.shape
    queries = att._split_heads(att.W_query(x))  # (B, H, T, hd)
    keys = att._split_heads(att.W_key(x))
    values = att._split_heads(att.W_value(x))
    scores = queries @ keys.transpose(-2, -1) / math.sqrt(att.head_dim)  # (B, H, T, T)
    future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(diagonal=1)
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    context = (weights @ values).transpose(1, 2).reshape(b, t, att.d_out)  # (B, T, d)
    return weights, att.out_proj(context)


def _check(model: GPTModel, idx: torch.Tensor, layers: Sequence[int] | None) -> list[int]:
    if not isinstance(model, GPTModel):
        raise ValueError(f"attention weights come from a GPTModel's blocks; a {type(model).__name__} has none "
                         "(the bigram baseline is a lookup table without attention)")
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long or idx.shape[0] != 1:
        raise ValueError("idx must be one row of token ids, a (1, T) tensor of dtype torch.long")
    n_tokens = idx.shape[1]
    if n_tokens < 1:
        raise ValueError("attention needs at least one token")
    if n_tokens > model.cfg.context_length:
        raise ValueError(f"{n_tokens} tokens are more than the model's context of {model.cfg.context_length}")
    if int(idx.min()) < 0 or int(idx.max()) >= model.cfg.vocab_size:
        raise ValueError(f"idx holds token ids outside the model's vocabulary of {model.cfg.vocab_size}")
    n_layers = model.cfg.n_layers
    wanted = list(range(n_layers)) if layers is None else list(layers)
    bad = [i for i in wanted if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n_layers]
    if bad or not wanted:
        raise ValueError(f"layers must be indices 0..{n_layers - 1} of the model's {n_layers} blocks, got {layers!r}")
    return sorted(set(wanted))


@torch.inference_mode()
def attention_weights(model: GPTModel, idx: torch.Tensor, *, layers: Sequence[int] | None = None) -> torch.Tensor:
    """Attention weights for one text: (len(layers), n_heads, T, T), float32 on the CPU.

    `layers` are 0-based block indices (all by default); row i of a map is what token i
    attends to, summing to 1 over tokens 0..i. Only the blocks up to the last one asked for
    run. The model's train/eval mode is not touched: no dropout is applied here."""
    wanted = _check(model, idx, layers)
    idx = idx.to(model.device)
    t = idx.shape[1]
    x = model.tok_emb(idx) + model.pos_emb.weight[:t]  # (1, T, d)
    maps = {}
    for i, block in enumerate(model.trf_blocks):
        if i > wanted[-1]:
            break
        weights, out = causal_attention(block.att, block.norm1(x))
        if i in wanted:
            maps[i] = weights[0].float().cpu()
        x = x + out
        x = x + block.ff(block.norm2(x))
    return torch.stack([maps[i] for i in wanted])


def head_average(maps: torch.Tensor) -> torch.Tensor:
    """The mean over heads of (..., H, T, T) maps: (..., T, T), still rows summing to 1."""
    return maps.mean(dim=-3)


def fresh_model(config: GPTConfig, seed: int, *, device: torch.device | str = "cpu") -> GPTModel:
    """The untrained model a run of `config` with `seed` starts from (the book's order:
    seed, then build), built without touching the global RNG's state."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPTModel(config)
    return model.to(device).eval()
