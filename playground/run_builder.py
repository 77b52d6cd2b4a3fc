"""Building a workspace's training run: what this server trains, the memory it reserves, the
time a step takes here, and the trainer installed as the session's model.

`RunBuilder` is part of `session.Workspace`.
"""
from __future__ import annotations

from typing import Any

from gpt_core.config import GPTConfig
from gpt_core.model import crop_context
from gpt_core.prepare import prepare_training
from gpt_core.speed import RunCosts, measure_run_costs

from .errors import WorkspaceError
from .history import RunHistory
from .own_model import OwnedModel


class RunBuilder:
    """The training runs of a `Workspace`."""

    def check_trainable(self, config: GPTConfig) -> None:
        n = config.num_parameters()
        if n > self.limits.max_train_parameters:
            raise WorkspaceError(
                f"This model has {n / 1e6:.0f}M parameters; this server trains models up to "
                f"{self.limits.max_train_parameters / 1e6:.0f}M. Choose a smaller preset."
            )
        if config.context_length > self.limits.max_context_length:
            raise WorkspaceError(
                f"This model reads {config.context_length:,} tokens at a time; this server trains models "
                f"with a context of up to {self.limits.max_context_length:,} tokens. Choose a shorter "
                f"context length.")
        layers = getattr(config, "n_layers", 0)
        if layers > self.limits.max_layers:
            raise WorkspaceError(f"This model has {layers:,} transformer blocks; this server trains models "
                                 f"with up to {self.limits.max_layers:,}. Choose fewer layers.")

    def time_run(self, config: Any, *, batch_size: int, steps: int = 2, train_config: Any = None) -> RunCosts:
        """What the parts of a run of `config` (trained as `train_config`) take here
        (`measure_run_costs`), with the throwaway model's memory reserved for as long as it lives."""
        self.check_trainable(config)
        self.reserve("measure", config.training_memory_bytes(batch_size, config.context_length),
                     "timing a training step of this model")
        try:
            return measure_run_costs(config, batch_size=batch_size, steps=steps, train_config=train_config)
        finally:
            self.release("measure")

    def new_run(self, model_config: GPTConfig, train_config: Any, *, tokenizer_kind: str,
                start_from: str = "scratch", base: tuple[Any, GPTConfig, Any] | None = None,
                label: str = "Your model") -> OwnedModel:
        """Build model, optimizer, data and trainer (`prepare.prepare_training`) for a run on
        the current corpus.

        start_from: "scratch" (a new GPTModel of `model_config`, seeded by the run's seed, the
        book's order), "gpt2" (a private copy of `base`, a shared pretrained model, its context
        cropped to `model_config.context_length` so CPU steps stay short) or "own" (keep
        training this session's model). The session's model is replaced only once everything
        is built: a bad option changes nothing.
        """
        try:
            trainer, tok = self._build_run(model_config, train_config, tokenizer_kind=tokenizer_kind,
                                           start_from=start_from, base=base)
        except BaseException:
            self.settle_memory()
            raise
        self._install(trainer, tok, label)
        return self.own

    def _build_run(self, model_config: GPTConfig, train_config: Any, *, tokenizer_kind: str, start_from: str,
                   base: tuple[Any, GPTConfig, Any] | None) -> tuple[Any, Any]:
        if start_from == "own":
            own = self.own
            if own is None:
                raise WorkspaceError("You have no model to continue yet: train one from scratch or "
                                     "upload a checkpoint first.")
            tok = own.tokenizer
            self.reserve_run(own.config, train_config)
            trainer = prepare_training(self.text, tokenizer=tok, model=own.model, model_config=own.config,
                                       config=train_config)
        elif start_from == "gpt2":
            if base is None:
                raise WorkspaceError("No GPT-2 is loaded yet: load one in the GPT-2 tab, then train.")
            base_model, base_config, tok = base
            window = min(model_config.context_length, base_config.context_length)
            config = base_config.replace(context_length=window)
            self.check_trainable(config)
            self.reserve_run(config, train_config)
            model = crop_context(base_model, window)
            trainer = prepare_training(self.text, tokenizer=tok, model=model, model_config=config,
                                       config=train_config)
        elif start_from == "scratch":
            tok = self.tokenizer(tokenizer_kind)
            config = model_config.replace(vocab_size=tok.n_vocab)
            self.check_trainable(config)
            self.reserve_run(config, train_config)
            trainer = prepare_training(self.text, tokenizer=tok, model_config=config, config=train_config)
        else:
            raise ValueError(f"start_from must be 'scratch', 'gpt2' or 'own', got {start_from!r}")
        return trainer, tok

    def reserve_run(self, config: Any, train_config: Any) -> None:
        """Reserve what training `config` takes at its peak (weights, AdamW state, a step's
        activations from batch x context); `end_job` shrinks it to what stays between runs."""
        self.reserve("model", config.training_memory_bytes(train_config.batch_size, config.context_length),
                     f"training this model ({config.num_parameters() / 1e6:,.1f}M parameters, batch "
                     f"{train_config.batch_size} × context {config.context_length})")

    def _install(self, trainer: Any, tokenizer: Any, label: str) -> None:
        config = trainer.model_config
        history = RunHistory(max_points=self.limits.max_history_points, max_samples=self.limits.max_samples)
        if trainer.config.batching != "random_windows":  # random windows have no epochs to show
            history.num_epochs = trainer.schedule.num_epochs
            history.tokens_per_epoch = trainer.batches_per_epoch * trainer.config.batch_size * config.context_length
        history.overfit_patience, history.overfitting = trainer.config.overfit_patience, trainer.overfitting
        st = trainer.state
        for step, tokens, tr, va in zip(st.eval_steps, st.track_tokens_seen, st.train_losses, st.val_losses):
            history.add_eval(step, tokens, tr, va)
        own = OwnedModel(trainer.model, config, tokenizer, label, trainer, corpus_name=self.corpus_name)
        with self.lock:
            self._drop_checkpoints()
            self.own, self.history = own, history
            if self.job is None:  # a run about to start keeps its reservation until it ends
                self._hold_resident()
