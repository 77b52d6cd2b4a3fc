"""One workspace per browser session, and the few things sessions share.

A `Workspace` holds what one student works on: the corpus, the tokenizer, their own model
(trained here or uploaded) with its optimizer, the history of their runs and the handle of a
running training job with its stop flag. A `WorkspaceRegistry` hands each session its own
workspace, evicts idle ones and caps how many exist, so memory stays bounded however many
people connect. Pretrained GPT-2 models are loaded once per process into `SharedModels` and
only ever read.

No gradio here: the app resolves a session to a workspace and calls these methods; tests and
notebooks use them directly.
"""
from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable

from .config import GPTConfig
from .corpus import DEFAULT_CORPUS, SAMPLE_CORPORA, CorpusError, CorpusStats, corpus_stats, decode_text, load_sample


# Per-session files offered for download (checkpoints); removed when the session ends.
FILES_ROOT = os.environ.get("PLAYGROUND_FILES_DIR") or os.path.join(tempfile.gettempdir(),
                                                                    "gpt-playground-sessions")


class WorkspaceError(ValueError):
    """An action this workspace cannot take now; the message says why and what to do."""


@dataclass(frozen=True)
class Limits:
    """What one session may use. Defaults suit a 2-core, 16 GB server shared by a class."""
    max_corpus_chars: int = 5_000_000
    max_sessions: int = 200
    # An idle session (no request, no running job) is dropped after this many seconds.
    session_ttl_s: float = 3 * 3600
    # Models a session may own and train: the book's 124M (163M with its separate head) fits.
    max_train_parameters: int = 200_000_000
    max_history_points: int = 2_000
    max_samples: int = 60
    max_new_tokens: int = 500
    max_score_chars: int = 20_000

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Limits":
        """Overrides from PLAYGROUND_<FIELD> environment variables (e.g. PLAYGROUND_MAX_SESSIONS)."""
        env = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"PLAYGROUND_{f.name.upper()}")
            if raw is None:
                continue
            try:
                value = float(raw) if f.type in ("float", float) else int(raw)
            except ValueError:
                raise ValueError(f"PLAYGROUND_{f.name.upper()} must be a number, got {raw!r}") from None
            if value <= 0:
                raise ValueError(f"PLAYGROUND_{f.name.upper()} must be positive, got {raw!r}")
            changes[f.name] = value
        return dataclasses.replace(cls(), **changes)


# --- run history ------------------------------------------------------------------------
@dataclass
class RunHistory:
    """What the loss chart and the sample log show, bounded in size.

    Evaluation points are few (one every `eval_freq` steps) and kept as they come; per-batch
    losses are many, so when they pass the bound every other one is dropped (the curve keeps
    its shape, the memory stays flat however long the run).
    """
    max_points: int = 2_000
    max_samples: int = 60
    tokens_seen: list[int] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    step_tokens: list[int] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    _step_stride: int = 1
    _step_count: int = 0
    samples: deque = field(default_factory=deque)
    num_epochs: int | None = None
    tokens_per_epoch: int | None = None
    # Set when the trainer itself flags overfitting (`EvalEvent.overfitting`).
    flagged: bool = False

    def add_eval(self, step: int, tokens_seen: int, train_loss: float, val_loss: float) -> None:
        self.eval_steps.append(int(step))
        self.tokens_seen.append(int(tokens_seen))
        self.train_losses.append(float(train_loss))
        self.val_losses.append(float(val_loss))
        if len(self.tokens_seen) > self.max_points:
            for name in ("eval_steps", "tokens_seen", "train_losses", "val_losses"):
                setattr(self, name, getattr(self, name)[::2])

    def add_step(self, tokens_seen: int, loss: float) -> None:
        self._step_count += 1
        if self._step_count % self._step_stride:
            return
        self.step_tokens.append(int(tokens_seen))
        self.step_losses.append(float(loss))
        if len(self.step_tokens) > self.max_points:
            self.step_tokens, self.step_losses = self.step_tokens[::2], self.step_losses[::2]
            self._step_stride *= 2

    def add_sample(self, label: str, text: str) -> None:
        self.samples.append((label, text))
        while len(self.samples) > self.max_samples:
            self.samples.popleft()

    def sample_log(self, *, newest_first: bool = True) -> str:
        samples = reversed(self.samples) if newest_first else self.samples
        return "\n\n".join(f"[{label}]\n{text}" for label, text in samples)

    @property
    def last_val_loss(self) -> float | None:
        return self.val_losses[-1] if self.val_losses else None

    def overfitting_hint(self, *, patience: int = 3) -> str | None:
        """A sentence when validation loss has risen `patience` evaluations in a row while
        training loss kept falling, or the gap has grown past 1 nat (the book's run shows both
        after a few epochs)."""
        v, t = self.val_losses, self.train_losses
        finite = [(a, b) for a, b in zip(t, v) if math.isfinite(a) and math.isfinite(b)]
        if len(finite) < patience + 1:
            return None
        recent = finite[-(patience + 1):]
        val_rising = all(b2 > b1 for (_, b1), (_, b2) in zip(recent, recent[1:]))
        train_falling = recent[-1][0] < recent[0][0]
        best_val = min(b for _, b in finite)
        gap = finite[-1][1] - finite[-1][0]
        if (val_rising and train_falling) or self.flagged:
            return ("Overfitting: validation loss has risen for "
                    f"{patience} evaluations while training loss keeps falling.")
        if gap > 1.0 and finite[-1][1] > best_val + 0.05:
            return (f"Overfitting: validation loss is {gap:.2f} above training loss and past its "
                    f"best ({best_val:.2f}); the model is memorising the training text.")
        return None


