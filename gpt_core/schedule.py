"""Where training batches come from, and the learning-rate schedule.

The trainer asks a *batch schedule* for the batches of each epoch and for the batches it
evaluates on. The book's schedule is `EpochLoaderSchedule`: epochs over the sliding-window
DataLoader, reshuffled each epoch. The BabyGPT notebook's is `RandomWindowSchedule`:
the token ids split 80/20 and, at every iteration, `batch_size` windows drawn at random
start positions (`torch.randint`), targets shifted by one; its loss estimate is the mean
over `eval_iters` fresh random batches of each split. Both implement the five members of
`BatchSchedule`, so the trainer's events, chart, stop and resume are the same for both.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Iterable, Iterator, Protocol, Sized, runtime_checkable

import torch

from .config import BABYGPT_TRAIN_RATIO, TrainConfig

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


# --- the BabyGPT notebook's random windows ---------------------------------------------------
# Randomness comes from private generators, not torch's global one: the windows a run trains
# on are a function of the seed alone (evaluating more or less often, or sampling text in
# between, does not change them), and their states go into checkpoints, so a resumed run
# draws exactly the windows an uninterrupted one would have.

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
