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

from .limits import Limits, default_files_root
from .session import Workspace, WorkspaceError

# Gradio's session hashes are short random strings; anything longer is not one.
MAX_SESSION_KEY = 128


class WorkspaceRegistry:
    """Session id -> Workspace, with an idle time-to-live and a cap on how many exist.

    A session that makes no request for `session_ttl_s` seconds and runs no job is dropped.
    When the cap is reached the least recently used idle session goes first; if every session
    is training, a new one is refused with a message rather than taking memory from the others.
    """

    def __init__(self, limits: Limits | None = None, *, files_root: str | Path | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.limits = limits or Limits()
        self.files_root = Path(files_root) if files_root is not None else default_files_root()
        self._clock = clock
        self._lock = threading.Lock()
        self._spaces: OrderedDict[str, Workspace] = OrderedDict()

    def __len__(self) -> int:
        return len(self._spaces)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._spaces

    def get(self, session_id: str) -> Workspace:
        """The workspace of the client that calls itself `session_id` (Gradio's session hash).
        The hash is only a key here: the workspace's own id, and so its folder, is made by
        the server."""
        if not isinstance(session_id, str) or not session_id or len(session_id) > MAX_SESSION_KEY:
            raise WorkspaceError("This request has no valid session. Reload the page.")
        with self._lock:
            self._sweep_locked()
            ws = self._spaces.get(session_id)
            if ws is None:
                if len(self._spaces) >= self.limits.max_sessions:
                    self._evict_one_locked()
                ws = Workspace(limits=self.limits, files_root=self.files_root)
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
