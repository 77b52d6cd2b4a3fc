"""Text generation. `generate_text_simple` is the book's greedy loop."""
from __future__ import annotations

import torch


@torch.no_grad()
def generate_text_simple(model: torch.nn.Module, idx: torch.Tensor, max_new_tokens: int,
                         context_size: int) -> torch.Tensor:
    """Greedy decoding, recomputing the whole window each step (the book's chapter 4)."""
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]
        logits = model(idx_cond)[:, -1, :]
        idx_next = torch.argmax(logits, dim=-1, keepdim=True)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx
