"""How long the parts of a training run take on this machine, measured rather than guessed.

A run is optimizer steps, evaluations (batches of loss without gradients), greedy samples (one
forward pass a token) and a checkpoint at its end. `measure_run_costs` times each with a
throwaway model of the run's config driven by the run's own `Trainer` (so its per-step work,
clipping and loss included, is in the figure) over random ids, on the run's device.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import GPTConfig, TrainConfig


@dataclass(frozen=True)
class RunCosts:
    """Seconds each part of a run takes here."""
    train_step: float  # one optimizer step on a batch of batch_size x context_length, as the Trainer takes it
    eval_batch: float  # one such batch's loss in eval mode, without gradients
    sample_token: float  # one greedy token: a forward pass over one window (the book's sample)
    frame_token: float  # one greedy token through the KV cache (a timeline frame, timeline.py)
    build: float  # building the model and its optimizer
    save: float  # writing a checkpoint with the optimizer's state

    def run_seconds(self, *, steps: int, eval_batches: int, sample_tokens: int, frame_tokens: int = 0,
                    saves: int = 1) -> float:
        """A run of `steps` optimizer steps, `eval_batches` evaluation batches (both splits
        together), `sample_tokens` sampled and `frame_tokens` cached tokens and `saves`
        checkpoints, model building included."""
        return (self.build + steps * self.train_step + eval_batches * self.eval_batch
                + sample_tokens * self.sample_token + frame_tokens * self.frame_token + saves * self.save)


def _now(device: torch.device) -> float:
    if device.type == "cuda":  # kernels run asynchronously: wait for them
        torch.cuda.synchronize(device)
    return time.perf_counter()


def measure_run_costs(config: GPTConfig, *, batch_size: int, steps: int = 2, train_config: TrainConfig | None = None,
                      device: torch.device | str | None = None, min_seconds: float = 0.5,
                      max_steps: int = 50) -> RunCosts:
    """Time each part of a run of `config` with batches of `batch_size` windows of its full
    context, trained as `train_config` trains (its precision, clipping, label smoothing, accumulation),
    on `device` (default: the one a run picks, `prepare.select_device`). The first step
    (warm-up: allocations, kernel choice) is not counted; then at least `steps` and until
    `min_seconds` have passed (at most `max_steps`), so a fast model is timed over enough
    steps for the figure to hold on a busy machine."""
    from .checkpoint import save_checkpoint
    from .generate import generate
    from .model import build_model
    from .precision import autocast
    from .prepare import make_optimizer, select_device
    from .schedule import RandomWindowSchedule
    from .train import Trainer, evaluate_model
    from .train_events import StepEvent

    device = torch.device(device) if device is not None else select_device("auto")
    T, iterations = config.context_length, max(steps, max_steps) + 1
    tc = (train_config or TrainConfig()).replace(
        batching="random_windows", max_steps=iterations, eval_freq=iterations + 1, eval_iter=1, sample_tokens=0,
        warmup_steps=0, seed=0, device=str(device), checkpoint_every=None, early_stopping_patience=None)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        # The first model and optimizer a process builds pay for torch's one-time set-up (its
        # first optimizer imports torch._dynamo: seconds); a run, built later, does not: a tiny
        # model takes that cost outside the timing.
        make_optimizer(build_model(GPTConfig(vocab_size=2, context_length=2, emb_dim=2, n_heads=1, n_layers=1)), tc)
        t0 = _now(device)
        model = build_model(config).to(device)  # a GPTModel, or the bigram baseline
        optimizer = make_optimizer(model, tc)
        build = _now(device) - t0
        ids = torch.randint(0, config.vocab_size, (2 * (T + 1),))
        schedule = RandomWindowSchedule(ids[:T + 1], ids[T + 1:], batch_size=batch_size, context_length=T,
                                        iterations=iterations, eval_iters=1, seed=0)
        trainer = Trainer(model, optimizer, schedule, config=tc, device=device)
        # Events: step 0 (warm-up), its evaluation, then steps 1, 2, ... timed from one to the next.
        arrivals = []
        for ev in trainer.run():
            if isinstance(ev, StepEvent):
                arrivals.append(_now(device))
                timed = len(arrivals) - 2
                if timed >= steps and (arrivals[-1] - arrivals[1] >= min_seconds or timed >= max_steps):
                    trainer.request_stop()
        train_step = (arrivals[-1] - arrivals[1]) / (len(arrivals) - 2)

        t0 = _now(device)
        with autocast(trainer.precision, device):  # as the Trainer evaluates and samples
            evaluate_model(model, *schedule.eval_sources(), device, 1)  # one batch of each split
        eval_batch = (_now(device) - t0) / 2

        model.eval()
        window, tokens = ids[:T].unsqueeze(0).to(device), 0
        t0 = _now(device)
        with torch.no_grad(), autocast(trainer.precision, device):
            while tokens < steps or (_now(device) - t0 < min_seconds / 2 and tokens < max_steps):
                model(window).argmax(-1)
                tokens += 1
        sample_token = (_now(device) - t0) / tokens

        t0, new = _now(device), max(steps, min(32, T - 4))
        with autocast(trainer.precision, device):
            generate(model, window[:, :4], new, temperature=0.0)  # greedy, through the KV cache
        frame_token = (_now(device) - t0) / new

        with tempfile.TemporaryDirectory() as folder:
            t0 = time.perf_counter()
            save_checkpoint(Path(folder) / "timing.pt", model=model, optimizer=optimizer, model_config=config)
            save = time.perf_counter() - t0
    return RunCosts(train_step=train_step, eval_batch=eval_batch, sample_token=sample_token, frame_token=frame_token,
                    build=build, save=save)