# --- the session's own model --------------------------------------------------------------
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
    """Everything one browser session works with. Thread-safe for the app's handlers."""

    def __init__(self, session_id: str | None = None, *, limits: Limits | None = None):
        self.id = session_id or uuid.uuid4().hex
        self.limits = limits or Limits()
        self.lock = threading.RLock()
        self.last_active = time.monotonic()
        self.corpus_name: str = DEFAULT_CORPUS
        self._text: str | None = None  # loaded lazily: a workspace costs nothing until used
        self.encoding_note: str = "utf-8"
        self._tokenizers: dict[str, Any] = {}
        self._stats_cache: OrderedDict = OrderedDict()
        self.own: OwnedModel | None = None
        self.history = RunHistory(max_points=self.limits.max_history_points,
                                  max_samples=self.limits.max_samples)
        self.job: Job | None = None
        self.closed = False
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

    def close(self) -> None:
        """Stop a running job and drop everything heavy (the session has gone)."""
        with self.lock:
            self.closed = True
            if self.job is not None:
                self.job.request_stop()
            self._drop_checkpoints()
            self.own = None
            self._tokenizers.clear()
            self._stats_cache.clear()
            self._text = None

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
        from .tokenizers import get_tokenizer

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
        from .prepare import prepare_training

        if start_from == "own":
            own = self.own
            if own is None:
                raise WorkspaceError("You have no model to continue yet: train one from scratch or "
                                     "upload a checkpoint first.")
            tok = own.tokenizer
            trainer = prepare_training(self.text, tokenizer=tok, model=own.model, model_config=own.config,
                                       config=train_config)
        elif start_from == "gpt2":
            if base is None:
                raise WorkspaceError("No GPT-2 is loaded yet: load one in the GPT-2 tab, then train.")
            base_model, base_config, tok = base
            window = min(model_config.context_length, base_config.context_length)
            config = base_config.replace(context_length=window)
            self.check_trainable(config)
            model = crop_context(base_model, window)
            trainer = prepare_training(self.text, tokenizer=tok, model=model, model_config=config,
                                       config=train_config)
        elif start_from == "scratch":
            tok = self.tokenizer(tokenizer_kind)
            config = model_config.replace(vocab_size=tok.n_vocab)
            self.check_trainable(config)
            trainer = prepare_training(self.text, tokenizer=tok, model_config=config, config=train_config)
        else:
            raise ValueError(f"start_from must be 'scratch', 'gpt2' or 'own', got {start_from!r}")
        self._install(trainer, tok, label)
        return self.own

    def _install(self, trainer: Any, tokenizer: Any, label: str) -> None:
        config = trainer.model_config
        history = RunHistory(max_points=self.limits.max_history_points, max_samples=self.limits.max_samples)
        history.num_epochs = trainer.schedule.num_epochs
        history.tokens_per_epoch = trainer.batches_per_epoch * trainer.config.batch_size * config.context_length
        st = trainer.state
        for step, tokens, tr, va in zip(st.eval_steps, st.track_tokens_seen, st.train_losses, st.val_losses):
            history.add_eval(step, tokens, tr, va)
        own = OwnedModel(trainer.model, config, tokenizer, label, trainer, corpus_name=self.corpus_name)
        with self.lock:
            self._drop_checkpoints()
            self.own, self.history = own, history

    def load_checkpoint(self, path: str) -> tuple[OwnedModel, str]:
        """Make an uploaded checkpoint (ours, or the book's model.pth) this session's model.

        Returns the model and a note for the user. Read with weights_only (no code runs);
        a model larger than the session may train is refused. A checkpoint of ours that
        stopped early can be resumed on the current text (the text it was trained on).
        """
        from .checkpoint import load_model, read_checkpoint
        from .prepare import prepare_training, select_device
        from .tokenizers import GPT2Tokenizer

        ckpt = read_checkpoint(path)
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
        label = "Uploaded checkpoint" if ckpt.kind == "gpt_core" else "Uploaded book model"
        note = "Use it in Generate and Evaluate, or train it further (Start from: your model)."
        if ckpt.config_inferred:
            note = (f"Its settings were read off the tensor shapes, with {config.n_heads} attention heads "
                    f"of 64 dimensions assumed (as in GPT-2 and the book's 124M). " + note)
        if ckpt.kind == "gpt_core" and ckpt.trainer_state and ckpt.train_config is not None:
            try:
                trainer = prepare_training(self.text, config=ckpt.train_config, resume=ckpt)
            except ValueError as e:
                trainer, note = None, note + f" (Its run cannot be resumed on the current text: {e}.)"
            if trainer is not None:
                self._install(trainer, tok, label)
                if not trainer.finished:
                    note = (f"Its run stopped at step {trainer.state.step + 1:,} of {trainer.total_steps:,}: "
                            f"press Resume to continue it on the current text ({self.corpus_name}).")
                return self.own, note
        model, _ = load_model(ckpt, device=select_device("auto"))
        model.eval()
        own = OwnedModel(model, config, tok, label, None, corpus_name=self.corpus_name)
        with self.lock:
            self._drop_checkpoints()
            self.own = own
            self.history = RunHistory(max_points=self.limits.max_history_points,
                                      max_samples=self.limits.max_samples)
        return own, note

    def save_checkpoint(self) -> str:
        """Write this session's model (with optimizer and training state when it has them) to
        the session's folder and return the path; earlier files of the session are removed."""
        from .checkpoint import save_checkpoint

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

    def files_dir(self):
        """This session's private folder for files it offers for download."""
        from pathlib import Path

        folder = Path(FILES_ROOT) / self.id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _drop_checkpoints(self) -> None:
        import shutil
        from pathlib import Path

        folder = Path(FILES_ROOT) / self.id
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        if self.own is not None:
            self.own.checkpoint_path = None


