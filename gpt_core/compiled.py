"""`torch.compile` for training only, so a compiled run has the same events and checkpoints.

The trainer keeps the model itself for everything but the training forward: evaluation,
samples, checkpoints and state dicts see the plain module (no `_orig_mod.` key prefix, no
recompilation for generation's shapes), while the step's forward -- and, for our GPTModel,
the `hidden_states` that the fused head + loss reads -- run compiled.
"""
from __future__ import annotations

import torch
from torch import nn


class CompiledForTraining(nn.Module):
    """`model` with its training forward compiled; parameters, buffers and mode are the model's
    (it is `.module`, as DistributedDataParallel holds it)."""

    def __init__(self, model: nn.Module, **compile_options):
        super().__init__()
        self.module = model
        self._forward = torch.compile(model, **compile_options)  # a module: DDP's hooks compile too
        hidden_states = getattr(model, "hidden_states", None)
        if hidden_states is not None:
            self._hidden_states = torch.compile(hidden_states, **compile_options)
            self.out_head = model.out_head  # what fused_loss.applies looks for

    def forward(self, in_idx: torch.Tensor) -> torch.Tensor:
        return self._forward(in_idx)

    def hidden_states(self, in_idx: torch.Tensor) -> torch.Tensor:
        return self._hidden_states(in_idx)

    def __getattr__(self, name: str):
        # Anything else (no_sync under DDP, cfg, ...) is the wrapped module's.
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def compile_for_training(model: nn.Module) -> nn.Module:
    """The training forward of `model` (or of its DistributedDataParallel wrapper) compiled."""
    return CompiledForTraining(model)
