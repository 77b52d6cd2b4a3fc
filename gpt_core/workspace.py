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
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable

from .config import GPTConfig
from .corpus import DEFAULT_CORPUS, SAMPLE_CORPORA, CorpusError, CorpusStats, corpus_stats, decode_text, load_sample


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

    def sample_log(self) -> str:
        return "\n\n".join(f"[{label}]\n{text}" for label, text in self.samples)

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
        if val_rising and train_falling:
            return ("Overfitting: validation loss has risen for "
                    f"{patience} evaluations while training loss keeps falling.")
        if gap > 1.0 and finite[-1][1] > best_val + 0.05:
            return (f"Overfitting: validation loss is {gap:.2f} above training loss and past its "
                    f"best ({best_val:.2f}); the model is memorising the training text.")
        return None


# --- the session's own model --------------------------------------------------------------
@dataclass
class OwnedModel:
    """A model this session owns (trained here or uploaded) and what it needs to run."""
    model: Any  # GPTModel
    config: GPTConfig
    tokenizer: Any
    label: str
    optimizer: Any = None
    # Opaque resume state from the trainer (position in the data, RNG), if it stopped early.
    resume_state: Any = None
    train_config: Any = None
    corpus_name: str | None = None


@dataclass
class Job:
    """A running training job. `stop` is the cooperative stop flag the trainer polls."""
    id: str
    label: str
    started: float
    stop: threading.Event = field(default_factory=threading.Event)

    def request_stop(self) -> None:
        self.stop.set()


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