def crop_context(model: Any, context_length: int) -> Any:
    """A trainable copy of `model` that sees at most `context_length` positions (its first
    rows of `pos_emb`): GPT-2's 1024-token context costs minutes a step on a CPU; the same
    weights with 64 positions train in seconds and read the same text the same way."""
    import torch

    from .model import GPTModel, load_book_state_dict

    config = model.cfg.replace(context_length=context_length)
    state = {}
    for name, tensor in model.state_dict().items():
        if name == "pos_emb.weight":
            tensor = tensor[:context_length]
        elif name.endswith("att.mask"):
            tensor = tensor[:context_length, :context_length]
        state[name] = tensor
    with torch.device("meta"):
        copy = GPTModel(config)  # no random init: every tensor comes from `model`
    copy = copy.to_empty(device=model.device)
    if config.tie_weights:  # to_empty gives every parameter its own storage: tie again
        copy.out_head.weight = copy.tok_emb.weight
    load_book_state_dict(copy, state)
    return copy.requires_grad_(True)


def measure_step_seconds(config: GPTConfig, *, batch_size: int, context_length: int, steps: int = 2) -> float:
    """Seconds one AdamW training step takes for this model size on this machine: a throwaway
    model trained on random ids, the first (warm-up) step not counted."""
    import torch
    import torch.nn.functional as F

    from .bigram import build_model

    context_length = min(context_length, config.context_length)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(config)  # a GPTModel, or the bigram baseline
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.randint(0, config.vocab_size, (batch_size, context_length + 1))
        inputs, targets = x[:, :-1], x[:, 1:]
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            optimizer.zero_grad()
            logits = model(inputs)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - t0)
    return sum(times[1:]) / steps


