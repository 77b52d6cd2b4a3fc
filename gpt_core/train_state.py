"""Where a training run is: what a resume needs besides weights, optimizer and RNGs."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainState:
    """Where a run is: everything besides weights, optimizer and RNGs that resume needs."""
    step: int = -1  # the book's global_step: index of the last optimizer step (-1: none)
    epoch: int = 0  # 0-based epoch in progress
    position: int = 0  # micro-batches of that epoch already trained on
    tokens_seen: int = 0
    train_losses: list[float] = field(default_factory=list)  # per evaluation (the book's lists)
    val_losses: list[float] = field(default_factory=list)
    track_tokens_seen: list[int] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)  # every step's training loss
    best_val_loss: float = math.inf
    best_step: int = -1
    evals_since_best: int = 0
    seconds: float = 0.0  # training wall time over all runs
    text_sha256: str = ""  # of the text trained on (prepare_training): a mid-epoch resume needs it
    timeline: list[dict] = field(default_factory=list)  # timeline.Frame dicts, one per evaluation

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainState":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in d.items() if k in known})
