"""One workspace per browser session: what one student works on.

A `Workspace` holds the corpus, the tokenizer, the student's own model (trained here or
uploaded) with its optimizer, the history of their runs and the handle of a running
training job with its stop flag. The registry in `server.py` hands each session its own.

No gradio here: the app resolves a session to a workspace and calls these methods; tests
use them directly.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpt_core.corpus import DEFAULT_CORPUS, SAMPLE_CORPORA, CorpusError, CorpusStats, corpus_stats, decode_text, load_sample
from gpt_core.tokenizers import get_tokenizer

from .errors import WorkspaceError
from .history import RunHistory
from .limits import Limits, default_files_root
from .memory import MemoryBudget
from .own_model import OwnedModel, OwnModelStore, Spilled, resident_bytes
from .run_builder import RunBuilder
from .runs import RunArchive
from .session_files import CheckpointFiles

__all__ = ["BoundedDict", "Job", "OwnedModel", "Spilled", "Workspace", "WorkspaceError", "resident_bytes"]


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


class Workspace(OwnModelStore, RunBuilder, CheckpointFiles):
    """Everything one browser session works with. Thread-safe for the app's handlers.

    `id` is made here, never taken from the client: Gradio's session hash is chosen by
    whoever sends the request, so it only ever serves as a key in the registry. The
    session's files live in `files_root / id`. Its own model (own_model.py), its runs
    (run_builder.py) and its checkpoint files (session_files.py) are its parts.
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
        # Measured costs of a run, by (model config, batch size): (gpt_core.speed.RunCosts, when).
        self.run_costs: BoundedDict = BoundedDict(32)
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

    # --- its share of the server's memory budget ------------------------------------------------
    def key(self, part: str) -> str:
        """This session's key for `part` in the server's memory budget."""
        return f"{self.id}:{part}"

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

    def reserved(self) -> int:
        """What this session holds in the server's budget now, all its parts together."""
        return self.budget.held_by(self.key("")) if self.budget is not None else 0

    @contextmanager
    def reading(self, path: str | os.PathLike, what: str, *, at_most: int | None = None):
        """Around reading a checkpoint file: its tensors are memory-mapped, and the pages read
        are resident beside the model built from them until the loaded object is dropped
        (inside the block). The file's size (or `at_most`, past which the read is refused
        anyway) is reserved for that long."""
        size = os.path.getsize(path)
        self.reserve("reading", size if at_most is None else min(size, at_most), what)
        try:
            yield
        finally:
            self.release("reading")

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
            self.drop_generation_copies()  # the run writes (or replaces) the weights they copy
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

