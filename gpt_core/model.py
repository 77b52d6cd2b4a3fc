"""GPTModel: the book's architecture and names, with fused PyTorch kernels underneath.

Module names, parameter names and construction order follow `llms_from_scratch.ch04`, so
`torch.manual_seed(123); GPTModel(cfg)` draws exactly the book's initial weights and state
dicts load both ways. What differs is only *how* the same numbers are computed:
`scaled_dot_product_attention` instead of an explicit masked softmax, `F.layer_norm` on the
book's `scale`/`shift`, and PyTorch's tanh GELU.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .config import GPTConfig


def as_config(cfg: GPTConfig | Mapping[str, Any]) -> GPTConfig:
    """Accept our dataclass or the book's plain dict, so the book's snippets run unchanged."""
    return cfg if isinstance(cfg, GPTConfig) else GPTConfig.from_dict(cfg)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_in: int, d_out: int, context_length: int, dropout: float,
                 num_heads: int, qkv_bias: bool = False):
        super().__init__()
        if d_out % num_heads != 0:
            raise ValueError("d_out must be divisible by num_heads")
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        # Kept only so state dicts match the book's key for key (the book stores a float
        # mask; bool is a quarter of the size and loads either way). The causal mask itself
        # comes from `is_causal=True` in the fused kernel.
        self.register_buffer(
            "mask", torch.triu(torch.ones(context_length, context_length, dtype=torch.bool), diagonal=1)
        )

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, num_tokens, _ = x.shape
        queries = self._split_heads(self.W_query(x))
        keys = self._split_heads(self.W_key(x))
        values = self._split_heads(self.W_value(x))
        # With dropout active the math kernel draws one Bernoulli mask over (B, H, T, T),
        # the same draw the book's `self.dropout(attn_weights)` makes.
        context = F.scaled_dot_product_attention(
            queries, keys, values, is_causal=True,
            dropout_p=self.dropout.p if self.training else 0.0,
        )  # (B, H, T, hd)
        context = context.transpose(1, 2).reshape(b, num_tokens, self.d_out)
        return self.out_proj(context)


class LayerNorm(nn.Module):
    def __init__(self, emb_dim: int):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Biased variance, eps inside the sqrt: exactly the book's formula, one fused kernel.
        return F.layer_norm(x, self.scale.shape, self.scale, self.shift, self.eps)


class GELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The book's 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3))) in one kernel.
        return F.gelu(x, approximate="tanh")


class FeedForward(nn.Module):
    def __init__(self, cfg: GPTConfig | Mapping[str, Any]):
        super().__init__()
        cfg = as_config(cfg)
        self.layers = nn.Sequential(
            nn.Linear(cfg.emb_dim, 4 * cfg.emb_dim),
            GELU(),
            nn.Linear(4 * cfg.emb_dim, cfg.emb_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class TransformerBlock(nn.Module):
    def __init__(self, cfg: GPTConfig | Mapping[str, Any]):
        super().__init__()
        cfg = as_config(cfg)
        self.att = MultiHeadAttention(
            d_in=cfg.emb_dim, d_out=cfg.emb_dim, context_length=cfg.context_length,
            num_heads=cfg.n_heads, dropout=cfg.drop_rate, qkv_bias=cfg.qkv_bias,
        )
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg.emb_dim)
        self.norm2 = LayerNorm(cfg.emb_dim)
        self.drop_shortcut = nn.Dropout(cfg.drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        x = x + self.drop_shortcut(self.ff(self.norm2(x)))
        return x


class GPTModel(nn.Module):
    def __init__(self, cfg: GPTConfig | Mapping[str, Any]):
        super().__init__()
        cfg = as_config(cfg)
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim)
        self.drop_emb = nn.Dropout(cfg.drop_rate)
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.final_norm = LayerNorm(cfg.emb_dim)
        # Built (and its random init drawn) even when tied, so the RNG stream stays the book's.
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.out_head.weight = self.tok_emb.weight

    def forward(self, in_idx: torch.Tensor) -> torch.Tensor:
        return self.out_head(self.hidden_states(in_idx))  # (B, T, vocab)

    def hidden_states(self, in_idx: torch.Tensor) -> torch.Tensor:
        """Everything but the output head: (B, T) ids -> (B, T, d) after `final_norm`.
        The training loss uses it to fuse the head with the cross-entropy."""
        _, seq_len = in_idx.shape  # (B, T)
        if seq_len > self.cfg.context_length:
            raise ValueError(
                f"input has {seq_len} tokens but the model's context_length is "
                f"{self.cfg.context_length}; crop it to the last {self.cfg.context_length}"
            )
        tok_embeds = self.tok_emb(in_idx)  # (B, T, d)
        pos_embeds = self.pos_emb(torch.arange(seq_len, device=in_idx.device))  # (T, d)
        x = self.drop_emb(tok_embeds + pos_embeds)
        x = self.trf_blocks(x)
        return self.final_norm(x)

    @property
    def device(self) -> torch.device:
        return self.tok_emb.weight.device

    def num_parameters(self) -> int:
        """`sum(p.numel() for p in model.parameters())`, as the book counts (tied counted once)."""
        return sum(p.numel() for p in self.parameters())


def load_book_state_dict(model: GPTModel, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load a state dict saved by the book's code (or ours) strictly.

    A tied model accepts a state dict with or without a separate `out_head.weight`; when
    present it must equal the token embedding, because a tied model cannot hold both.
    """
    state_dict = dict(state_dict)
    if model.cfg.tie_weights and "out_head.weight" in state_dict and "tok_emb.weight" in state_dict:
        if not torch.equal(state_dict["out_head.weight"], state_dict["tok_emb.weight"]):
            raise ValueError(
                "this checkpoint has an output head separate from its token embedding; "
                "load it into a model built with tie_weights=False"
            )
    elif model.cfg.tie_weights and "tok_emb.weight" in state_dict:
        state_dict["out_head.weight"] = state_dict["tok_emb.weight"]
    model.load_state_dict(state_dict, strict=True)
