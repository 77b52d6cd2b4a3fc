"""The session's own model: what it is, what it holds in the memory budget, and its spill to
disk (and back) when the server needs room.

`OwnModelStore` is part of `session.Workspace`; it uses the workspace's lock, budget keys,
text and files folder.
"""
from __future__ import annotations

import gc
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt_core.checkpoint import load_model, read_checkpoint, save_checkpoint
from gpt_core.config import GPTConfig
from gpt_core.prepare import prepare_training, select_device

from . import generation_copies
from .history import RunHistory
from .memory import TRAINED_BYTES_PER_PARAMETER

SPILL_DIR = "spilled"  # inside the session's folder; never offered for download


@dataclass
class OwnedModel:
    """A model this session owns (trained here or uploaded) and what it needs to run.

    `trainer` is the `gpt_core.train.Trainer` of its latest run (None for an upload without
    training state): calling its `run()` again resumes exactly where it stopped.
    """
    model: Any  # GPTModel
    config: GPTConfig
    tokenizer: Any
    label: str
    trainer: Any = None
    corpus_name: str | None = None
    checkpoint_path: str | None = None  # the last saved file, for download

    @property
    def resumable(self) -> bool:
        return self.trainer is not None and not self.trainer.finished


def resident_bytes(config: Any, trained: bool) -> int:
    """What a session's model holds between runs: float32 weights, and with a trainer its
    gradients and AdamW moments too."""
    return config.num_parameters() * (TRAINED_BYTES_PER_PARAMETER if trained else 4)


@dataclass(frozen=True)
class Spilled:
    """The own model written to disk: its checkpoint, and what rebuilds the rest exactly."""
    path: Path
    config: GPTConfig  # known before the file is read, so its memory is reserved first
    label: str
    tokenizer: Any
    corpus_name: str | None
    checkpoint_path: str | None  # the file offered for download, untouched by the spill
    text: str | None  # with a trainer: the text its run was built on (resume needs its batches)

    @property
    def trained(self) -> bool:
        return self.text is not None

class OwnModelStore:
    """The own model of a `Workspace`, in memory or spilled to disk."""

    @property
    def own(self) -> OwnedModel | None:
        """The session's own model. One spilled to disk to free memory is read back first, so
        a student who comes back finds it as they left it."""
        if self._spilled is not None:
            self._restore()
        return self._own

    @own.setter
    def own(self, value: OwnedModel | None) -> None:
        with self.lock:
            self.drop_generation_copies()  # the model is replaced (or is about to train on)
            self._own, self._spilled = value, None
            if value is None:
                self.release("model")

    @property
    def spilled(self) -> bool:
        return self._spilled is not None

    def drop_generation_copies(self) -> None:
        """The own model's copies of its weights for generation go, and their reservations with
        them: it is about to be trained, replaced or spilled (generation_copies.py)."""
        own = self._own
        generation_copies.drop(self.budget, self.key("model"), own.model if own is not None else None)

    def _hold_resident(self) -> None:
        """Between runs the own model holds its weights, and with a trainer its AdamW state."""
        own = self._own
        if own is None:
            self.release("model")
        elif self.budget is not None:
            self.budget.try_reserve(self.key("model"), resident_bytes(own.config, own.trainer is not None),
                                    what="your model", owner=self.id)  # shrinking always fits

    def settle_memory(self) -> None:
        """Back to what the model this session keeps holds (after a load that failed)."""
        with self.lock:
            self._hold_resident()

    def spill(self) -> int:
        """Write the own model (with its optimizer and run, as a checkpoint) to this session's
        folder and free its memory. Returns the bytes given back to the budget: 0 when the
        session is training, being served, or has nothing in memory."""
        if not self.lock.acquire(blocking=False):
            return 0
        try:
            own = self._own
            if own is None or self.job is not None or self.in_use or self.closed:
                return 0
            path = self.files_dir() / SPILL_DIR / "model.pt"
            if own.trainer is not None:
                own.trainer.save_checkpoint(path)
            else:
                save_checkpoint(path, model=own.model, model_config=own.config, tokenizer=own.tokenizer)
            self._spilled = Spilled(path, own.config, own.label, own.tokenizer, own.corpus_name, own.checkpoint_path,
                                    text=self.text if own.trainer is not None else None)
            held = self.reserved()
            self.drop_generation_copies()
            self._own = None
            self.release("model")
            freed = held - self.reserved()
        finally:
            self.lock.release()
        gc.collect()
        return freed

    def _restore(self) -> None:
        with self.lock:
            spilled = self._spilled
            if spilled is None:
                return
            self.reserve("model", resident_bytes(spilled.config, spilled.trained), "your model")
            try:
                with self.reading(spilled.path, "reading your model back"):
                    ckpt = read_checkpoint(spilled.path)
                    trainer = None
                    if spilled.trained:
                        trainer = prepare_training(spilled.text, config=ckpt.train_config, resume=ckpt)
                        model = trainer.model
                    else:
                        model, _ = load_model(ckpt, device=select_device("auto"))
                        model.eval()
                    del ckpt  # its tensors are mapped from the file: unmapped before the reservation goes
            except BaseException:
                self.release("model")  # still spilled: it holds nothing in memory
                raise
            self._own = OwnedModel(model, spilled.config, spilled.tokenizer, spilled.label, trainer,
                                   corpus_name=spilled.corpus_name, checkpoint_path=spilled.checkpoint_path)
            self._spilled = None
            shutil.rmtree(spilled.path.parent, ignore_errors=True)

    # --- corpus ---------------------------------------------------------------------------
    def adopt_model(self, model: Any, config: GPTConfig, tokenizer: Any, label: str) -> OwnedModel:
        """Make `model` (uploaded weights, no training state) this session's own model, in eval
        mode, with a fresh run history."""
        model.eval()
        own = OwnedModel(model, config, tokenizer, label, None, corpus_name=self.corpus_name)
        with self.lock:
            self._drop_checkpoints()
            self.own = own
            self._hold_resident()
            self.history = RunHistory(max_points=self.limits.max_history_points,
                                      max_samples=self.limits.max_samples)
        return own
