"""BabyGPT: the character-level notebook's way of training, next to the book's.

The book trains for epochs over sliding windows (data.py, schedule.EpochLoaderSchedule). The
BabyGPT notebook instead splits the token ids 80/20 and, at every iteration, draws
`batch_size` windows at random start positions (`torch.randint`), targets shifted by one;
its loss estimate is the mean over `eval_iters` fresh random batches of each split.
`RandomWindowSchedule` is that schedule for our trainer: same events, chart, stop and resume.

Randomness comes from private generators, not torch's global one: the windows a run trains
on are a function of the seed alone (evaluating more or less often, or sampling text in
between, does not change them), and their states go into checkpoints, so a resumed run
draws exactly the windows an uninterrupted one would have.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from .config import PRESETS, GPTConfig, TrainConfig

Batch = tuple[torch.Tensor, torch.Tensor]

# The notebook's model: 4 layers, 4 heads, 64-dim embeddings, context 64, no dropout
# (vocab_size is set from the corpus's characters when the model is built).
BABYGPT_CONFIG: GPTConfig = PRESETS["babygpt"].config
BABYGPT_TRAIN_RATIO = 0.8
BABYGPT_ITERATIONS = 3000
# ... and its training: batch 128, AdamW lr 1e-3 with torch's default weight decay 0.01,
# 3,000 iterations, loss estimated every 100 iterations over 200 batches of each split.
BABYGPT_TRAIN: dict[str, Any] = dict(
    batching="random_windows", max_steps=BABYGPT_ITERATIONS, num_epochs=1, batch_size=128,
    learning_rate=1e-3, weight_decay=0.01, eval_freq=100, eval_iter=200, train_ratio=BABYGPT_TRAIN_RATIO,
    start_context="子曰：", sample_tokens=100)
BIGRAM_LEARNING_RATE = 1e-2  # the notebook trains its bigram table ten times faster


def babygpt_train_config(**overrides: Any) -> TrainConfig:
    """The notebook's training options as a TrainConfig; `overrides` change any field."""
    return TrainConfig(**{**BABYGPT_TRAIN, **overrides})


def bigram_train_config(**overrides: Any) -> TrainConfig:
    """The notebook's bigram run: the BabyGPT options with AdamW lr 1e-2."""
    return babygpt_train_config(**{"learning_rate": BIGRAM_LEARNING_RATE, **overrides})


# Separate streams for training and evaluation windows: seed + 0 (so the training windows are
# those of the notebook's `torch.manual_seed(seed)` then `get_batch`) and seed + 1.
_EVAL_SEED_OFFSET = 1
# Under torchrun each rank draws its own windows.
_RANK_SEED_STRIDE = 1_000_003


def split_token_ids(ids: torch.Tensor, train_ratio: float = BABYGPT_TRAIN_RATIO) -> tuple[torch.Tensor, torch.Tensor]:
    """The notebook's split: the first `int(train_ratio * len)` ids train, the rest validate."""
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1:
        raise ValueError("ids must be a 1-D tensor of token ids")
    if isinstance(train_ratio, bool) or not isinstance(train_ratio, (int, float)) or not 0.0 < train_ratio < 1.0:
        raise ValueError(f"train_ratio must be a number between 0 and 1 (exclusive), got {train_ratio!r}")
    n = int(train_ratio * ids.numel())
    return ids[:n], ids[n:]


def _check_whole(name: str, value: Any, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"{name} must be a whole number of at least {lo}, got {value!r}")
    return value


