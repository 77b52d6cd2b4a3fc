"""A session's run history: what the loss chart and the sample log show, bounded in size."""
from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field

from gpt_core.config import TrainConfig

from .i18n import tr


@dataclass
class RunHistory:
    """What the loss chart and the sample log show, bounded in size.

    Evaluation points are few (one every `eval_freq` steps) and kept as they come; per-batch
    losses are many, so when they pass the bound every other one is dropped (the curve keeps
    its shape, the memory stays flat however long the run).
    """
    max_points: int = 2_000
    max_samples: int = 60
    tokens_seen: list[int] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    step_tokens: list[int] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    _step_stride: int = 1
    _step_count: int = 0
    samples: deque = field(default_factory=deque)
    # The planned epochs and their tokens, for the chart's frame and its epochs axis; None for
    # a run without epochs (random windows) or a model without a run.
    num_epochs: int | None = None
    tokens_per_epoch: int | None = None
    # The trainer's overfitting flag at the latest evaluation (`EvalEvent.overfitting`, or
    # `Trainer.overfitting` for a run read back): the page words it and decides nothing itself.
    overfitting: bool = False
    overfit_patience: int = TrainConfig.overfit_patience
    # Names this run's chart for Plotly's `uirevision`: a zoom lasts while the run does.
    revision: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def add_eval(self, step: int, tokens_seen: int, train_loss: float, val_loss: float) -> None:
        self.eval_steps.append(int(step))
        self.tokens_seen.append(int(tokens_seen))
        self.train_losses.append(float(train_loss))
        self.val_losses.append(float(val_loss))
        if len(self.tokens_seen) > self.max_points:
            for name in ("eval_steps", "tokens_seen", "train_losses", "val_losses"):
                setattr(self, name, getattr(self, name)[::2])

    def add_step(self, tokens_seen: int, loss: float) -> None:
        self._step_count += 1
        if self._step_count % self._step_stride:
            return
        self.step_tokens.append(int(tokens_seen))
        self.step_losses.append(float(loss))
        if len(self.step_tokens) > self.max_points:
            self.step_tokens, self.step_losses = self.step_tokens[::2], self.step_losses[::2]
            self._step_stride *= 2

    def add_sample(self, label: str, text: str) -> None:
        self.samples.append((label, text))
        while len(self.samples) > self.max_samples:
            self.samples.popleft()

    def sample_log(self, *, newest_first: bool = True) -> str:
        samples = reversed(self.samples) if newest_first else self.samples
        return "\n\n".join(f"[{label}]\n{text}" for label, text in samples)

    @property
    def last_val_loss(self) -> float | None:
        return self.val_losses[-1] if self.val_losses else None

    def overfitting_hint(self) -> str | None:
        """The trainer's overfitting flag in words, for the chart and the metrics."""
        if not self.overfitting:
            return None
        return tr("Overfitting: validation loss rose at each of the last {n} evaluations while training loss "
                  "kept falling.", n=max(2, self.overfit_patience))