# --- sessions ---------------------------------------------------------------------------
class WorkspaceRegistry:
    """Session id -> Workspace, with an idle time-to-live and a cap on how many exist.

    A session that makes no request for `session_ttl_s` seconds and runs no job is dropped.
    When the cap is reached the least recently used idle session goes first; if every session
    is training, a new one is refused with a message rather than taking memory from the others.
    """

    def __init__(self, limits: Limits | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.limits = limits or Limits()
        self._clock = clock
        self._lock = threading.Lock()
        self._spaces: OrderedDict[str, Workspace] = OrderedDict()

    def __len__(self) -> int:
        return len(self._spaces)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._spaces

    def get(self, session_id: str) -> Workspace:
        if not isinstance(session_id, str) or not session_id:
            raise WorkspaceError("This request has no session. Reload the page.")
        with self._lock:
            self._sweep_locked()
            ws = self._spaces.get(session_id)
            if ws is None:
                if len(self._spaces) >= self.limits.max_sessions:
                    self._evict_one_locked()
                ws = Workspace(session_id, limits=self.limits)
                self._spaces[session_id] = ws
            self._spaces.move_to_end(session_id)
            ws.last_active = self._clock()
            return ws

    def release(self, session_id: str) -> None:
        """The session has gone (tab closed): stop its job and free its memory."""
        with self._lock:
            ws = self._spaces.pop(session_id, None)
        if ws is not None:
            ws.close()

    def sweep(self) -> int:
        with self._lock:
            return self._sweep_locked()

    def _sweep_locked(self) -> int:
        now = self._clock()
        expired = [sid for sid, ws in self._spaces.items()
                   if not ws.busy and now - ws.last_active > self.limits.session_ttl_s]
        for sid in expired:
            self._spaces.pop(sid).close()
        return len(expired)

    def _evict_one_locked(self) -> None:
        for sid, ws in self._spaces.items():  # oldest first
            if not ws.busy:
                self._spaces.pop(sid).close()
                return
        raise WorkspaceError(
            "The playground is full: every session is training right now. Try again in a minute."
        )


# --- shared pretrained models ----------------------------------------------------------
class SharedModels:
    """Pretrained models loaded once per process and shared read-only by every session.

    Models are put in eval mode with gradients off; sessions that want to train one copy it.
    At most `max_models` stay loaded (least recently used goes first); loading is serialised
    per key, so thirty students pressing "load 124M" at once read the weights once.
    """

    def __init__(self, max_models: int = 2):
        self.max_models = max_models
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._models: OrderedDict[str, tuple[Any, GPTConfig, Any]] = OrderedDict()

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def get(self, key: str) -> tuple[Any, GPTConfig, Any] | None:
        with self._lock:
            entry = self._models.get(key)
            if entry is not None:
                self._models.move_to_end(key)
            return entry

    def load(self, key: str, loader: Callable[[], tuple[Any, Any, Any]]) -> tuple[Any, GPTConfig, Any]:
        """Return the model under `key`, calling `loader()` -> (model, config, tokenizer) once."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            entry = self.get(key)
            if entry is not None:
                return entry
            model, config, tokenizer = loader()
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            entry = (model, config, tokenizer)
            with self._lock:
                self._models[key] = entry
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
            return entry

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