class RandomWindows:
    """`batch_size` windows of `context_length` ids at random starts; targets shifted by one.

    `draw()` is the notebook's `get_batch(split)`: start positions
    `torch.randint(len(ids) - context_length, (batch_size,))`, so every window lies inside
    the ids and every start from 0 to the last possible one can be drawn. With the same
    seed the numbers are the notebook's (torch's global generator and a private one seeded
    alike give the same draws).
    """

    def __init__(self, ids: torch.Tensor, *, batch_size: int, context_length: int,
                 generator: torch.Generator, split: str = "train"):
        if not isinstance(ids, torch.Tensor) or ids.dim() != 1:
            raise ValueError("ids must be a 1-D tensor of token ids")
        self.batch_size = _check_whole("batch_size", batch_size)
        self.context_length = _check_whole("context_length", context_length)
        if ids.numel() <= context_length:
            raise ValueError(
                f"the {split} part has {ids.numel()} tokens; a window needs {context_length} + 1. "
                f"Use a longer text, a shorter context length or a different train/validation split.")
        if not isinstance(generator, torch.Generator):
            raise ValueError("generator must be a torch.Generator")
        self.ids = ids.to(torch.long)
        self.generator = generator
        # (num_starts, T + 1) views: a batch is one gather, no Python loop over windows.
        self._windows = self.ids.unfold(0, context_length + 1, 1)

    @property
    def num_starts(self) -> int:
        return self.ids.numel() - self.context_length

    def draw_starts(self) -> torch.Tensor:
        return torch.randint(self.num_starts, (self.batch_size,), generator=self.generator)

    def draw(self) -> Batch:
        rows = self._windows[self.draw_starts()]  # (B, T + 1)
        return rows[:, :-1], rows[:, 1:]  # inputs, targets: (B, T) each


class RandomBatchesSource:
    """`num_batches` fresh random batches each time it is iterated: an evaluation source the
    trainer's `evaluate_model` (and `calc_loss_loader`) reads like a DataLoader."""

    def __init__(self, windows: RandomWindows, num_batches: int):
        self.windows = windows
        self.num_batches = _check_whole("num_batches", num_batches)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[Batch]:
        for _ in range(self.num_batches):
            yield self.windows.draw()


