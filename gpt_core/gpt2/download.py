"""Resumable, verified, locked downloads of named files, standard library only.

Nothing here knows GPT-2 (release.py says which files, from where, of what size): this is
the HTTP leaf. Each file streams into `NAME.part` and is renamed into place only when
complete and checked, so a file with its final name is always whole. An interrupted download
resumes with an HTTP Range request when the server answers 206 and starts over when it
answers 200. The next mirror is tried when one fails. A file lock makes a second process
(another student's session) wait and then find the files already there. A file that passed
its checks has its sha256 recorded beside it (VERIFIED), so a later change is detected.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

MANIFEST = ".download.json"
VERIFIED = ".verified.json"
LOCK_NAME = ".download.lock"
_CHUNK = 1 << 20
_MARKUP = (b"<!doctype", b"<html", b"<?xml", b"<error", b"<head", b"<body")


class DownloadError(RuntimeError):
    """A file could not be fetched; the message names the URL(s) and what to do next.

    `offline` is True when no server answered at all (no network, DNS, refused connections),
    so an app can say so in a sentence and keep the URLs for its log."""

    def __init__(self, message: str, *, offline: bool = False):
        super().__init__(message)
        self.offline = offline


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report: this file's bytes, and all files' (`total` may be an estimate until
    every file's size is known: `total_exact`)."""
    file: str
    file_done: int
    file_total: int | None
    done: int
    total: int
    status: str  # "downloading", "skipped", "waiting" (for another process), "retrying", "done"
    message: str = ""
    total_exact: bool = True


ProgressFn = Callable[[DownloadProgress], None]


class _Permanent(Exception):
    """This URL will not serve the file (404, an HTML page, wrong size): try the next one."""


class _Transient(Exception):
    """Worth retrying (timeout, dropped connection, 5xx); the .part file is kept for resuming.
    `unreached`: no server answered (nothing was received)."""

    def __init__(self, message: str, *, unreached: bool = False):
        super().__init__(message)
        self.unreached = unreached


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


# --- checks -------------------------------------------------------------------------------
def looks_like_markup(head: bytes) -> bool:
    """An HTML or XML error page (what storage services send for 403/404), not a model file."""
    return head.lstrip()[:16].lower().startswith(_MARKUP)



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


