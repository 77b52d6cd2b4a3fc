"""The training replayed: what the model wrote at each evaluation.

At each evaluation a run with `TrainConfig.timeline` keeps a frame: the losses, the greedy
continuation of the start context and the model's top next-token candidates right after the
start context. The candidates are the logits of the continuation's first step (a `StepHook`),
so a frame costs one greedy generation through the KV cache -- the work of one forward over
start context + `sample_tokens` tokens, less than one evaluation batch -- and no other forward.
Greedy decoding in eval mode draws no random number: the run's numbers stay the same.

Frames are plain dicts (JSON-ready, and readable by `torch.load(weights_only=True)`): they
live in `TrainState.timeline` and so in every checkpoint's `trainer_state`. A checkpoint
without them (older files, the book's) has an empty timeline.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .generate import generate, text_to_token_ids

TOP_CANDIDATES = 8  # next-token candidates kept per frame
MAX_FRAMES = 1_000  # past this, every other frame is dropped (the first and the latest stay)
MAX_TEXT_CHARS = 2_000  # a frame read from a file holds at most this much text


@dataclass(frozen=True)
class Frame:
    """One evaluation, replayed: where the run was, and what the model wrote there."""
    step: int  # the book's global_step of the evaluation
    epoch: int  # 1-based
    tokens_seen: int
    train_loss: float
    val_loss: float
    text: str  # the greedy continuation of the start context (without the start context)
    candidates: tuple[tuple[str, float], ...]  # (token, probability) after the start context

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidates"] = [[token, p] for token, p in self.candidates]
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "Frame":
        """A frame from a dict (a checkpoint's): every field checked, ValueError naming the bad one."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a timeline frame is a dict, got {type(d).__name__}")
        missing = [k for k in ("step", "epoch", "tokens_seen", "train_loss", "val_loss", "text", "candidates")
                   if k not in d]
        if missing:
            raise ValueError(f"a timeline frame lacks {', '.join(missing)}")
        for name in ("step", "epoch", "tokens_seen"):
            if isinstance(d[name], bool) or not isinstance(d[name], int) or d[name] < -1:
                raise ValueError(f"a timeline frame's {name} must be a whole number, got {d[name]!r}")
        for name in ("train_loss", "val_loss"):
            if isinstance(d[name], bool) or not isinstance(d[name], (int, float)):
                raise ValueError(f"a timeline frame's {name} must be a number, got {d[name]!r}")
        if not isinstance(d["text"], str) or len(d["text"]) > MAX_TEXT_CHARS:
            raise ValueError(f"a timeline frame's text must be a string of at most {MAX_TEXT_CHARS:,} characters")
        cands = d["candidates"]
        ok = isinstance(cands, (list, tuple)) and len(cands) <= 100 and all(
            isinstance(c, (list, tuple)) and len(c) == 2 and isinstance(c[0], str) and len(c[0]) <= 200
            and isinstance(c[1], (int, float)) and not isinstance(c[1], bool) and 0.0 <= c[1] <= 1.0
            for c in cands)
        if not ok:
            raise ValueError("a timeline frame's candidates must be [token, probability] pairs")
        return cls(step=d["step"], epoch=d["epoch"], tokens_seen=d["tokens_seen"],
                   train_loss=float(d["train_loss"]), val_loss=float(d["val_loss"]), text=d["text"],
                   candidates=tuple((str(t), float(p)) for t, p in cands))


def check_timeline(frames: Any) -> list[Frame]:
    """Frames read back from a checkpoint, checked (ValueError says what is wrong). None or
    absent (an older checkpoint) is an empty timeline."""
    if frames is None:
        return []
    if not isinstance(frames, (list, tuple)):
        raise ValueError(f"the timeline is a list of frames, got {type(frames).__name__}")
    if len(frames) > MAX_FRAMES * 2:
        raise ValueError(f"the timeline holds {len(frames):,} frames; at most {MAX_FRAMES * 2:,} are read")
    return [Frame.from_dict(f) for f in frames]


def _token_labels(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    if hasattr(tokenizer, "token_strings"):
        return tokenizer.token_strings(list(ids))
    return [tokenizer.decode([i]) for i in ids]


def capture_frame(model: nn.Module, tokenizer: Any, start_context: str, *, step: int, epoch: int,
                  tokens_seen: int, train_loss: float, val_loss: float, max_new_tokens: int = 50,
                  top_n: int = TOP_CANDIDATES, precision: str = "float32") -> Frame:
    """The frame of this moment: the greedy continuation of `start_context` and the `top_n`
    likeliest first tokens, from one generation. The model's train/eval mode is restored.
    `precision`: the generation's (generate.py); a run's own, so a Fast run's frames cost
    what its samples do and an exact run's are the book's greedy tokens."""
    if not isinstance(start_context, str) or not start_context:
        raise ValueError("a timeline frame needs a start context to continue")
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise ValueError(f"top_n must be a whole number >= 1, got {top_n!r}")
    first: list[torch.Tensor] = []

    def keep_first(logits: torch.Tensor, _ids: torch.Tensor) -> None:
        if not first:
            first.append(torch.softmax(logits[0].float(), dim=-1))

    idx = text_to_token_ids(start_context, tokenizer)
    was_training = model.training
    model.eval()  # a model without a cached path (the bigram) is called as is: no dropout
    try:
        out = generate(model, idx, max_new_tokens, temperature=0.0, on_step=keep_first, precision=precision)
    finally:
        model.train(was_training)
    candidates: tuple[tuple[str, float], ...] = ()
    if first:
        probs, ids = torch.topk(first[0], min(top_n, first[0].shape[-1]))
        candidates = tuple(zip(_token_labels(tokenizer, ids.tolist()), probs.tolist()))
    text = tokenizer.decode(out[0, idx.shape[1]:].tolist())[:MAX_TEXT_CHARS]
    return Frame(step=int(step), epoch=int(epoch), tokens_seen=int(tokens_seen), train_loss=float(train_loss),
                 val_loss=float(val_loss) if math.isfinite(val_loss) else float("nan"), text=text,
                 candidates=candidates)


def add_frame(frames: list[dict[str, Any]], frame: Frame, *, max_frames: int = MAX_FRAMES) -> None:
    """Append `frame` (as a dict) to `frames` in place; past `max_frames`, every other older
    frame goes, so a long run's timeline stays small and still spans the whole run."""
    frames.append(frame.to_dict())
    if len(frames) > max_frames:
        frames[:-1] = frames[:-1][::2]