class RandomWindowSchedule:
    """Iterations over random windows (the BabyGPT notebook) as a `schedule.BatchSchedule`.

    The whole run is one "epoch" of `iterations * grad_accum_steps` micro-batches. Batch `i`
    of the run is the `i`-th draw of the training generator seeded with `seed` (plus a
    per-rank offset under torchrun); `iter_epoch(0, start)` re-derives the generator for any
    `start` (kept when it is already there, advanced or replayed from the seed otherwise:
    drawing start positions costs microseconds), so a retry after an interrupted step and
    a resume both see the batches of an uninterrupted run.
    """

    num_epochs = 1

    def __init__(self, train_ids: torch.Tensor, val_ids: torch.Tensor, *, batch_size: int,
                 context_length: int, iterations: int, eval_iters: int, seed: int | None = None,
                 grad_accum_steps: int = 1, rank: int = 0):
        self.iterations = _check_whole("iterations", iterations)
        self.grad_accum_steps = _check_whole("grad_accum_steps", grad_accum_steps)
        self._rank = _check_whole("rank", rank, 0)
        # Without a seed, one is drawn (from the OS: torch's global stream is left alone) and
        # kept in the state, so the run can still be replayed and resumed.
        self._seed_given = seed is not None
        self.train_generator, self.eval_generator = torch.Generator(), torch.Generator()
        self._set_seed(_check_whole("seed", seed, 0) if self._seed_given else torch.Generator().seed() % 2**62)
        self.train_windows = RandomWindows(train_ids, batch_size=batch_size, context_length=context_length,
                                           generator=self.train_generator, split="training")
        val_windows = RandomWindows(val_ids, batch_size=batch_size, context_length=context_length,
                                    generator=self.eval_generator, split="validation")
        train_eval = RandomWindows(train_ids, batch_size=batch_size, context_length=context_length,
                                   generator=self.eval_generator, split="training")
        eval_iters = _check_whole("eval_iters", eval_iters)
        self._eval_sources = (RandomBatchesSource(train_eval, eval_iters), RandomBatchesSource(val_windows, eval_iters))
        self._drawn = 0  # training batches drawn from train_generator so far

    def _set_seed(self, seed: int) -> None:
        self.seed = seed
        base = seed + _RANK_SEED_STRIDE * self._rank
        self._train_seed, self._eval_seed = base, base + _EVAL_SEED_OFFSET
        self.train_generator.manual_seed(self._train_seed)
        self.eval_generator.manual_seed(self._eval_seed)

    def batches_per_epoch(self) -> int:
        return self.iterations * self.grad_accum_steps

    def _seek(self, start: int) -> None:
        if start < self._drawn:
            self.train_generator.manual_seed(self._train_seed)
            self._drawn = 0
        while self._drawn < start:
            self.train_windows.draw_starts()
            self._drawn += 1

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        if epoch != 0:
            raise ValueError(f"a random-window run is a single pass of iterations; there is no epoch {epoch + 1}")
        total = self.batches_per_epoch()
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= total:
            raise ValueError(f"start must be a batch number from 0 to {total}, got {start!r}")
        self._seek(start)
        return self._batches(start)

    def _batches(self, start: int) -> Iterator[Batch]:
        for i in range(start, self.batches_per_epoch()):
            if self._drawn != i:  # another iterator moved the generator: put it back
                self._seek(i)
            batch = self.train_windows.draw()
            self._drawn += 1
            yield batch

    def eval_sources(self) -> tuple[RandomBatchesSource, RandomBatchesSource]:
        return self._eval_sources

    def state_dict(self) -> dict[str, Any]:
        return {"type": "random_windows", "seed": self.seed, "drawn": self._drawn,
                "train_generator": self.train_generator.get_state(),
                "eval_generator": self.eval_generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue a saved run's windows. Checked before anything changes."""
        if not isinstance(state, dict) or state.get("type") != "random_windows":
            raise ValueError("this schedule state is not a random-window schedule's (the run used epochs)")
        saved_seed = state.get("seed")
        if self._seed_given and saved_seed != self.seed:
            raise ValueError(f"the saved run drew its windows with seed {saved_seed}, this one with "
                             f"{self.seed}; resume it with the same seed")
        generators = (state.get("train_generator"), state.get("eval_generator"))
        drawn = state.get("drawn")
        if (not all(isinstance(g, torch.Tensor) and g.dtype == torch.uint8 for g in generators)
                or isinstance(drawn, bool) or not isinstance(drawn, int) or drawn < 0
                or isinstance(saved_seed, bool) or not isinstance(saved_seed, int) or saved_seed < 0):
            raise ValueError("the saved random-window state is damaged (generator states, seed or position)")
        if saved_seed != self.seed:  # this schedule drew a seed of its own: take the run's
            self._set_seed(saved_seed)
        self.train_generator.set_state(generators[0])
        self.eval_generator.set_state(generators[1])
        self._drawn = drawn


def make_random_window_schedule(ids: torch.Tensor, *, context_length: int, config: TrainConfig,
                                iterations: int | None = None, rank: int = 0) -> RandomWindowSchedule:
    """The schedule for a run from a TrainConfig: `config.train_ratio` split of the ids,
    `config.batch_size` windows, `config.eval_iter` batches per estimate, `config.seed`;
    `iterations` defaults to `config.max_steps` (the notebook's `max_iters`)."""
    iterations = config.max_steps if iterations is None else iterations
    if iterations is None:
        raise ValueError("a random-window run needs a number of iterations (max_steps)")
    train_ids, val_ids = split_token_ids(torch.as_tensor(ids, dtype=torch.long), config.train_ratio)
    return RandomWindowSchedule(train_ids, val_ids, batch_size=config.batch_size, context_length=context_length,
                                iterations=iterations, eval_iters=config.eval_iter, seed=config.seed,
                                grad_accum_steps=config.grad_accum_steps, rank=rank)


def schedule_for_text(text: str, tokenizer, *, context_length: int, config: TrainConfig, dist=None
                      ) -> RandomWindowSchedule:
    """What `prepare.prepare_training` builds for `config.batching == "random_windows"`:
    the text tokenized once, split `config.train_ratio` of the ids, each rank its own windows."""
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    rank = dist.rank if dist is not None else 0
    return make_random_window_schedule(ids, context_length=context_length, config=config, rank=rank)


@torch.no_grad()
def estimate_loss(model: torch.nn.Module, schedule: RandomWindowSchedule, device: torch.device | str = "cpu"
                  ) -> dict[str, float]:
    """The notebook's `estimate_loss()`: {"train": mean loss, "val": mean loss} over
    `eval_iters` fresh random batches of each split, in eval mode; the model is left in the
    mode it was in."""
    from .train import evaluate_model
    train_src, val_src = schedule.eval_sources()
    train_loss, val_loss = evaluate_model(model, train_src, val_src, device, len(train_src))
    return {"train": train_loss, "val": val_loss}


# --- the notebook's pictures for the sampling lab ------------------------------------------------
# Made-up logits for five tokens: the picture needs a vector, not a model.
PICTURE_LOGITS: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, -1.0)


