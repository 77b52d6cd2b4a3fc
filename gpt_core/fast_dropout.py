"""Dropout for Fast mode on a CPU: the same dropout, its mask drawn four times as fast.

On a CPU, `bernoulli_` draws one 32-bit number per element: for the book's 124M model at
context 256 its 37 masks a step took 0.24 s, a tenth of a bfloat16 step. Under CPU autocast
(Fast mode, precision.py), each mask here is cut from 64-bit random numbers, four 16-bit
lanes each, kept where a lane clears the threshold that drops a fraction p (to 1/65536): the
same distribution from a quarter of the draws, kept as one byte an element for the backward.
The masks come from torch's generator, so a seeded Fast run repeats itself.

Exact mode (no autocast) never comes here: it draws the book's Bernoulli masks, so its
numbers stay the book's. Nor do CUDA, whose `bernoulli_` is already fast, and `torch.compile`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

LANES = 4  # 16-bit lanes in one 64-bit draw
# Below this many elements Bernoulli's mask is as quick as the few more ops this one takes (the
# demo preset's masks, 65K-131K elements, ran no faster); the 124M model's are 393K and 1.5M.
MIN_ELEMENTS = 1 << 18


def fast_masks(x: torch.Tensor, elements: int | None = None) -> bool:
    """Whether dropout on `x` (or a mask of `elements` on its device) draws its mask here: CPU
    autocast is on (Fast mode), no `torch.compile` is tracing (its generated code draws its own
    masks, fast already), and the mask is large enough to gain."""
    n = x.numel() if elements is None else elements
    return (x.device.type == "cpu" and n >= MIN_ELEMENTS and torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling())


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """A bool mask of `shape`, each element True with probability 1 - p (to 1/65536)."""
    n = math.prod(shape)
    draws = torch.randint(-2**63, 2**63 - 1, (-(-n // LANES),), dtype=torch.int64, device=device)
    lanes = draws.view(torch.int16)[:n].view(shape)  # uniform over -32768..32767
    return lanes >= round(p * 65536) - 32768


def dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout with a `keep_mask`: kept elements scaled by 1 / (1 - p)."""
    if p <= 0.0:
        return x
    if p >= 1.0:
        return torch.zeros_like(x)
    return torch.where(keep_mask(x.shape, p, x.device), x * (1.0 / (1.0 - p)), 0.0)


class Dropout(nn.Dropout):
    """`nn.Dropout`, whose mask is a `keep_mask` in Fast mode on a CPU (module name, state
    dict and exact-mode draws as the book's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.p > 0.0 and fast_masks(x):
            return dropout(x, self.p)
        return super().forward(x)


def causal_attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, p: float,
                     causal: torch.Tensor) -> torch.Tensor:
    """Causal attention with dropout p on its weights, as the book writes it (scores, masked
    softmax, dropout, weighted values), the softmax in float32 and the mask a `keep_mask`.
    `causal`: (T, T), True above the diagonal (the book's `mask` buffer, cut to T).
    (CPU's fused attention has no dropout; its math path draws a Bernoulli mask.)"""
    scores = queries @ keys.transpose(-2, -1)
    weights = torch.softmax(scores.masked_fill(causal, float("-inf")).float() / math.sqrt(keys.shape[-1]), dim=-1)
    return dropout(weights, p).to(values.dtype) @ values


__all__ = ["Dropout", "causal_attention", "dropout", "fast_masks", "keep_mask"]
