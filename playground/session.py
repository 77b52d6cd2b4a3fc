"""One workspace per browser session: what one student works on.

A `Workspace` holds the corpus, the tokenizer, the student's own model (trained here or
uploaded) with its optimizer, the history of their runs and the handle of a running
training job with its stop flag. The registry in `server.py` hands each session its own.

No gradio here: the app resolves a session to a workspace and calls these methods; tests
use them directly.
"""
from __future__ import annotations

import gc
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpt_core.checkpoint import CheckpointLimits, load_model, read_checkpoint, save_checkpoint
from gpt_core.config import GPTConfig
from gpt_core.corpus import DEFAULT_CORPUS, SAMPLE_CORPORA, CorpusError, CorpusStats, corpus_stats, decode_text, load_sample
from gpt_core.model import crop_context
from gpt_core.prepare import prepare_training, select_device
from gpt_core.speed import measure_step_seconds
from gpt_core.tokenizers import GPT2Tokenizer, get_tokenizer

from .history import RunHistory
from .limits import Limits, default_files_root, session_folder
from .memory import TRAINED_BYTES_PER_PARAMETER, MemoryBudget, release_freed_memory
from .runs import RunArchive

SPILL_DIR = "spilled"  # inside the session's folder; never offered for download


class WorkspaceError(ValueError):
    """An action this workspace cannot take now; the message says why and what to do."""


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


@dataclass
class Job:
    """A running training job. `stop` is the cooperative stop flag the trainer polls."""
    id: str
    label: str
    started: float
    stop: threading.Event = field(default_factory=threading.Event)

    def request_stop(self) -> None:
        self.stop.set()


def resident_bytes(config: Any, trained: bool) -> int:
    """What a session's model holds between runs: float32 weights, and with a trainer its
    gradients and AdamW moments too."""
    return config.num_parameters() * (TRAINED_BYTES_PER_PARAMETER if trained else 4)


@dataclass(frozen=True)
class Spilled:
    """The own model written to disk: its checkpoint, and what rebuilds the rest exactly."""
    path: Path
    label: str
    tokenizer: Any
    corpus_name: str | None
    checkpoint_path: str | None  # the file offered for download, untouched by the spill
    text: str | None  # with a trainer: the text its run was built on (resume needs its batches)

    @property
    def trained(self) -> bool:
        return self.text is not None


class BoundedDict(OrderedDict):
    """A dict that forgets its oldest entries beyond `maxlen`."""

    def __init__(self, maxlen: int):
        super().__init__()
        self.maxlen = maxlen

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        while len(self) > self.maxlen:
            self.popitem(last=False)


