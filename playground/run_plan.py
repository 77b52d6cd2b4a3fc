"""What a run of the Train form will do on the current text, before anything is built: how the
text splits into batches, the run's steps, evaluations and samples, and what would stop it from
starting, each with the value that would work.

The counts follow the trainer (gpt_core.train.Trainer.run): an evaluation at every step whose
index is a multiple of `eval_freq` (random windows: at the last iteration too), each averaging
up to `eval_iter` batches of each split; a sample after each epoch, or with each evaluation in a
run of random windows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gpt_core.config import BABYGPT_TRAIN_RATIO
from gpt_core.corpus import num_windows
from gpt_core.schedule import uses_lr_schedule
from gpt_core.speed import RunCosts

MIN_CONTEXT = 4  # the form's smallest context length
# A checkpoint with AdamW state is ~12 bytes a parameter: runs of models up to this size are
# saved when they end (for Download); larger ones when the user asks.
AUTOSAVE_MAX_PARAMETERS = 30_000_000


@dataclass(frozen=True)
class TextSize:
    """The current text as a run's batching sees it. Epochs: the book's character split into
    sliding windows; random windows: the notebook's split of the token ids (no batches)."""
    tokens: int
    train_tokens: int
    val_tokens: int
    train_windows: int = 0
    val_windows: int = 0
    train_batches: int = 0
    val_batches: int = 0

    def as_random_windows(self, train_ratio: float) -> "TextSize":
        """The same tokens split as a run of random windows splits them."""
        train = int(train_ratio * self.tokens)  # schedule.split_token_ids
        return TextSize(self.tokens, train, self.tokens - train)


def size_from_stats(stats: Any, *, random_windows: bool, train_ratio: float = BABYGPT_TRAIN_RATIO) -> TextSize:
    """The TextSize of `corpus_stats` (the book's split and windows), or of its tokens split as
    a run of random windows splits them."""
    if random_windows:
        return TextSize(stats.tokens, 0, 0).as_random_windows(train_ratio)
    return TextSize(stats.tokens, stats.train_tokens, stats.val_tokens, stats.train_windows, stats.val_windows,
                    stats.train_batches, stats.val_batches)


def text_size(ws: Any, kind: str, context_length: int, tc: Any) -> TextSize:
    """The text of `ws` under tokenizer `kind`, split and windowed as `tc` (a TrainConfig) will."""
    stats = ws.stats(kind, context_length=context_length, stride=tc.stride or context_length,
                     batch_size=tc.batch_size)
    return size_from_stats(stats, random_windows=tc.batching == "random_windows", train_ratio=tc.train_ratio)


def count_evaluations(steps: int, eval_freq: int, *, at_last: bool) -> int:
    """Evaluations in a run of `steps` steps: at each multiple of `eval_freq`, and with
    `at_last` at the final step too."""
    if steps <= 0:
        return 0
    n = math.ceil(steps / eval_freq)
    return n + (1 if at_last and (steps - 1) % eval_freq else 0)


@dataclass(frozen=True)
class RunPlan:
    steps: int
    evaluations: int
    eval_batches: int  # batches each evaluation reads, both splits together
    samples: int  # the book's samples, each a forward over the window a token
    sample_tokens: int
    random_windows: bool
    frames: int = 0  # timeline frames (one each evaluation), each sample_tokens cached tokens

    def seconds(self, costs: RunCosts, *, saved: bool = True) -> float:
        """The run's time here: its model built, its steps, evaluations and samples, and its
        checkpoint when `saved` at the end."""
        return costs.run_seconds(steps=self.steps, eval_batches=self.evaluations * self.eval_batches,
                                 sample_tokens=self.samples * self.sample_tokens,
                                 frame_tokens=self.frames * self.sample_tokens, saves=int(saved))


def plan_run(tc: Any, size: TextSize) -> RunPlan:
    """The steps, evaluations and samples of a run of `tc` on a text of `size`."""
    frames = tc.timeline  # each evaluation keeps a frame: its greedy sample through the cache
    if tc.batching == "random_windows":  # a sample each evaluation (the frame's, when kept)
        steps = tc.max_steps
        evals = count_evaluations(steps, tc.eval_freq, at_last=True)
        return RunPlan(steps, evals, 2 * tc.eval_iter, 0 if frames else evals, tc.sample_tokens, True,
                       evals if frames else 0)
    steps = size.train_batches * tc.num_epochs
    if tc.max_steps:
        steps = min(steps, tc.max_steps)
    # calc_loss_loader reads at most the batches a loader has.
    batches = min(tc.eval_iter, size.train_batches) + min(tc.eval_iter, size.val_batches)
    evals = count_evaluations(steps, tc.eval_freq, at_last=False)
    return RunPlan(steps, evals, batches, tc.num_epochs, tc.sample_tokens, False, evals if frames else 0)


def _longest_context(fits, upper: int) -> int | None:
    """The longest context length from MIN_CONTEXT to `upper` for which `fits(length)` holds."""
    for length in range(min(upper, 1024), MIN_CONTEXT - 1, -1):
        if fits(length):
            return length
    return None


def window_problems(size: TextSize, *, context_length: int, batch_size: int, stride: int | None,
                    random_windows: bool) -> list[str]:
    """Why the text cannot feed this run, each with the value that would work; [] when it can.

    Random windows draw their batches with replacement, so they only need one window in each
    part; the book's epochs need a full batch of training windows and one validation window.
    """
    ctx = context_length
    if random_windows:
        shortest = min(size.train_tokens, size.val_tokens)
        if shortest > ctx:
            return []
        part = "validation part (the last 20% of the tokens)" if size.val_tokens <= size.train_tokens else "training part"
        fix = (f"choose a context length of at most {shortest - 1:,}" if shortest - 1 >= MIN_CONTEXT
               else "use a longer text")
        return [f"The {part} has {shortest:,} tokens, fewer than one window of {ctx:,} + 1: {fix}."]

    def windows(tokens: int, length: int) -> int:
        return num_windows(tokens, length, stride or length)

    def fits(length: int) -> bool:
        return windows(size.train_tokens, length) >= batch_size and windows(size.val_tokens, length) >= 1

    problems = []
    longest = _longest_context(fits, ctx - 1)
    or_context = f", or a context length of at most {longest:,}" if longest else ""
    if size.train_windows < batch_size:
        fix = (f"choose a batch size of at most {size.train_windows:,}{or_context}" if size.train_windows
               else f"choose a context length of at most {longest:,}" if longest else "use a longer text")
        problems.append(f"The training part has {size.train_tokens:,} tokens: {size.train_windows:,} "
                        f"window{'' if size.train_windows == 1 else 's'} of {ctx:,} + 1, fewer than one batch of "
                        f"{batch_size:,}: {fix}.")
    if size.val_windows == 0:
        fix = (f"choose a context length of at most {longest:,}" if longest else "use a longer text")
        problems.append(f"The validation part (the last 10% of the characters) has {size.val_tokens:,} tokens, "
                        f"fewer than one window of {ctx:,} + 1: {fix}.")
    return problems


def warmup_problem(tc: Any, steps: int) -> str | None:
    """The Trainer refuses a warmup as long as the run; say so with the most that fits."""
    if not uses_lr_schedule(tc) or tc.warmup_steps < steps or steps <= 0:
        return None
    return (f"Warmup steps ({tc.warmup_steps:,}) must be fewer than the run's {steps:,} optimizer steps: "
            f"choose at most {steps - 1:,}.")
