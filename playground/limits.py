"""What one session may use, and where session files live: read from the environment here,
in the app layer, never by the engine."""
from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


def default_files_root() -> Path:
    """Per-session files offered for download (checkpoints); removed when the session ends."""
    return Path(os.environ.get("PLAYGROUND_FILES_DIR")
                or os.path.join(tempfile.gettempdir(), "gpt-playground-sessions"))


def env_number(name: str, default: Any = None, *, whole: bool = True, unit: str = "",
               environ: Mapping[str, str] | None = None) -> Any:
    """The server setting `name` from the environment: a positive number (whole where
    `whole`), or `default` when it is unset or empty. Every PLAYGROUND_* number is read here,
    so a bad one gets the same sentence, naming the variable, wherever it is read."""
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return default
    kind = ("a whole number" if whole else "a number") + (f" of {unit}" if unit else "")
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        raise ValueError(f"{name} must be {kind}, got {raw!r}") from None
    if not value > 0:  # also refuses nan
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


_SESSION_ID = re.compile(r"[0-9a-f]{32}")


def session_folder(root: str | Path, session_id: str) -> Path:
    """`root / session_id`, for an id this server made (32 hex digits) and nothing else: the
    folder is created and removed with rmtree, so a name that could reach outside the root
    (`..`, `/`, `.`) must never get here. Checked again after resolving links."""
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise ValueError(f"not a session id made by this server: {session_id!r:.80}")
    root = Path(root).resolve()
    folder = (root / session_id).resolve()
    if folder.parent != root:
        raise ValueError(f"session folder {folder} is not directly inside {root}")
    return folder


@dataclass(frozen=True)
class Limits:
    """What one session may use. Defaults suit a 2-core, 16 GB server shared by a class."""
    max_corpus_chars: int = 5_000_000
    max_sessions: int = 200
    # One address may hold this many (a class behind one NAT address still fits); beyond it
    # that address's own sessions without work make room, else a new one is refused.
    max_sessions_per_client: int = 60
    # An idle session (no request, no running job) is dropped after this many seconds.
    session_ttl_s: float = 3 * 3600
    # Models a session may own and train: the book's 124M (163M with its separate head) fits.
    max_train_parameters: int = 200_000_000
    # Positions a model may see, trained or uploaded: each layer holds a context x context
    # mask, and a step's attention grows with its square (GPT-2 reads 1,024).
    max_context_length: int = 4096
    max_layers: int = 96  # GPT-2 XL has 48
    max_history_points: int = 2_000
    max_samples: int = 60
    max_new_tokens: int = 500
    max_score_chars: int = 20_000

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Limits":
        """Overrides from PLAYGROUND_<FIELD> environment variables (e.g. PLAYGROUND_MAX_SESSIONS)."""
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = env_number(f"PLAYGROUND_{f.name.upper()}", whole=f.type not in ("float", float), environ=environ)
            if value is not None:
                changes[f.name] = value
        return dataclasses.replace(cls(), **changes)