class Workspace:
    """Everything one browser session works with. Thread-safe for the app's handlers.

    `id` is made here, never taken from the client: Gradio's session hash is chosen by
    whoever sends the request, so it only ever serves as a key in the registry. The
    session's files live in `files_root / id`.
    """

    def __init__(self, *, limits: Limits | None = None, files_root: str | Path | None = None,
                 budget: MemoryBudget | None = None):
        self.id = uuid.uuid4().hex
        self.limits = limits or Limits()
        self.files_root = Path(files_root) if files_root is not None else default_files_root()
        self.budget = budget  # None: nothing is accounted (a notebook, a unit test)
        self.lock = threading.RLock()
        self.last_active = time.monotonic()
        self.corpus_name: str = DEFAULT_CORPUS
        self._text: str | None = None  # loaded lazily: a workspace costs nothing until used
        self.encoding_note: str = "utf-8"
        self._tokenizers: dict[str, Any] = {}
        self._stats_cache: OrderedDict = OrderedDict()
        self._own: OwnedModel | None = None
        self._spilled: Spilled | None = None  # the own model, written to disk to free memory
        self.in_use = 0  # requests being handled right now (a spill waits for none)
        self.history = RunHistory(max_points=self.limits.max_history_points,
                                  max_samples=self.limits.max_samples)
        self.runs = RunArchive()  # the runs trained here, to compare (playground/compare.py)
        self.job: Job | None = None
        self.closed = False
        self.lang = "en"  # the page's language for this session (playground/i18n.py)
        # Measured seconds per training step, by (model config, batch size), for estimates.
        self.step_seconds: BoundedDict = BoundedDict(32)
        # What the app's view of this session last showed (e.g. the latest metrics): small.
        self.ui: dict[str, Any] = {}

    # --- housekeeping --------------------------------------------------------------------
    def touch(self) -> None:
        self.last_active = time.monotonic()

    @property
    def busy(self) -> bool:
        return self.job is not None

    @contextmanager
    def using(self):
        """Around every request: a session being served is never spilled."""
        with self.lock:
            self.in_use += 1
        try:
            yield self
        finally:
            with self.lock:
                self.in_use -= 1
                self.touch()

    def close(self) -> None:
        """Stop a running job and drop everything heavy (the session has gone)."""
        with self.lock:
            self.closed = True
            if self.job is not None:
                self.job.request_stop()
            self._drop_checkpoints()
            self._own, self._spilled = None, None
            if self.budget is not None:
                self.budget.release_prefix(self.key(""))
            self._tokenizers.clear()
            self._stats_cache.clear()
            self._text = None
            self.runs.clear()

    # --- the own model, in memory or spilled to disk -----------------------------------------
    def key(self, part: str) -> str:
        """This session's key for `part` in the server's memory budget."""
        return f"{self.id}:{part}"

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
            self._own, self._spilled = value, None
            if value is None:
                self.release("model")

    @property
    def spilled(self) -> bool:
        return self._spilled is not None

    @property
    def holds_work(self) -> bool:
        """Whether dropping this session would lose something its student made."""
        return (self._own is not None or self._spilled is not None or self.job is not None
                or self.corpus_name not in SAMPLE_CORPORA)

    def reserve(self, part: str, nbytes: int, what: str) -> None:
        """Reserve `nbytes` of the server's budget for `part` of this session (replacing what it
        held), or raise MemoryBudgetError with a sentence."""
        if self.budget is not None:
            self.budget.reserve(self.key(part), nbytes, what=what, owner=self.id)

    def release(self, part: str) -> None:
        if self.budget is not None:
            self.budget.release(self.key(part))

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
            self._spilled = Spilled(path, own.label, own.tokenizer, own.corpus_name, own.checkpoint_path,
                                    text=self.text if own.trainer is not None else None)
            self._own = None
            freed = self.budget.held(self.key("model")) if self.budget is not None else 0
            self.release("model")
        finally:
            self.lock.release()
        gc.collect()
        return freed

    def _restore(self) -> None:
        with self.lock:
            spilled = self._spilled
            if spilled is None:
                return
            ckpt = read_checkpoint(spilled.path)
            cfg = ckpt.model_config
            self.reserve("model", resident_bytes(cfg, spilled.trained), "your model")
            trainer = None
            if spilled.trained:
                trainer = prepare_training(spilled.text, config=ckpt.train_config, resume=ckpt)
                model = trainer.model
            else:
                model, _ = load_model(ckpt, device=select_device("auto"))
                model.eval()
            self._own = OwnedModel(model, cfg, spilled.tokenizer, spilled.label, trainer,
                                   corpus_name=spilled.corpus_name, checkpoint_path=spilled.checkpoint_path)
            self._spilled = None
            shutil.rmtree(spilled.path.parent, ignore_errors=True)

    # --- corpus ---------------------------------------------------------------------------
    @property
    def text(self) -> str:
        if self._text is None:
            self._text = load_sample(self.corpus_name)
        return self._text

    def set_text(self, text: str, *, name: str, encoding: str = "utf-8") -> None:
        """Use `text` as the corpus. Too short or too long gives a message; nothing changes."""
        if not isinstance(text, str) or not text.strip():
            raise CorpusError("The text is empty. Paste or upload some writing to train on.")
        if len(text) > self.limits.max_corpus_chars:
            raise CorpusError(
                f"This text has {len(text):,} characters; the playground takes up to "
                f"{self.limits.max_corpus_chars:,}. Use a shorter excerpt."
            )
        if len(text) < 2:
            raise CorpusError("A corpus needs at least two characters: one to read, one to predict.")
        with self.lock:
            self._text, self.corpus_name, self.encoding_note = text, name, encoding
            self._tokenizers.pop("char", None)  # the character vocabulary comes from the text
            self._stats_cache.clear()

    def load_sample(self, name: str) -> None:
        if name not in SAMPLE_CORPORA:
            raise CorpusError(f"Unknown sample text {name!r}; choose one of: {', '.join(SAMPLE_CORPORA)}.")
        self.set_text(load_sample(name), name=name)

    def load_bytes(self, data: bytes, *, name: str) -> str:
        """An uploaded file: detect its encoding, then use it. Returns the encoding found."""
        decoded = decode_text(data)
        self.set_text(decoded.text, name=name, encoding=decoded.encoding)
        return decoded.encoding

    def tokenizer(self, kind: str):
        """The GPT-2 BPE tokenizer, or the character tokenizer of the current corpus."""
        with self.lock:
            if kind not in self._tokenizers:
                self._tokenizers[kind] = get_tokenizer(kind, self.text if kind == "char" else None)
            return self._tokenizers[kind]

    def stats(self, kind: str, *, context_length: int, stride: int | None = None,
              batch_size: int = 2, train_ratio: float = 0.9) -> CorpusStats:
        key = (kind, context_length, stride, batch_size, train_ratio)
        with self.lock:
            if key in self._stats_cache:
                self._stats_cache.move_to_end(key)
                return self._stats_cache[key]
        stats = corpus_stats(self.text, self.tokenizer(kind), context_length=context_length,
                             stride=stride, batch_size=batch_size, train_ratio=train_ratio)
        with self.lock:
            self._stats_cache[key] = stats
            while len(self._stats_cache) > 16:
                self._stats_cache.popitem(last=False)
        return stats

    # --- jobs -----------------------------------------------------------------------------
    def begin_job(self, label: str) -> Job:
        """Claim the workspace for a training run; one at a time per session."""
        with self.lock:
            if self.closed:
                raise WorkspaceError("This session has ended. Reload the page to start again.")
            if self.job is not None:
                raise WorkspaceError(
                    "A training run is already going in this session. Stop it first, or wait "
                    "for it to finish."
                )
            self.job = Job(id=uuid.uuid4().hex, label=label, started=time.monotonic())
            return self.job

    def end_job(self, job: Job) -> None:
        with self.lock:
            if self.job is job:
                self.job = None
                self._hold_resident()  # the run's activations are gone
            self.touch()

    def request_stop(self) -> bool:
        """Ask this session's running job to stop after its current step. False if none runs."""
        with self.lock:
            job = self.job
        if job is None:
            return False
        job.request_stop()
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs (True) or `timeout` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while self.job is not None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def require_idle(self, what: str) -> None:
        if self.job is not None:
            raise WorkspaceError(f"Training is running; stop it before you {what}.")

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

    def time_step(self, config: Any, *, batch_size: int, steps: int = 2, precision: str = "float32") -> float:
        """Seconds a training step of `config` takes here in `precision` (`measure_step_seconds`),
        with its throwaway model's memory reserved for as long as it lives."""
        self.check_trainable(config)
        self.reserve("measure", config.training_memory_bytes(batch_size, config.context_length),
                     "timing a training step of this model")
        try:
            return measure_step_seconds(config, batch_size=batch_size, context_length=config.context_length,
                                        steps=steps, precision=precision)
        finally:
            self.release("measure")

    # --- training runs ----------------------------------------------------------------------
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
        history.num_epochs = trainer.schedule.num_epochs
        history.tokens_per_epoch = trainer.batches_per_epoch * trainer.config.batch_size * config.context_length
        history.overfit_patience, history.eval_batches = trainer.config.overfit_patience, trainer.eval_batches
        st = trainer.state
        for step, tokens, tr, va in zip(st.eval_steps, st.track_tokens_seen, st.train_losses, st.val_losses):
            history.add_eval(step, tokens, tr, va)
        own = OwnedModel(trainer.model, config, tokenizer, label, trainer, corpus_name=self.corpus_name)
        with self.lock:
            self._drop_checkpoints()
            self.own, self.history = own, history
            if self.job is None:  # a run about to start keeps its reservation until it ends
                self._hold_resident()

    def load_checkpoint(self, path: str) -> tuple[OwnedModel, str]:
        """Make an uploaded checkpoint (ours, or the book's model.pth) this session's model.

        Returns the model and a note for the user. Read with weights_only (no code runs);
        a model larger than the session may train is refused before anything is built for
        it, and a refused file's memory is given back at once. A checkpoint of ours that
        stopped early can be resumed on the current text (the text it was trained on).
        """
        limits = CheckpointLimits.for_models_up_to(self.limits.max_train_parameters,
                                                   max_context_length=self.limits.max_context_length,
                                                   max_layers=self.limits.max_layers)
        try:
            ckpt = read_checkpoint(path, limits=limits)
            config = ckpt.model_config
            self.check_trainable(config)
            tok = ckpt.tokenizer()
            if tok is None:
                if config.vocab_size != GPT2Tokenizer().n_vocab:
                    raise WorkspaceError(
                        f"This checkpoint does not say which tokenizer it used and its vocabulary has "
                        f"{config.vocab_size:,} tokens (GPT-2's has 50,257), so its ids cannot be read.")
                tok = GPT2Tokenizer()
            if tok.n_vocab != config.vocab_size:
                raise WorkspaceError(f"The checkpoint's tokenizer has {tok.n_vocab:,} tokens but its model "
                                     f"{config.vocab_size:,}; the file is inconsistent.")
        except ValueError:  # CheckpointError, WorkspaceError: the file is refused
            ckpt = None  # the traceback keeps this frame; it must not keep the file's tensors
            release_freed_memory()
            raise
        label = "Uploaded checkpoint" if ckpt.kind == "gpt_core" else "Uploaded book model"
        note = "Use it in Generate and Evaluate, or train it further (Start from: your model)."
        if ckpt.config_inferred:
            note = (f"Its settings were read off the tensor shapes, with {config.n_heads} attention heads "
                    f"of 64 dimensions assumed (as in GPT-2 and the book's 124M). " + note)
        if ckpt.kind == "gpt_core" and ckpt.trainer_state and ckpt.train_config is not None:
            self.reserve("model", resident_bytes(config, True), "the uploaded model")
            try:
                # Replayed from here on too, if the file's run kept no timeline yet.
                trainer = prepare_training(self.text, config=ckpt.train_config.replace(timeline=True), resume=ckpt)
            except ValueError as e:
                trainer, note = None, note + f" (Its run cannot be resumed on the current text: {e}.)"
            if trainer is not None:
                self._install(trainer, tok, label)
                if not trainer.finished:
                    note = (f"Its run stopped at step {trainer.state.step + 1:,} of {trainer.total_steps:,}: "
                            f"press Resume to continue it on the current text ({self.corpus_name}).")
                return self.own, note
        self.reserve("model", resident_bytes(config, False), "the uploaded model")
        model, _ = load_model(ckpt, device=select_device("auto"), limits=limits)
        return self.adopt_model(model, config, tok, label), note

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

    def save_checkpoint(self) -> str:
        """Write this session's model (with optimizer and training state when it has them) to
        the session's folder and return the path; earlier files of the session are removed."""
        own = self.own
        if own is None:
            raise WorkspaceError("There is no model to save yet: train one first.")
        folder = self.files_dir()
        step = own.trainer.state.step + 1 if own.trainer is not None else 0
        shape = (f"gpt-{own.config.n_layers}x{own.config.emb_dim}" if hasattr(own.config, "n_layers")
                 else f"bigram-{own.config.vocab_size}")
        path = folder / f"{shape}-step{step}.pt"
        with self.lock:
            if self.closed:  # a run ending after its tab closed must not leave files behind
                raise WorkspaceError("This session has ended. Reload the page to start again.")
            if own.trainer is not None:
                own.trainer.save_checkpoint(path)
            else:
                save_checkpoint(path, model=own.model, model_config=own.config, tokenizer=own.tokenizer)
            # Older files go only once the new one is whole: a failed save (disk full) keeps them.
            for old in folder.iterdir():
                if old.name != path.name and old.is_file():
                    old.unlink(missing_ok=True)
            own.checkpoint_path = str(path)
        return str(path)

    def files_dir(self) -> Path:
        """This session's private folder for files it offers for download."""
        folder = session_folder(self.files_root, self.id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _drop_checkpoints(self) -> None:
        folder = session_folder(self.files_root, self.id)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        # self._own, not self.own: that would read a spilled model back from the folder just removed.
        if self._own is not None:
            self._own.checkpoint_path = None
