"""The arguments of generation and scoring, checked before any work: each bad one is a
ValueError with a sentence naming it."""
from __future__ import annotations

from typing import Any

import torch

from .sampling import check_temperature, check_top_k, check_top_p


def _model_limits(model: torch.nn.Module) -> tuple[int | None, int | None]:
    """(vocab size, context length) when the model tells us."""
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        return None, None
    if isinstance(cfg, dict):
        return cfg.get("vocab_size"), cfg.get("context_length")
    return getattr(cfg, "vocab_size", None), getattr(cfg, "context_length", None)


def _context_size(context_size: int | None, context_length: int | None, default: int | None = None) -> int:
    """The window generation and scoring condition on: `context_size` (1 up to the model's
    context length), else the model's context length, else `default` where one is given."""
    if context_size is None:
        context_size = context_length if context_length is not None else default
        if context_size is None:
            raise ValueError("pass context_size: this model does not say how long its context is")
        return context_size
    if isinstance(context_size, bool) or not isinstance(context_size, int) or context_size < 1:
        raise ValueError(f"context_size must be a whole number >= 1, got {context_size!r}")
    if context_length is not None and context_size > context_length:
        raise ValueError(f"context_size {context_size} is longer than the model's context_length {context_length}")
    return context_size


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _check_idx(idx: Any, vocab_size: int | None) -> None:
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long:
        raise ValueError("idx must be a 2-D tensor of token ids (dtype torch.long), shape (batch, tokens)")
    if idx.shape[0] < 1 or idx.shape[1] < 1:
        raise ValueError(f"idx needs at least one row and one token to start from, got shape {tuple(idx.shape)}")
    if vocab_size is not None and (int(idx.min()) < 0 or int(idx.max()) >= vocab_size):
        raise ValueError(f"idx holds token ids outside the model's vocabulary of {vocab_size}")


def _check_options(model: torch.nn.Module, max_new_tokens: int, context_size: int | None,
                   temperature: float, top_k: int | None, top_p: float | None, eos_id: int | None,
                   generator: torch.Generator | None, seed: int | None) -> tuple[int, torch.Generator | None]:
    vocab_size, context_length = _model_limits(model)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a whole number >= 0, got {max_new_tokens!r}")
    context_size = _context_size(context_size, context_length)
    check_temperature(temperature)
    check_top_k(top_k)
    check_top_p(top_p)
    if eos_id is not None and (isinstance(eos_id, bool) or not isinstance(eos_id, int) or eos_id < 0
                               or (vocab_size is not None and eos_id >= vocab_size)):
        raise ValueError(f"eos_id must be a token id of the vocabulary (or None), got {eos_id!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError("generator must be a torch.Generator")
    if seed is not None:
        if generator is not None:
            raise ValueError("give a seed or a generator, not both")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be a whole number, got {seed!r}")
    return context_size, generator
