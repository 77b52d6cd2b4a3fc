"""The training loop as a stream of events (DESIGN decision 2).

`Trainer.run()` is the book's `train_model_simple` -- evaluate every `eval_freq` steps on
`eval_iter` batches, count tokens seen, a greedy sample after each epoch -- yielding typed
events instead of printing, plus what a playground needs: a learning-rate schedule,
gradient clipping and accumulation, label smoothing, stop/resume at any step boundary, early
stopping, an overfitting flag, checkpoints and DistributedDataParallel.

The model can be any `nn.Module` mapping (B, T) token ids to (B, T, vocab) logits; batches
come from a `BatchSchedule` (schedule.py). Building a run from a text lives in prepare.py.
"""
from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from . import losses
from .config import GPTConfig, TrainConfig
from .device import step_settings
# The book's helpers are named here too (gpt_core.train.evaluate_model, as in its ch05).
from .evaluation import (MIN_OVERFIT_EVAL_BATCHES, _unwrap, context_size_of, estimate_loss,  # noqa: F401
                         evaluate_model, generate_sample, is_overfitting)
from .heap import training_heap
from .precision import autocast, precision_for
from .rng import capture_rng_state, restore_rng_state
from .schedule import BatchSchedule, EpochLoaderSchedule, RandomWindowSchedule, lr_at, uses_lr_schedule
from .timeline import add_frame, capture_frame
from .train_events import (CheckpointEvent, DoneEvent, EpochEvent, ErrorEvent, EvalEvent, Event,
                           SampleEvent, StepEvent, StoppedEvent)
from .train_state import TrainState
from .utilisation import flops_per_token, peak_flops

CHECKPOINT_NAME = "checkpoint.pt"


def _total_norm(params: list[nn.Parameter]) -> float:
    get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)  # torch >= 2.6
    if get_total_norm is not None:
        return float(get_total_norm([p.grad for p in params]))
    # Older torch: clipping at infinity scales every gradient by exactly 1.0.
    return float(torch.nn.utils.clip_grad_norm_(params, math.inf))