@dataclass(frozen=True)
class TemperaturePicture:
    logits: list[float]
    scale: float  # the logits multiplied by this: temperature = 1 / scale
    probs: list[float]  # softmax(logits)
    scaled_probs: list[float]  # softmax(logits * scale)

    @property
    def temperature(self) -> float:
        return 1.0 / self.scale


def temperature_picture(logits: torch.Tensor | list[float] | None = None, *, scale: float = 0.5) -> TemperaturePicture:
    """The notebook's picture: softmax of a vector beside softmax of the vector scaled.

    Scaling logits by `scale` is sampling at temperature 1/scale: below 1 the distribution
    flattens (more surprising tokens), above 1 it sharpens towards the argmax."""
    values = torch.tensor(PICTURE_LOGITS if logits is None else logits, dtype=torch.float32)
    if values.dim() != 1 or values.numel() < 2:
        raise ValueError("the picture needs a 1-D vector of at least two logits")
    if not torch.isfinite(values).all():
        raise ValueError("the logits must be finite numbers")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    return TemperaturePicture(values.tolist(), float(scale), torch.softmax(values, dim=0).tolist(),
                              torch.softmax(values * scale, dim=0).tolist())


def smoothed_targets(num_classes: int, target: int, epsilon: float, *, spread: str = "others") -> torch.Tensor:
    """The target distribution label smoothing trains towards.

    spread="others" (the notebook): 1 - epsilon on the true class, epsilon shared by the
    other `num_classes - 1`. spread="all" (PyTorch's `F.cross_entropy(label_smoothing=eps)`,
    which the trainer uses): epsilon shared by all classes, the true one included, so the
    true class gets 1 - epsilon + epsilon / num_classes. The two agree when PyTorch's epsilon
    is the notebook's times num_classes / (num_classes - 1).
    """
    _check_whole("num_classes", num_classes, 2)
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < num_classes:
        raise ValueError(f"target must be a class index from 0 to {num_classes - 1}, got {target!r}")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0.0 <= epsilon < 1.0:
        raise ValueError(f"epsilon must be a number in [0, 1), got {epsilon!r}")
    if spread == "others":
        q = torch.full((num_classes,), epsilon / (num_classes - 1))
        q[target] = 1.0 - epsilon
    elif spread == "all":
        q = torch.full((num_classes,), epsilon / num_classes)
        q[target] += 1.0 - epsilon
    else:
        raise ValueError(f"spread must be 'others' (the notebook) or 'all' (PyTorch), got {spread!r}")
    return q


@dataclass(frozen=True)
class LabelSmoothingExample:
    epsilon: float
    target: int
    probs: list[float]  # softmax of the logits: what the model predicts
    targets_notebook: list[float]  # 1 - eps on the true class, eps over the others
    targets_pytorch: list[float]  # eps over all classes (F.cross_entropy's label_smoothing)
    loss_plain: float  # -log p[target]
    loss_notebook: float  # cross-entropy against targets_notebook
    loss_pytorch: float  # F.cross_entropy(logits, target, label_smoothing=eps): what the trainer uses


def label_smoothing_example(logits: torch.Tensor | list[float] | None = None, target: int = 3, *,
                            epsilon: float = 0.1) -> LabelSmoothingExample:
    """Label smoothing on one prediction, both ways, with the loss each gives."""
    values = torch.tensor(PICTURE_LOGITS if logits is None else logits, dtype=torch.float32)
    if values.dim() != 1 or values.numel() < 2 or not torch.isfinite(values).all():
        raise ValueError("logits must be a 1-D vector of at least two finite numbers")
    k = values.numel()
    q_nb = smoothed_targets(k, target, epsilon, spread="others")
    q_pt = smoothed_targets(k, target, epsilon, spread="all")
    log_p = torch.log_softmax(values, dim=0)
    loss_pt = torch.nn.functional.cross_entropy(values[None], torch.tensor([target]), label_smoothing=float(epsilon))
    return LabelSmoothingExample(
        epsilon=float(epsilon), target=target, probs=log_p.exp().tolist(), targets_notebook=q_nb.tolist(),
        targets_pytorch=q_pt.tolist(), loss_plain=float(-log_p[target]),
        loss_notebook=float(-(q_nb * log_p).sum()), loss_pytorch=float(loss_pt))