def _read_verified(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / VERIFIED).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_verified(folder: Path, record: Mapping[str, Any]) -> None:
    tmp = folder / (VERIFIED + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(tmp, folder / VERIFIED)


def record_verified(path: str | os.PathLike, *, sha256: str | None = None) -> None:
    """Record that the file at `path` was verified: its sha256 (computed when not given) and
    stamp, in VERIFIED beside it. Call only after the file passed its checks."""
    path = Path(path)
    digest = sha256 or sha256_file(path)
    with file_lock(path.parent / (VERIFIED + ".lock"), what="the verification record"):
        record = _read_verified(path.parent)
        record[path.name] = {"sha256": digest, "stamp": _stamp(path)}
        _write_verified(path.parent, record)


def forget_verified(path: Path) -> None:
    with file_lock(path.parent / (VERIFIED + ".lock"), what="the verification record"):
        record = _read_verified(path.parent)
        if record.pop(path.name, None) is not None:
            _write_verified(path.parent, record)


def is_verified(path: str | os.PathLike, *, size: int | None = None, sha256: str | None = None) -> bool:
    """Whether the file at `path` is the one recorded as verified (unchanged since), and has
    the `size` and `sha256` given (what the publisher announced, where known)."""
    path = Path(path)
    entry = _read_verified(path.parent).get(path.name)
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


# --- one HTTP attempt ---------------------------------------------------------------------
def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 1000); 'bytes */1000' -> (None, 1000)."""
    m = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def _fetch(url: str, name: str, part: Path, expected: int | None, *, timeout: float, deadline: float | None,
           on_bytes: Callable[[int, int | None], None]) -> int:
    """Bring `part` to the complete file from `url`, resuming when possible. Returns its size."""
    offset = part.stat().st_size if part.exists() else 0
    if expected is not None and offset > expected:
        offset = 0
    headers = {"User-Agent": "gpt-playground/1.0", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    sock_timeout = timeout if deadline is None else max(0.05, min(timeout, deadline - time.monotonic()))
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=sock_timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            _, total = _content_range(e.headers.get("Content-Range"))
            if total == offset:
                return offset  # the .part already holds the whole file
            part.unlink()
            raise _Transient(f"range {offset}- not satisfiable; starting the file over") from None
        if e.code in (400, 401, 403, 404, 410):
            raise _Permanent(f"HTTP {e.code} {e.reason}") from None
        raise _Transient(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, HTTPException, OSError) as e:
        reason = getattr(e, "reason", e)
        raise _Transient(f"could not connect ({reason})", unreached=True) from None
    with resp:
        ctype = resp.headers.get("Content-Type", "")
        if "html" in ctype.lower():
            raise _Permanent(f"served an HTML page ({ctype}) instead of {name}")
        if resp.status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                offset = 0  # a range we did not ask for: start over rather than guess
                if start != 0:
                    raise _Transient("server answered with the wrong byte range")
        else:  # 200: the server ignored Range, so the body is the whole file
            offset = 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if expected is not None and total is not None and total != expected:
            raise _Permanent(f"server reports {total:,} bytes for {name}, the release has {expected:,}")
        total = expected if total is None else total
        done = offset
        on_bytes(done, total)
        with open(part, "r+b" if offset else "wb") as f:
            f.seek(offset)
            f.truncate()
            first = True
            while True:
                if deadline is not None and time.monotonic() > deadline:
                    raise _Transient("the overall deadline passed")
                try:
                    chunk = resp.read1(_CHUNK)  # what has arrived, so a stall keeps what came before
                except (socket.timeout, TimeoutError):
                    raise _Transient(f"no data for {sock_timeout:.0f} s (stalled)") from None
                except (HTTPException, OSError) as e:
                    raise _Transient(f"connection broken ({type(e).__name__}: {e})") from None
                if not chunk:
                    break
                if first and offset == 0 and looks_like_markup(chunk[:64]):
                    f.close()
                    part.unlink()
                    raise _Permanent(f"served an HTML/XML page instead of {name}")
                first = False
                f.write(chunk)
                done += len(chunk)
                on_bytes(done, total)
    if total is not None and done < total:
        raise _Transient(f"connection closed after {done:,} of {total:,} bytes")
    if total is not None and done > total:
        part.unlink()
        raise _Permanent(f"received {done:,} bytes, more than the {total:,} announced")
    return done


# --- the download -------------------------------------------------------------------------
def _read_manifest(folder: Path) -> dict[str, int]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
        return {k: v for k, v in data.items() if isinstance(v, int)}
    except (OSError, ValueError, AttributeError):
        return {}


def _write_manifest(folder: Path, manifest: dict[str, int]) -> None:
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, folder / MANIFEST)



def download_files(folder: str | os.PathLike, names: Sequence[str], bases: Sequence[str], *, what: str,
                   expected: Mapping[str, int], estimate: Mapping[str, int],
                   sha256: Mapping[str, str] | None = None,
                   check: Callable[[str, Path], str | None] = lambda name, path: None, hint: str = "",
                   progress: ProgressFn | None = None, timeout: float = 30.0, retries: int = 5,
                   deadline: float | None = None, backoff: float = 1.0) -> Path:
    """Bring every file of `names` into `folder`, each from `BASE/NAME` for the first of
    `bases` that serves it. `expected` holds the exact sizes known ahead (others are checked
    against what the server announces), `estimate` sizes for progress only, `sha256` the known
    checksums; `check(name, path)` says why a complete file is not the one wanted (or None).

    Complete, verified files are skipped. `timeout` is per network operation, `retries` the
    transient failures allowed per file (resuming each time, with backoff 1, 2, 4 ... s times
    `backoff`), `deadline` an overall limit in seconds. `what` names the files in messages
    and `hint` ends the error. Returns the folder. Raises DownloadError."""
    if timeout <= 0 or retries < 0 or (deadline is not None and deadline <= 0):
        raise ValueError("timeout and deadline must be positive and retries at least 0")
    if not bases:
        raise ValueError("base_urls is empty")
    end = None if deadline is None else time.monotonic() + deadline
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    known_sha = sha256 or {}
    report = progress or (lambda p: None)
    sizes: dict[str, int | None] = {}
    finished: dict[str, int] = {}

    def emit(name: str, file_done: int, file_total: int | None, status: str, message: str = "") -> None:
        exact = all(sizes.get(n) is not None for n in names)
        total = sum(sizes.get(n) or estimate.get(n, 0) for n in names)
        done = sum(finished.values()) + (0 if name in finished else file_done)
        report(DownloadProgress(name, file_done, file_total, done, max(total, done), status, message, exact))

    def skip(name: str, have: int) -> None:
        sizes[name] = finished[name] = have
        emit(name, have, have, "skipped", f"{name} is already complete")

    with file_lock(folder / LOCK_NAME, deadline=end, what=f"{what} in {folder}",
                   on_wait=lambda: emit(names[0], 0, None, "waiting",
                                        "another process is downloading this model; waiting for it")):
        manifest = _read_manifest(folder)
        for name in names:
            sizes[name] = expected.get(name, manifest.get(name))
        for name in names:
            dest, part = folder / name, folder / (name + ".part")
            want = expected.get(name)
            if dest.exists():
                have = dest.stat().st_size
                if is_verified(dest, size=want, sha256=known_sha.get(name)):
                    skip(name, have)
                    continue
                if name in _read_verified(folder):
                    # Verified once and changed since: its bytes are not the release's; fetch it afresh.
                    dest.unlink()
                    forget_verified(dest)
                elif have == (want if want is not None else manifest.get(name)) and _problem(name, dest, check) is None:
                    record_verified(dest)  # e.g. fetched by another program: verified by its size
                    skip(name, have)
                    continue
                # Not known to be whole (e.g. left by another downloader): resume it as a .part.
                elif not part.exists() or part.stat().st_size < have:
                    os.replace(dest, part)
                else:
                    dest.unlink()
            urls = [f"{b.rstrip('/')}/{name}" for b in bases]
            got = _download_file(f"{what} file {name}", name, part, want, urls, check=check, hint=hint,
                                 timeout=timeout, retries=retries, deadline=end, backoff=backoff,
                                 emit=emit, sizes=sizes)
            digest = sha256_file(part)
            if known_sha.get(name) not in (None, digest):
                part.unlink()
                raise DownloadError(f"{what} file {name} does not have the published checksum; it was not "
                                    "kept. Try again later or use another mirror.")
            os.replace(part, dest)
            record_verified(dest, sha256=digest)
            sizes[name] = finished[name] = got
            manifest[name] = got
            _write_manifest(folder, manifest)
            emit(name, got, got, "done", f"{name} complete")
    return folder


def _download_file(what: str, name: str, part: Path, expected: int | None, urls: list[str], *,
                   check: Callable[[str, Path], str | None], hint: str, timeout: float, retries: int,
                   deadline: float | None, backoff: float, emit: Callable[..., None],
                   sizes: dict[str, int | None]) -> int:
    failures: list[str] = []
    transient = 0
    reached = False  # did any server answer at all?
    started_over: set[str] = set()
    i = 0
    while urls:
        url = urls[i % len(urls)]
        try:
            def on_bytes(done: int, total: int | None) -> None:
                if total is not None:
                    sizes[name] = total
                emit(name, done, total, "downloading", url)
            resumed = part.exists() and part.stat().st_size > 0
            got = _fetch(url, name, part, expected, timeout=timeout, deadline=deadline, on_bytes=on_bytes)
            problem = _problem(name, part, check)
            if problem and resumed and url not in started_over:
                # What the part began with (e.g. a foreign file left in the folder) was not the
                # start of this file: fetch it again from the first byte.
                part.unlink()
                started_over.add(url)
                failures.append(f"{url}: {problem} (resumed from a partial file; starting over)")
                continue
            if problem:
                part.unlink()
                raise _Permanent(problem)
            return got
        except _Permanent as e:
            reached = True
            failures.append(f"{url}: {e}")
            urls.remove(url)  # this URL will not serve it; do not wait, try the next
            continue
        except _Transient as e:
            reached = reached or not e.unreached
            failures.append(f"{url}: {e}")
            transient += 1
            out_of_time = deadline is not None and time.monotonic() >= deadline
            if transient > retries or out_of_time:
                break
            pause = min(backoff * 2 ** (transient - 1), 30.0)
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            emit(name, part.stat().st_size if part.exists() else 0, expected, "retrying",
                 f"{url} failed ({e}); retrying in {pause:.1f} s")
            time.sleep(pause)
            i += 1  # next attempt goes to the next mirror; the .part resumes there
    kept = part.exists() and part.stat().st_size > 0
    raise DownloadError(
        f"could not download {what}.\n  " + "\n  ".join(failures[-6:]) + "\n"
        + ("The part already fetched is kept; run the same command again to resume.\n" if kept else "")
        + "Check the internet connection. " + hint,
        offline=not reached,
    )


def _problem(name: str, path: Path, check: Callable[[str, Path], str | None]) -> str | None:
    """Why the complete file at `path` is not `name`: an error page, or what `check` finds."""
    with open(path, "rb") as f:
        if looks_like_markup(f.read(512)):
            return "it is an HTML/XML page (an error message from the server), not the model file"
    return check(name, path)
