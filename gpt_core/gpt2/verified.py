"""Which files on disk are whole: a cross-process lock, sha256, and the verification record.

A file that passed its checks has its sha256 and a stamp (size, mtime, ctime, inode) recorded
beside it in VERIFIED, so a later change is detected without hashing it again. Standard
library only, like the rest of the download leaf (fetch.py, download.py).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

VERIFIED = ".verified.json"
_CHUNK = 1 << 20  # bytes hashed at a time


class DownloadError(RuntimeError):
    """A file could not be fetched; the message names the URL(s) and what to do next.
    Defined here, below the lock, because a lock still busy at the deadline ends a download.

    `offline` is True when no server answered at all (no network, DNS, refused connections),
    so an app can say so in a sentence and keep the URLs for its log."""

    def __init__(self, message: str, *, offline: bool = False):
        super().__init__(message)
        self.offline = offline


# --- locking ------------------------------------------------------------------------------
@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, deadline: float | None = None,
              on_wait: Callable[[], None] | None = None, what: str = "this model") -> Iterator[None]:
    """Exclusive cross-process lock (fcntl.flock on `path`); waits, up to `deadline` (monotonic)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one process at a time is then up to the user
        yield
        return
    with open(path, "a+b") as f:
        waited = False
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            if deadline is not None and time.monotonic() > deadline:
                raise DownloadError(f"another process is still busy with {what} (lock {path}); try again later")
            time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# --- verified files: sizes checked, checksums recorded ------------------------------------
def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _stamp(path: Path) -> list[int]:
    """What changes whenever the file's bytes do. ctime cannot be set back by a process
    (utime updates it), so a rewritten file with its old mtime still gets a new stamp."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def read_verified(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / VERIFIED).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace the JSON file at `path` whole: a reader sees the old record or the new one."""
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def record_verified(path: str | os.PathLike, *, sha256: str | None = None) -> None:
    """Record that the file at `path` was verified: its sha256 (computed when not given) and
    stamp, in VERIFIED beside it. Call only after the file passed its checks."""
    path = Path(path)
    digest = sha256 or sha256_file(path)
    with file_lock(path.parent / (VERIFIED + ".lock"), what="the verification record"):
        record = read_verified(path.parent)
        record[path.name] = {"sha256": digest, "stamp": _stamp(path)}
        write_json(path.parent / VERIFIED, record)


def forget_verified(path: Path) -> None:
    with file_lock(path.parent / (VERIFIED + ".lock"), what="the verification record"):
        record = read_verified(path.parent)
        if record.pop(path.name, None) is not None:
            write_json(path.parent / VERIFIED, record)


def is_verified(path: str | os.PathLike, *, size: int | None = None, sha256: str | None = None) -> bool:
    """Whether the file at `path` is the one recorded as verified (unchanged since), and has
    the `size` and `sha256` given (what the publisher announced, where known)."""
    path = Path(path)
    entry = read_verified(path.parent).get(path.name)
    if not isinstance(entry, dict) or not path.is_file():
        return False
    if size is not None and path.stat().st_size != size:
        return False
    if sha256 is not None and entry.get("sha256") != sha256:
        return False
    if entry.get("stamp") == _stamp(path):
        return True
    # Touched since (copied back, metadata changed): trusted again only with the same bytes.
    if sha256_file(path) != entry.get("sha256"):
        return False
    record_verified(path, sha256=entry["sha256"])
    return True
