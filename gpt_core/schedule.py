"""Where training batches come from, and the learning-rate schedule.

The trainer asks a *batch schedule* for the batches of each epoch and for the batches it
evaluates on. The book's schedule is `EpochLoaderSchedule`: epochs over the sliding-window
DataLoader, reshuffled each epoch. Another schedule (random windows for a number of
iterations, BabyGPT-style) only has to implement the same five members of `BatchSchedule`.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Iterable, Iterator, Protocol, Sized, runtime_checkable

import torch

from .config import TrainConfig

Batch = tuple[torch.Tensor, torch.Tensor]  # (inputs (B, T), targets (B, T)) of token ids


class EvalSource(Sized, Iterable[Batch], Protocol):
    """What `calc_loss_loader` evaluates on: a sized iterable of batches (a DataLoader)."""


@runtime_checkable
class BatchSchedule(Protocol):
    num_epochs: int

    def batches_per_epoch(self) -> int:
        """Micro-batches in one epoch (an iterations-based schedule: all of them, 1 epoch)."""

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Batches of `epoch` (0-based) from batch number `start` on. Called when an epoch
        begins (start=0) and again after a resume or an interrupted step, with the epoch's
        position: the batches from `start` on must be those an uninterrupted run sees."""

    def eval_sources(self) -> tuple[EvalSource, EvalSource]:
        """(train, val) batches for evaluation; the first `eval_iter` of each are used."""

    def state_dict(self) -> dict[str, Any]:
        """What resume needs beyond the global RNG states (e.g. a private generator)."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class EpochLoaderSchedule:
    """The book's chapter 5: `num_epochs` passes over `train_loader` (a DataLoader).

    The loader reshuffles when an epoch's iterator is made, drawing from torch's global
    generator (or the loader's own `generator`). To resume mid-epoch exactly, the generator
    states just before that draw are kept; on resume they are put back for the draw, the
    epoch's first `start` batches are skipped, and the states of the moment come back.
    """

    def __init__(self, train_loader, val_loader, num_epochs: int):
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
            raise ValueError(f"num_epochs must be a whole number of at least 1, got {num_epochs!r}")
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.num_epochs = num_epochs
        self._epoch_start: dict[str, Any] | None = None  # {"epoch": e, "rng": states before its shuffle}

    def batches_per_epoch(self) -> int:
        return len(self.train_loader)

    def eval_sources(self) -> tuple[EvalSource, EvalSource]:
        return self.train_loader, self.val_loader

    def _generators(self) -> tuple[torch.Generator | None, torch.Generator | None]:
        sampler = getattr(self.train_loader, "sampler", None)
        return getattr(self.train_loader, "generator", None), getattr(sampler, "generator", None)

    def _capture(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state(),
                "generators": [None if g is None else g.get_state() for g in self._generators()]}

    def _restore(self, snap: dict[str, Any]) -> None:
        torch.set_rng_state(snap["torch"])
        for g, s in zip(self._generators(), snap["generators"]):
            if g is not None and s is not None:
                g.set_state(s)

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # DistributedSampler: a new shuffle per epoch
            sampler.set_epoch(epoch)
        now = None
        if self._epoch_start is not None and self._epoch_start["epoch"] == epoch:
            # This epoch's shuffle was drawn before (resume, or a retry after a stop):
            # draw it again from the same states, then give the generators back.
            now = self._capture()
            self._restore(self._epoch_start["rng"])
        elif start == 0:
            self._epoch_start = {"epoch": epoch, "rng": self._capture()}
        else:
            raise RuntimeError(f"cannot resume epoch {epoch} at batch {start}: its shuffle state is unknown")
        it = iter(self.train_loader)
        # The book's `for batch in train_loader` draws the shuffle on the first next(); do it
        # here, so nothing the caller does in between can move the generator first.
        for _ in range(start):
            next(it)
        first = next(it, None)
        if now is not None:
            self._restore(now)
        return iter(()) if first is None else itertools.chain([first], it)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_start": self._epoch_start, "now": self._capture()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._epoch_start = state.get("epoch_start")
        now = state.get("now")
        if now is not None:  # only the loader's own generators: the global one is the trainer's
            self._restore({"torch": torch.get_rng_state(), "generators": now["generators"]})


def lr_at(step: int, config: TrainConfig, total_steps: int) -> float:
    """Learning rate of optimizer step `step` (0-based), as the book's appendix D computes it:
    linear warmup from `initial_lr` over `warmup_steps`, then constant or cosine decay to
    `min_lr` at the end of training."""
    peak = config.learning_rate
    if step < config.warmup_steps:
        start = config.warmup_start_lr
        return start + step * (peak - start) / config.warmup_steps
    if config.lr_schedule == "constant":
        return peak
    decay_steps = max(1, total_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    low = config.final_lr
    return low + (peak - low) * 0.5 * (1.0 + math.cos(math.pi * progress))


def uses_lr_schedule(config: TrainConfig) -> bool:
    """False for the book's constant rate: the optimizer's own lr is then left alone."""
    return config.lr_schedule != "constant" or config.warmup_steps > 0
