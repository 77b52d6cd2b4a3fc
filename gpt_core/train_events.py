"""What the trainer reports, one typed event at a time.

The trainer is a generator of these events (DESIGN decision 2): the app draws them, the
command line prints them, tests assert on them. Steps are counted as the book counts them:
`step` is the book's `global_step`, the index of the optimizer step just taken (0 first);
`epoch` is 1-based, as the book prints it ("Ep 1 (Step 000000)").
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Union

if TYPE_CHECKING:  # pragma: no cover
    from .timeline import Frame


@dataclass(frozen=True)
class StepEvent:
    """One optimizer step done (all its accumulated micro-batches)."""
    step: int
    epoch: int
    loss: float  # training loss of this step's batch (mean over micro-batches and ranks)
    lr: float
    grad_norm: float  # before clipping
    tokens_seen: int  # all ranks together
    tokens_per_sec: float  # training throughput of this run so far (evaluation excluded)
    eta_seconds: float | None  # None until a step has been timed
    total_steps: int
    # Utilisation (utilisation.py): FLOP/s this run achieves and this process's measured
    # matrix-multiply peak in the run's precision; None for models whose FLOPs are not counted.
    flops_per_sec: float | None = None
    peak_flops: float | None = None
    precision: str = "float32"  # the arithmetic of the step (precision.py)
    kind: ClassVar[str] = "step"

    @property
    def peak_share(self) -> float | None:
        """Achieved FLOP/s as a share of the measured peak (nanoGPT's MFU, against this machine)."""
        if self.flops_per_sec is None or not self.peak_flops:
            return None
        return self.flops_per_sec / self.peak_flops


@dataclass(frozen=True)
class EvalEvent:
    """The book's `evaluate_model`: mean loss of `eval_iter` train and val batches."""
    step: int
    epoch: int
    tokens_seen: int
    train_loss: float
    val_loss: float
    train_ppl: float
    val_ppl: float
    # Validation loss rising for several evaluations while the training loss falls.
    overfitting: bool = False
    best_val_loss: float = math.inf
    # With TrainConfig.timeline: this evaluation's greedy sample and next-token candidates.
    frame: Frame | None = None
    kind: ClassVar[str] = "eval"


@dataclass(frozen=True)
class SampleEvent:
    """Greedy continuation of the start context after an epoch (the book prints it)."""
    epoch: int
    text: str
    step: int = -1
    kind: ClassVar[str] = "sample"


@dataclass(frozen=True)
class EpochEvent:
    epoch: int  # the epoch that just ended
    step: int
    seconds: float  # wall time of this epoch in this run
    kind: ClassVar[str] = "epoch"


@dataclass(frozen=True)
class CheckpointEvent:
    path: str
    step: int
    kind: ClassVar[str] = "checkpoint"


@dataclass(frozen=True)
class DoneEvent:
    step: int
    epoch: int
    tokens_seen: int
    seconds: float
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    track_tokens_seen: list[int] = field(default_factory=list)
    kind: ClassVar[str] = "done"


@dataclass(frozen=True)
class StoppedEvent:
    """The run ended early: a stop request, early stopping, or a loss that became NaN/inf.
    The model holds the weights after step `step` (the last good one; -1: none taken)."""
    reason: str
    step: int
    cause: str = "request"  # "request", "early_stopping" or "nan" (a NaN/inf loss or gradient)
    kind: ClassVar[str] = "stopped"


@dataclass(frozen=True)
class ErrorEvent:
    """An exception ended the run; the model holds the weights after the last finished step.
    `exception` is the original, for callers that want to raise it."""
    message: str
    step: int = -1
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    kind: ClassVar[str] = "error"


Event = Union[StepEvent, EvalEvent, SampleEvent, EpochEvent, CheckpointEvent, DoneEvent,
              StoppedEvent, ErrorEvent]


def event_to_dict(event: Event) -> dict[str, Any]:
    """JSON-ready dict with the event's kind under "event"."""
    d = {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name != "exception"}
    if d.get("frame") is not None:
        d["frame"] = d["frame"].to_dict()
    return {"event": event.kind, **d}


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_utilisation(event: StepEvent, *, prefix: str = "") -> str:
    """"123 GFLOP/s, 41% of this machine's bfloat16 peak (300 GFLOP/s)", or "" when not counted."""
    from .utilisation import format_flops
    share = event.peak_share
    if share is None:
        return ""
    return (f"{prefix}{format_flops(event.flops_per_sec)}, {share:.0%} of this machine's {event.precision} "
            f"peak ({format_flops(event.peak_flops)})")


def format_event(event: Event) -> str:
    """One human line per event; evaluations read exactly as the book prints them."""
    if isinstance(event, EvalEvent):
        line = (f"Ep {event.epoch} (Step {event.step:06d}): "
                f"Train loss {event.train_loss:.3f}, Val loss {event.val_loss:.3f}")
        return line + ("  [validation loss rising: overfitting]" if event.overfitting else "")
    if isinstance(event, StepEvent):
        return (f"step {event.step + 1}/{event.total_steps}  ep {event.epoch}  loss {event.loss:.4f}  "
                f"lr {event.lr:.2e}  |g| {event.grad_norm:.3f}  {event.tokens_per_sec:,.0f} tok/s"
                f"{format_utilisation(event, prefix='  ')}  eta {_fmt_duration(event.eta_seconds)}")
    if isinstance(event, SampleEvent):
        return event.text.replace("\n", " ")  # the book's compact print format
    if isinstance(event, EpochEvent):
        return f"epoch {event.epoch} done at step {event.step} ({_fmt_duration(event.seconds)})"
    if isinstance(event, CheckpointEvent):
        return f"checkpoint saved: {event.path}"
    if isinstance(event, DoneEvent):
        return (f"done: {event.step + 1} steps, {event.tokens_seen:,} tokens in "
                f"{_fmt_duration(event.seconds)}")
    if isinstance(event, StoppedEvent):
        return f"stopped after step {event.step}: {event.reason}"
    if isinstance(event, ErrorEvent):
        return f"error: {event.message}"
    raise TypeError(f"not a training event: {event!r}")
