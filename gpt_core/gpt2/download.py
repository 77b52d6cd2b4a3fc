"""Resumable, verified, locked downloads of named files, standard library only.

Nothing here knows GPT-2 (release.py says which files, from where, of what size): this is
the download leaf, over fetch.py (one HTTP attempt) and verified.py (locks and records).
Each file streams into `NAME.part` and is renamed into place only when complete and checked,
so a file with its final name is always whole. The next mirror is tried when one fails. A
file lock makes a second process (another student's session) wait and then find the files
already there. A file that passed its checks is recorded as verified, so a later change is
detected.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .fetch import Permanent, Transient, fetch, looks_like_markup
from .verified import (VERIFIED, DownloadError, file_lock, forget_verified, is_verified, read_verified,
                       record_verified, sha256_file, write_json)

MANIFEST = ".download.json"
LOCK_NAME = ".download.lock"
# Importable from here as before the leaf was split: the error, the page check, the record's name.
__all__ = ["MANIFEST", "LOCK_NAME", "VERIFIED", "DownloadError", "DownloadProgress", "ProgressFn",
           "download_files", "looks_like_markup"]


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


def _read_manifest(folder: Path) -> dict[str, int]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
        return {k: v for k, v in data.items() if isinstance(v, int)}
    except (OSError, ValueError, AttributeError):
        return {}


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
                if name in read_verified(folder):
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
            write_json(folder / MANIFEST, manifest)
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
            got = fetch(url, name, part, expected, timeout=timeout, deadline=deadline, on_bytes=on_bytes)
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
                raise Permanent(problem)
            return got
        except Permanent as e:
            reached = True
            failures.append(f"{url}: {e}")
            urls.remove(url)  # this URL will not serve it; do not wait, try the next
            continue
        except Transient as e:
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
