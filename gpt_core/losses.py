"""The book's losses: per batch, averaged over a loader, and perplexity."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import fused_loss
from .device import to_device


def calc_loss_batch(input_batch: torch.Tensor, target_batch: torch.Tensor, model: torch.nn.Module,
                    device: torch.device | str, *, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of the next token over a (B, T) batch: the book's two lines.

    Underneath, for our GPTModel and large logits, `fused_loss` computes the same number (and
    gradients) without holding the (B*T, vocab) logits whole: less memory and less memory
    traffic, which on a CPU is much of a training step.
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    # (On CUDA from pinned memory without waiting; elsewhere the book's `.to(device)`.)
    input_batch, target_batch = to_device(input_batch, device), to_device(target_batch, device)
    if fused_loss.applies(model, target_batch):  # the fast path: same loss, head fused
        return fused_loss.model_loss(model, input_batch, target_batch, label_smoothing=label_smoothing)
    logits = model(input_batch)  # (B, T, vocab)
    loss = F.cross_entropy(logits.flatten(0, 1), target_batch.flatten(), label_smoothing=label_smoothing)
    return loss


@torch.no_grad()
def calc_loss_loader(data_loader, model: torch.nn.Module, device: torch.device | str,
                     num_batches: int | None = None) -> float:
    """Mean of the first `num_batches` batch losses; NaN for an empty loader, as the book.

    Runs in whatever mode the caller left the model in (the book's `evaluate_model` sets eval).
    """
    if len(data_loader) == 0:
        return float("nan")
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    if num_batches <= 0:
        return float("nan")
    total_loss = 0.0
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= num_batches:
            break
        total_loss += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total_loss / num_batches


def perplexity(loss: float | torch.Tensor) -> float:
    """exp(loss): the effective number of tokens the model hesitates between."""
    loss = float(loss)
    if math.isnan(loss):
        return float("nan")
    return math.exp(loss) if loss < 700 else float("inf")
