"""How fast a training step is on this machine, measured rather than guessed."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .config import GPTConfig


def measure_step_seconds(config: GPTConfig, *, batch_size: int, context_length: int, steps: int = 2,
                         precision: str = "float32") -> float:
    """Seconds one AdamW training step takes for this model size on this machine in `precision`
    (precision.py): a throwaway model trained on random ids, the first (warm-up) step not counted."""
    from .model import build_model
    from .precision import autocast, precision_for

    arithmetic = precision_for(precision, "cpu")

    context_length = min(context_length, config.context_length)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(config)  # a GPTModel, or the bigram baseline
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.randint(0, config.vocab_size, (batch_size, context_length + 1))
        inputs, targets = x[:, :-1], x[:, 1:]
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            optimizer.zero_grad()
            with autocast(arithmetic, "cpu"):
                logits = model(inputs)
                loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - t0)
    return sum(times[1:]) / steps