class Trainer:
    """One training run: model, optimizer, batch schedule, options and progress.

    `run()` may be called again after it stopped; it continues where it left off. Stop it
    with `request_stop()`, a `threading.Event` passed to `run`, or by closing the generator:
    all are honoured between optimizer steps, so the model never holds a half-applied update.
    Under torchrun every rank runs the same Trainer; only rank 0 writes checkpoints.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: BatchSchedule, *,
                 config: TrainConfig = TrainConfig(), device: torch.device | str | None = None,
                 tokenizer=None, model_config: GPTConfig | None = None,
                 checkpoint_dir: str | Path | None = None, dist=None, state: TrainState | None = None,
                 rng_state: dict[str, Any] | None = None):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.batches_per_epoch = int(schedule.batches_per_epoch())
        if self.batches_per_epoch <= 0:
            raise ValueError("the training data yields no batch: the text is shorter than one "
                             "batch of context windows; use a longer text, a shorter context or a smaller batch")
        self.model, self.optimizer, self.schedule, self.config = model, optimizer, schedule, config
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.tokenizer = tokenizer
        self.model_config = model_config if model_config is not None else getattr(_unwrap(model), "cfg", None)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.dist = dist
        self.world_size = dist.world_size if dist is not None else 1
        self.is_main = dist is None or dist.rank == 0
        self.state = state if state is not None else TrainState()
        self._pending_rng = rng_state
        self._iterator: Iterator | None = None
        self._stop_requested = False
        # The arithmetic of every step, evaluation and sample, with the sentence that says why.
        self.precision = precision_for(config.precision, self.device)
        self._dropout = False  # whether the model drops anything (run() looks): exact CUDA attention
        self.train_model = model
        if self.world_size > 1:
            from .distributed import wrap_ddp
            self.train_model = wrap_ddp(model, dist, self.device)
        if config.compile:
            from .compiled import compile_for_training
            self.train_model = compile_for_training(self.train_model)
        accum = config.grad_accum_steps
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / accum)
        total = schedule.num_epochs * self.steps_per_epoch
        self.total_steps = min(total, config.max_steps) if config.max_steps else total
        if uses_lr_schedule(config) and config.warmup_steps >= self.total_steps:
            raise ValueError(f"warmup_steps ({config.warmup_steps}) must be fewer than the run's "
                             f"{self.total_steps} optimizer steps: choose at most {self.total_steps - 1}")

    # --- control ------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop_requested = True

    def _should_stop(self, stop) -> bool:
        flag = self._stop_requested or bool(stop is not None and stop.is_set())
        if self.world_size > 1:  # every rank stops at the same step
            from .distributed import all_reduce_max
            flag = bool(all_reduce_max(float(flag), self.device))
        return flag

    @property
    def eval_batches(self) -> int:
        """Batches each evaluation averages per split: `eval_iter`, or fewer when a split
        has fewer (`calc_loss_loader` stops at the end of its loader)."""
        train_src, val_src = self.schedule.eval_sources()
        return min(self.config.eval_iter, len(train_src), len(val_src))

    @property
    def overfitting(self) -> bool:
        """`is_overfitting` for the evaluations so far, with what this run's evaluations cover:
        random windows draw fresh batches each time (never the whole split); the epochs' loaders
        are read from the start, so `eval_iter` at least their length is all of it."""
        st = self.state
        random_windows = isinstance(self.schedule, RandomWindowSchedule)
        if random_windows:  # one pass = as many tokens as the training part holds
            per_pass = self.schedule.train_windows.ids.numel()
        else:  # one pass = one epoch of full batches
            per_pass = self.batches_per_epoch * self.config.batch_size * context_size_of(self.model) * self.world_size
        whole = not random_windows and self.config.eval_iter >= len(self.schedule.eval_sources()[1])
        return is_overfitting(st.train_losses, st.val_losses, self.config.overfit_patience,
                              eval_batches=self.eval_batches, whole_split=whole,
                              tokens_seen=st.track_tokens_seen, tokens_per_pass=per_pass)

    @property
    def finished(self) -> bool:
        st = self.state
        if st.epoch >= self.schedule.num_epochs:
            return True
        # max_steps reached; an epoch whose batches are all done still gets its sample first.
        return st.step + 1 >= self.total_steps and st.position < self.batches_per_epoch

    # --- the loop -------------------------------------------------------------------------
    def run(self, stop=None) -> Iterator[Event]:
        """Train until done or stopped, yielding events. `stop`: anything with `is_set()`."""
        with training_heap():  # one step's freed pages serve the next (heap.py)
            yield from self._run(stop)

    def _run(self, stop) -> Iterator[Event]:
        self._stop_requested = False
        if self._pending_rng is not None:  # resume: the RNGs continue exactly where they were
            restore_rng_state(self._pending_rng)
            self._pending_rng = None
        self.model.train()
        self._dropout = any(m.p > 0 for m in self.model.modules() if isinstance(m, nn.Dropout))
        run_start, self._train_seconds, self._run_tokens, self._run_steps = time.perf_counter(), 0.0, 0, 0
        epoch_start = run_start
        try:
            while not self.finished:
                if self.state.position >= self.batches_per_epoch:  # also on resume at an epoch's end
                    yield from self._end_epoch(time.perf_counter() - epoch_start)
                    continue
                if self._should_stop(stop):
                    yield StoppedEvent("stopped on request", self.state.step)
                    yield from self._autosave()
                    return
                if self._iterator is None:
                    self._iterator = self.schedule.iter_epoch(self.state.epoch, self.state.position)
                    epoch_start = time.perf_counter()
                step_event = self._train_step(run_start)
                if isinstance(step_event, StoppedEvent):
                    yield step_event
                    yield from self._autosave()
                    return
                yield step_event
                st = self.state
                # The notebook (like nanoGPT) also estimates the loss at its last iteration,
                # so its curves reach the end of the run; the book's loop does not.
                last_iteration = self.config.batching == "random_windows" and st.step + 1 == self.total_steps
                if st.step % self.config.eval_freq == 0 or last_iteration:
                    eval_event = self._evaluate()
                    yield eval_event
                    if isinstance(self.schedule, RandomWindowSchedule):
                        # One long "epoch": a sample at each evaluation shows the model learning.
                        yield from self._sample(eval_event.frame)
                    patience = self.config.early_stopping_patience
                    if patience and st.evals_since_best >= patience:
                        yield StoppedEvent(
                            f"early stopping: the validation loss has not improved for {patience} "
                            f"evaluations (best {st.best_val_loss:.3f} at step {st.best_step})", st.step,
                            cause="early_stopping")
                        yield from self._autosave()
                        return
                every = self.config.checkpoint_every
                if every and (st.step + 1) % every == 0 and st.position < self.batches_per_epoch:
                    yield from self._autosave()  # (an epoch's end saves anyway)
            yield from self._autosave()
            st = self.state
            yield DoneEvent(st.step, st.epoch, st.tokens_seen, time.perf_counter() - run_start,
                            list(st.train_losses), list(st.val_losses), list(st.track_tokens_seen))
        except Exception as exc:  # reported, not swallowed: the event carries the exception
            self.optimizer.zero_grad()
            self._iterator = None  # the batch position is unknown: re-derive it on the next run
            self.model.train()
            yield ErrorEvent(f"{type(exc).__name__}: {exc}", self.state.step, exception=exc)

    def _settings(self):
        """The device's settings for this run's precision (TF32, attention kernels)."""
        return step_settings(self.precision, self.device, dropout=self._dropout)

    def _train_step(self, run_start: float) -> StepEvent | StoppedEvent:
        with self._settings():
            return self._train_step_here(run_start)

    def _train_step_here(self, run_start: float) -> StepEvent | StoppedEvent:
        cfg, st = self.config, self.state
        t0 = time.perf_counter()
        group = min(cfg.grad_accum_steps, self.batches_per_epoch - st.position)
        step = st.step + 1
        if uses_lr_schedule(cfg):
            lr = lr_at(step, cfg, self.total_steps)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
        self.optimizer.zero_grad()
        loss_sum = torch.zeros((), device=self.device)
        tokens = 0
        for micro in range(group):
            input_batch, target_batch = next(self._iterator)
            sync = micro == group - 1 or self.world_size == 1
            with (contextlib.nullcontext() if sync else self.train_model.no_sync()):
                with autocast(self.precision, self.device):  # the forward and its loss only
                    loss = losses.calc_loss_batch(input_batch, target_batch, self.train_model, self.device,
                                                  label_smoothing=cfg.label_smoothing)
                (loss if group == 1 else loss / group).backward()
            loss_sum += loss.detach()
            tokens += input_batch.numel()
        loss_t = loss_sum / group
        if self.world_size > 1:
            from .distributed import all_reduce_mean
            loss_t = all_reduce_mean(loss_t)
        loss_value = loss_t.item()
        params = [p for p in self.model.parameters() if p.grad is not None]
        if cfg.grad_clip is not None and (cfg.clip_during_warmup or step >= cfg.warmup_steps):
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
        else:
            grad_norm = _total_norm(params)
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
            # Checked before optimizer.step(): the weights stay those of the last good step.
            self.optimizer.zero_grad()
            self._iterator = None
            what = "loss" if not math.isfinite(loss_value) else "gradient norm"
            value = loss_value if what == "loss" else grad_norm
            return StoppedEvent(f"the training {what} became {value} at step {step}; the weights "
                                f"after step {st.step} are kept. Try a lower learning rate or "
                                f"gradient clipping.", st.step, cause="nan")
        self.optimizer.step()
        self.optimizer.zero_grad()  # frees the gradients while evaluating and between runs
        st.step, st.position = step, st.position + group
        st.tokens_seen += tokens * self.world_size
        st.step_losses.append(loss_value)
        now = time.perf_counter()
        self._train_seconds += now - t0
        st.seconds += now - t0
        self._run_tokens += tokens * self.world_size
        self._run_steps += 1
        remaining = self.total_steps - (step + 1)
        eta = (now - run_start) / self._run_steps * remaining
        tokens_per_sec = self._run_tokens / max(self._train_seconds, 1e-9)
        achieved, peak = None, None
        if isinstance(self.model_config, GPTConfig):  # FLOPs counted from the shape (utilisation.py)
            # Per process: the peak is one device's, and so are these tokens.
            achieved = tokens_per_sec / self.world_size * flops_per_token(self.model_config, input_batch.shape[1])
            peak = peak_flops(self.device, self.precision)  # measured once per process, after the timing
        return StepEvent(step=step, epoch=st.epoch + 1, loss=loss_value,
                         lr=float(self.optimizer.param_groups[0]["lr"]), grad_norm=grad_norm,
                         tokens_seen=st.tokens_seen, tokens_per_sec=tokens_per_sec,
                         eta_seconds=eta, total_steps=self.total_steps, flops_per_sec=achieved,
                         peak_flops=peak, precision=self.precision.name)

    def _evaluate(self) -> EvalEvent:
        st = self.state
        train_src, val_src = self.schedule.eval_sources()
        with self._settings(), autocast(self.precision, self.device):
            train_loss, val_loss = evaluate_model(self.model, train_src, val_src, self.device, self.config.eval_iter)
        if self.world_size > 1:
            from .distributed import all_reduce_mean
            t = all_reduce_mean(torch.tensor([train_loss, val_loss], dtype=torch.float64, device=self.device))
            train_loss, val_loss = float(t[0]), float(t[1])
        st.train_losses.append(train_loss)
        st.val_losses.append(val_loss)
        st.track_tokens_seen.append(st.tokens_seen)
        st.eval_steps.append(st.step)
        if math.isfinite(val_loss) and val_loss < st.best_val_loss:
            st.best_val_loss, st.best_step, st.evals_since_best = val_loss, st.step, 0
        elif math.isfinite(val_loss):
            st.evals_since_best += 1
        cfg, frame = self.config, None
        if cfg.timeline and self.is_main and self.tokenizer is not None and cfg.start_context:
            frame = capture_frame(self.model, self.tokenizer, cfg.start_context, step=st.step, epoch=st.epoch + 1,
                                  tokens_seen=st.tokens_seen, train_loss=train_loss, val_loss=val_loss,
                                  max_new_tokens=cfg.sample_tokens, precision=self.precision.name)
            add_frame(st.timeline, frame)
        return EvalEvent(step=st.step, epoch=st.epoch + 1, tokens_seen=st.tokens_seen,
                         train_loss=train_loss, val_loss=val_loss,
                         train_ppl=losses.perplexity(train_loss), val_ppl=losses.perplexity(val_loss),
                         overfitting=self.overfitting, best_val_loss=st.best_val_loss, frame=frame)

    def _sample(self, frame=None) -> Iterator[Event]:
        """The greedy sample of the start context: the evaluation's timeline frame already holds
        one (the same greedy tokens), else it is generated here."""
        st, cfg = self.state, self.config
        if self.is_main and self.tokenizer is not None and cfg.sample_tokens > 0 and cfg.start_context:
            if frame is not None:
                text = cfg.start_context + frame.text
            else:
                with self._settings():
                    text = generate_sample(self.model, self.tokenizer, self.device, cfg.start_context,
                                           cfg.sample_tokens, precision=self.precision.name)
            yield SampleEvent(st.epoch + 1, text, st.step)

    def _end_epoch(self, seconds: float) -> Iterator[Event]:
        st = self.state
        if not isinstance(self.schedule, RandomWindowSchedule):  # (its last evaluation sampled)
            yield from self._sample()
        yield EpochEvent(st.epoch + 1, st.step, seconds)
        st.epoch, st.position, self._iterator = st.epoch + 1, 0, None
        if not self.finished:  # the final checkpoint follows at the end of the run anyway
            yield from self._autosave()

    # --- checkpoints ----------------------------------------------------------------------
    def _autosave(self) -> Iterator[Event]:
        if self.checkpoint_dir is None:
            return
        path = self.save_checkpoint(self.checkpoint_dir / CHECKPOINT_NAME)
        if self.is_main:
            yield CheckpointEvent(str(path), self.state.step)

    def checkpoint_payload(self) -> dict[str, Any]:
        """Everything `checkpoint.save_checkpoint` stores for this run (on every rank)."""
        rng = capture_rng_state()
        payload: dict[str, Any] = {
            "model": self.model, "optimizer": self.optimizer, "model_config": self.model_config,
            "tokenizer": self.tokenizer, "train_config": self.config, "trainer_state": self.state.to_dict(),
            "schedule_state": self.schedule.state_dict(), "rng": rng,
        }
        if self.world_size > 1:  # each rank's dropout stream, so a resume on N ranks is exact
            from .distributed import all_gather_object
            payload["rng_per_rank"] = all_gather_object(rng)
        return payload

    def save_checkpoint(self, path: str | Path) -> Path:
        """Save now (between steps). Under torchrun call it on every rank; rank 0 writes."""
        from .checkpoint import save_checkpoint
        payload = self.checkpoint_payload()
        return save_checkpoint(path, **payload) if self.is_main else Path(path)


def train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq,
                       eval_iter, start_context, tokenizer, *,
                       on_event: Callable[[Event], None] | None = None):
    """The book's function, same arguments and results: (train_losses, val_losses,
    track_tokens_seen). What the book prints arrives as events through `on_event`."""
    config = TrainConfig(num_epochs=num_epochs, eval_freq=eval_freq, eval_iter=eval_iter,
                         start_context=start_context, seed=None)
    trainer = Trainer(model, optimizer, EpochLoaderSchedule(train_loader, val_loader, num_epochs),
                      config=config, device=device, tokenizer=tokenizer)
    for event in trainer.run():
        if on_event is not None:
            on_event(event)
        if isinstance(event, ErrorEvent) and event.exception is not None:
            raise event.exception
    st = trainer.state
    return st.train_losses, st.val_losses, st.track_tokens_seen
