"""What the whole server shares: the session registry and the GPT-2 models loaded once.

`WorkspaceRegistry` hands each session its own `Workspace`, evicts idle ones and caps how many
exist, so memory stays bounded however many people connect. Pretrained GPT-2 models are
loaded once per process into `SharedModels` and only ever read.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from gpt_core.config import GPTConfig

from . import generation_copies
from .limits import Limits, default_files_root
from .memory import MemoryBudget, release_freed_memory
from .session import Workspace, WorkspaceError

# Gradio's session hashes are short random strings; anything longer is not one.
MAX_SESSION_KEY = 128


class WorkspaceRegistry:
    """Session hash -> Workspace, with an idle time-to-live, a cap on how many exist and a cap
    on how many one client may hold.

    Nothing a student made is dropped to make room: when the registry is full, the least
    recently used idle session that holds no work (no model, a bundled text) goes first; a
    session with work is never evicted, and under memory pressure its model is spilled to disk
    instead (`spill_idle`) and read back when its student returns. A session that makes no
    request for `session_ttl_s` seconds and runs no job is dropped, files and all.
    """

    def __init__(self, limits: Limits | None = None, *, files_root: str | Path | None = None,
                 budget: MemoryBudget | None = None, clock: Callable[[], float] = time.monotonic):
        self.limits = limits or Limits()
        self.files_root = Path(files_root) if files_root is not None else default_files_root()
        self.budget = budget
        if budget is not None:
            budget.make_room = self.spill_idle
        self._clock = clock
        self._lock = threading.RLock()
        self._spaces: OrderedDict[str, Workspace] = OrderedDict()
        self._clients: dict[str, str] = {}  # session hash -> the client address that made it

    def __len__(self) -> int:
        return len(self._spaces)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._spaces

    def get(self, session_id: str, *, client: str | None = None) -> Workspace:
        """The workspace of the client that calls itself `session_id` (Gradio's session hash).
        The hash is only a key here: the workspace's own id, and so its folder, is made by
        the server. `client` (the address the request came from) bounds how many sessions
        one client can open."""
        if not isinstance(session_id, str) or not session_id or len(session_id) > MAX_SESSION_KEY:
            raise WorkspaceError("This request has no valid session. Reload the page.")
        with self._lock:
            dropped = self._sweep_locked()
            ws = self._spaces.get(session_id)
            if ws is None:
                self._make_room_for(client)  # drops only sessions that hold nothing heavy
                ws = Workspace(limits=self.limits, files_root=self.files_root, budget=self.budget)
                self._spaces[session_id] = ws
                if client:
                    self._clients[session_id] = client
            self._spaces.move_to_end(session_id)
            ws.last_active = self._clock()
        if dropped:
            release_freed_memory()
        return ws

    def release(self, session_id: str) -> None:
        """The session has gone (tab closed): stop its job and free its memory.

        Its optimizer state and other blocks made during its runs may lie in the middle of a
        malloc heap (a thread's arena), where freeing them returns nothing to the system by
        itself; release_freed_memory hands their pages back now."""
        with self._lock:
            ws = self._spaces.pop(session_id, None)
            self._clients.pop(session_id, None)
        if ws is not None:
            ws.close()
            release_freed_memory()

    def sweep(self) -> int:
        with self._lock:
            dropped = self._sweep_locked()
        if dropped:
            release_freed_memory()
        return dropped

    def spill_idle(self, nbytes: int, exclude: str | None = None) -> int:
        """Spill the models of idle sessions (least recently used first, never `exclude`'s, the
        workspace id of the session asking) to disk until `nbytes` are freed; returns the bytes
        freed. A session being served or training is never spilled."""
        with self._lock:
            candidates = [ws for ws in self._spaces.values() if ws.id != exclude]
        freed = 0
        for ws in candidates:
            if freed >= nbytes:
                break
            freed += ws.spill()
        if freed:
            release_freed_memory()
        return freed

    def _sweep_locked(self) -> int:
        now = self._clock()
        expired = [sid for sid, ws in self._spaces.items()
                   if not ws.busy and not ws.in_use and now - ws.last_active > self.limits.session_ttl_s]
        for sid in expired:
            self._drop_locked(sid)
        return len(expired)

    def _drop_locked(self, session_id: str) -> None:
        self._clients.pop(session_id, None)
        self._spaces.pop(session_id).close()

    def _make_room_for(self, client: str | None) -> None:
        """Before a new session: keep within the caps by dropping sessions that hold no work
        (the client's own first), or refuse."""
        if client:
            mine = [sid for sid in self._spaces if self._clients.get(sid) == client]
            if len(mine) >= self.limits.max_sessions_per_client and not self._drop_empty_locked(mine):
                raise WorkspaceError(
                    f"Too many sessions from your address ({len(mine)}). Close some tabs of the "
                    "playground, or wait for them to expire, then reload the page.")
        if len(self._spaces) >= self.limits.max_sessions and not self._drop_empty_locked(list(self._spaces)):
            raise WorkspaceError(
                f"The playground is full: {len(self._spaces)} sessions hold work on this server. "
                "Try again in a few minutes.")

    def _drop_empty_locked(self, session_ids: list[str]) -> bool:
        for sid in session_ids:  # oldest first: the registry is kept in order of use
            ws = self._spaces.get(sid)
            if ws is not None and not ws.holds_work and not ws.in_use:
                self._drop_locked(sid)
                return True
        return False


class SharedModels:
    """Pretrained models loaded once per process and shared read-only by every session.

    Models are put in eval mode with gradients off; sessions that want to train one copy it.
    At most `max_models` stay loaded (least recently used goes first); loading is serialised
    per key, so thirty students pressing "load 124M" at once read the weights once. Each
    loaded model holds its float32 weights in the server's memory budget.
    """

    def __init__(self, max_models: int = 2, *, budget: MemoryBudget | None = None):
        self.max_models = max_models
        self.budget = budget
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

    @staticmethod
    def budget_key(key: str) -> str:
        """The memory budget's key of the model under `key` (its weights; generation's copies of
        them are held under it too, generation_copies.py)."""
        return f"shared:{key}"

    def load(self, key: str, loader: Callable[[], tuple[Any, Any, Any]], *,
             nbytes: int = 0) -> tuple[Any, GPTConfig, Any]:
        """Return the model under `key`, calling `loader()` -> (model, config, tokenizer) once.
        `nbytes` (the weights) is reserved in the budget before `loader` runs."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            entry = self.get(key)
            if entry is not None:
                return entry
            budget_key = self.budget_key(key)
            if self.budget is not None:
                self.budget.reserve(budget_key, nbytes, what=f"{key}, shared by everyone")
            try:
                model, config, tokenizer = loader()
            except BaseException:
                if self.budget is not None:
                    self.budget.release(budget_key)
                raise
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            entry = (model, config, tokenizer)
            with self._lock:
                self._models[key] = entry
                while len(self._models) > self.max_models:
                    old, (old_model, _, _) = self._models.popitem(last=False)
                    # A generation still reading the old model's copies keeps their reservation.
                    generation_copies.drop(self.budget, self.budget_key(old), old_model)
                    if self.budget is not None:
                        self.budget.release(self.budget_key(old))
            return entry

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            if self.budget is not None:
                self.budget.release_prefix("shared:")
