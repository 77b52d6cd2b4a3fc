"""Download OpenAI's GPT-2 release: resumable, verified, locked, standard library only.

Each of the 7 files streams into `NAME.part` and is renamed into place only when complete and
checked, so a file with its final name is always whole. An interrupted download resumes with
an HTTP Range request when the server answers 206 and starts over when it answers 200. The
book's backup mirror is tried when OpenAI's storage fails. A file lock makes a second process
(another student's session) wait and then find the files already there.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

GPT2_MODEL_SIZES = ("124M", "355M", "774M", "1558M")
GPT2_FILES = ("checkpoint", "encoder.json", "hparams.json", "model.ckpt.data-00000-of-00001",
              "model.ckpt.index", "model.ckpt.meta", "vocab.bpe")
# OpenAI's public storage first, then the backup mirror of "Build a Large Language Model (From Scratch)".
DATA_NAME = "model.ckpt.data-00000-of-00001"
GPT2_BASE_URLS = ("https://openaipublic.blob.core.windows.net/gpt-2/models",
                  "https://f001.backblazeb2.com/file/LLMs-from-scratch/gpt2")
# Exact sizes of the 124M release; other sizes are checked against Content-Length.
KNOWN_SIZES = {"124M": {
    "checkpoint": 77, "encoder.json": 1_042_301, "hparams.json": 90,
    "model.ckpt.data-00000-of-00001": 497_759_232, "model.ckpt.index": 5_215,
    "model.ckpt.meta": 471_155, "vocab.bpe": 456_318,
}}
# sha256 of the release files where they are known. OpenAI publishes none, and a checksum is
# never guessed: a file is verified by its size, its sha256 is then recorded beside it
# (VERIFIED), and a later change of the file is detected by that record.
KNOWN_SHA256: dict[str, dict[str, str]] = {}
# For progress only (never a check): the data file holds the float32 weights, and the
# vocabulary files are the same for every size.
ESTIMATED_DATA_BYTES = {"355M": 1_419_292_672, "774M": 3_096_120_320, "1558M": 6_230_444_800}
MANIFEST = ".download.json"
VERIFIED = ".verified.json"
LOCK_NAME = ".download.lock"
_CHUNK = 1 << 20
_MARKUP = (b"<!doctype", b"<html", b"<?xml", b"<error", b"<head", b"<body")
_OFFLINE_HINT = ("If this machine is offline, copy the GPT-2 files from a machine that has them and "
                 "import the folder: python -m gpt_core import FOLDER")


def default_models_dir() -> Path:
    """$GPT2_MODELS_DIR, else ~/.cache/gpt-playground/gpt2."""
    env = os.environ.get("GPT2_MODELS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "gpt-playground" / "gpt2"


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


def _check_content(name: str, path: Path) -> str | None:
    """Why the file at `path` cannot be the release's `name`, or None if it can."""
    with open(path, "rb") as f:
        head = f.read(512)
    if looks_like_markup(head):
        return "it is an HTML/XML page (an error message from the server), not the model file"
    if name == "hparams.json":
        try:
            hp = json.loads(path.read_bytes())
            if not isinstance(hp, dict) or "n_embd" not in hp:
                return "hparams.json has no n_embd"
        except ValueError:
            return "hparams.json is not valid JSON"
    if name == "checkpoint" and not head.startswith(b"model_checkpoint_path"):
        return "it does not start with model_checkpoint_path"
    return None


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


def record_verified(path: str | os.PathLike, *, sha256: str | None = None) -> None:
    """Record that the file at `path` was verified: its sha256 (computed when not given) and
    stamp, in VERIFIED beside it. Call only after the file passed its checks."""
    path = Path(path)
    digest = sha256 or sha256_file(path)
    with file_lock(path.parent / (VERIFIED + ".lock"), what="the verification record"):
        record = _read_verified(path.parent)
        record[path.name] = {"sha256": digest, "stamp": _stamp(path)}
        tmp = path.parent / (VERIFIED + f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp, path.parent / VERIFIED)


def forget_verified(path: Path) -> None:
    with file_lock(path.parent / (VERIFIED + ".lock"), what="the verification record"):
        record = _read_verified(path.parent)
        if record.pop(path.name, None) is not None:
            tmp = path.parent / (VERIFIED + f".tmp-{os.getpid()}")
            tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
            os.replace(tmp, path.parent / VERIFIED)


def is_verified(path: str | os.PathLike, *, size: str | None = None) -> bool:
    """Whether the file at `path` is the one recorded as verified (unchanged since), and, for a
    release file of `size`, matches the release's known size and checksum."""
    path = Path(path)
    entry = _read_verified(path.parent).get(path.name)
    if not isinstance(entry, dict) or not path.is_file():
        return False
    known_size = KNOWN_SIZES.get(size or "", {}).get(path.name)
    known_sha = KNOWN_SHA256.get(size or "", {}).get(path.name)
    if known_size is not None and path.stat().st_size != known_size:
        return False
    if known_sha is not None and entry.get("sha256") != known_sha:
        return False
    if entry.get("stamp") == _stamp(path):
        return True
    # Touched since (copied back, metadata changed): trusted again only with the same bytes.
    if sha256_file(path) != entry.get("sha256"):
        return False
    record_verified(path, sha256=entry["sha256"])
    return True


def release_verified(folder: str | os.PathLike, size: str) -> bool:
    """Every file of the release of `size` in `folder` verified and unchanged."""
    return all(is_verified(Path(folder) / name, size=size) for name in GPT2_FILES)


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


def download_gpt2(size: str, models_dir: str | os.PathLike, *, progress: ProgressFn | None = None,
                  base_urls: Sequence[str] | None = None, timeout: float = 30.0, retries: int = 5,
                  deadline: float | None = None, backoff: float = 1.0) -> Path:
    """Download GPT-2 `size` ("124M", "355M", "774M", "1558M") into `models_dir/size`.

    Complete files are skipped. `timeout` is per network operation, `retries` the transient
    failures allowed per file (resuming each time, with backoff 1, 2, 4 ... s times `backoff`),
    `deadline` an overall limit in seconds. Returns the folder. Raises DownloadError."""
    if size not in GPT2_MODEL_SIZES:
        raise ValueError(f"unknown GPT-2 size {size!r}; choose one of {', '.join(GPT2_MODEL_SIZES)}")
    if timeout <= 0 or retries < 0 or (deadline is not None and deadline <= 0):
        raise ValueError("timeout and deadline must be positive and retries at least 0")
    bases = tuple(base_urls) if base_urls is not None else GPT2_BASE_URLS
    if not bases:
        raise ValueError("base_urls is empty")
    end = None if deadline is None else time.monotonic() + deadline
    folder = Path(models_dir) / size
    folder.mkdir(parents=True, exist_ok=True)
    known = KNOWN_SIZES.get(size, {})
    report = progress or (lambda p: None)
    sizes: dict[str, int | None] = {}
    finished: dict[str, int] = {}

    def emit(name: str, file_done: int, file_total: int | None, status: str, message: str = "") -> None:
        exact = all(sizes.get(n) is not None for n in GPT2_FILES)
        total = sum(sizes.get(n) or _estimate(size, n) for n in GPT2_FILES)
        done = sum(finished.values()) + (0 if name in finished else file_done)
        report(DownloadProgress(name, file_done, file_total, done, max(total, done), status, message, exact))

    with file_lock(folder / LOCK_NAME, deadline=end, what=f"GPT-2 {size} in {folder}",
                   on_wait=lambda: emit(GPT2_FILES[0], 0, None, "waiting",
                                        "another process is downloading this model; waiting for it")):
        manifest = _read_manifest(folder)
        for name in GPT2_FILES:
            sizes[name] = known.get(name, manifest.get(name))
        for name in GPT2_FILES:
            dest, part = folder / name, folder / (name + ".part")
            expected = known.get(name)
            if dest.exists():
                have = dest.stat().st_size
                recorded = expected if expected is not None else manifest.get(name)
                if is_verified(dest, size=size):
                    sizes[name] = finished[name] = have
                    emit(name, have, have, "skipped", f"{name} is already complete")
                    continue
                if name in _read_verified(folder):
                    # Verified once and changed since: its bytes are not the release's; fetch it afresh.
                    dest.unlink()
                    forget_verified(dest)
                elif have == recorded and _check_content(name, dest) is None:
                    record_verified(dest)  # e.g. fetched by the book's script: verified by its size
                    sizes[name] = finished[name] = have
                    emit(name, have, have, "skipped", f"{name} is already complete")
                    continue
                # Not known to be whole (e.g. left by another downloader): resume it as a .part.
                elif not part.exists() or part.stat().st_size < have:
                    os.replace(dest, part)
                else:
                    dest.unlink()
            got = _download_file(size, name, part, expected, bases, timeout=timeout, retries=retries,
                                 deadline=end, backoff=backoff, emit=emit, sizes=sizes)
            digest = sha256_file(part)
            known_sha = KNOWN_SHA256.get(size, {}).get(name)
            if known_sha is not None and digest != known_sha:
                part.unlink()
                raise DownloadError(f"GPT-2 {size} file {name} does not have the release's checksum; "
                                    "it was not kept. Try again later or use another mirror.")
            os.replace(part, dest)
            record_verified(dest, sha256=digest)
            sizes[name] = finished[name] = got
            manifest[name] = got
            _write_manifest(folder, manifest)
            emit(name, got, got, "done", f"{name} complete")
    return folder


def _estimate(size: str, name: str) -> int:
    if name == DATA_NAME:
        return ESTIMATED_DATA_BYTES.get(size, 0)
    return 0 if name in ("model.ckpt.index", "model.ckpt.meta") else KNOWN_SIZES["124M"][name]


def _download_file(size: str, name: str, part: Path, expected: int | None, bases: Sequence[str], *,
                   timeout: float, retries: int, deadline: float | None, backoff: float,
                   emit: Callable[..., None], sizes: dict[str, int | None]) -> int:
    urls = [f"{b.rstrip('/')}/{size}/{name}" for b in bases]
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
            problem = _check_content(name, part)
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
        f"could not download GPT-2 {size} file {name}.\n  " + "\n  ".join(failures[-6:]) + "\n"
        + ("The part already fetched is kept; run the same command again to resume.\n" if kept else "")
        + "Check the internet connection. " + _OFFLINE_HINT,
        offline=not reached,
    )


# --- command line -------------------------------------------------------------------------
class ProgressBar:
    """A one-line progress bar on a terminal (one line per file otherwise). CLI only."""

    def __init__(self, stream: Any = None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._start = time.monotonic()

    def __call__(self, p: DownloadProgress) -> None:
        now = time.monotonic()
        if p.status in ("retrying", "waiting"):
            self._line(f"{p.file}: {p.message}", end=True)
        elif p.status in ("done", "skipped"):
            self._line(f"{p.file:32s} {_mb(p.file_done):>10s}  {'already here' if p.status == 'skipped' else 'ok'}", end=True)
        elif self.tty and now - self._last > 0.1:
            self._last = now
            frac = p.file_done / p.file_total if p.file_total else 0.0
            bar = "#" * int(frac * 30)
            rate = p.done / max(now - self._start, 1e-6)
            total = f"/{_mb(p.file_total)}" if p.file_total else ""
            self._line(f"{p.file:32s} [{bar:30s}] {_mb(p.file_done)}{total}  {_mb(rate)}/s")

    def _line(self, text: str, end: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if end else ""))
        elif end:
            self.stream.write(text + "\n")
        self.stream.flush()


def _mb(n: float | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def add_download_args(d: Any) -> None:
    d.add_argument("size", choices=GPT2_MODEL_SIZES, help="which GPT-2")
    d.add_argument("--models-dir", default=str(default_models_dir()),
                   help="where models live ($GPT2_MODELS_DIR sets the default)")
    d.add_argument("--timeout", type=float, default=30.0, help="seconds without data before retrying")
    d.add_argument("--retries", type=int, default=5, help="retries per file (each resumes)")
    d.add_argument("--no-cache", action="store_true", help="do not convert to the fast-loading cache afterwards")
    d.add_argument("--base-url", action="append", default=None, metavar="URL",
                   help="a mirror holding SIZE/FILE (e.g. a classroom server); repeat to add more; "
                        "replaces OpenAI's storage and the book's mirror")


def add_import_args(i: Any) -> None:
    i.add_argument("source", nargs="+", help="a folder in the release layout, its files, or a model.safetensors")
    i.add_argument("--name", default=None, help="folder name under --models-dir (default: the size, e.g. 124M)")
    i.add_argument("--models-dir", default=str(default_models_dir()),
                   help="where models live ($GPT2_MODELS_DIR sets the default)")


def cmd_download(args: Any) -> int:
    """Exit 0 with the folder printed; 1 if the download or the conversion failed."""
    from .gpt2 import GPT2LoadError, prepare_cache

    try:
        folder = download_gpt2(args.size, args.models_dir, progress=ProgressBar(), timeout=args.timeout,
                               retries=args.retries, base_urls=args.base_url)
        if not args.no_cache:
            print("converting to the fast-loading cache (TensorFlow, once) ...", file=sys.stderr, flush=True)
            prepare_cache(folder, verified=True)
    except (DownloadError, GPT2LoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(folder)
    return 0


def cmd_import(args: Any) -> int:
    """Exit 0 with the folder printed; 2 if the source is not usable GPT-2 weights."""
    from .gpt2 import GPT2LoadError, import_gpt2

    source = args.source[0] if len(args.source) == 1 else args.source
    try:
        folder = import_gpt2(source, models_dir=args.models_dir, name=args.name)
    except (GPT2LoadError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(folder)
    return 0


DOWNLOAD_HELP = "download OpenAI's GPT-2 weights (resumable, verified) and prepare them for fast loading"
IMPORT_HELP = "import GPT-2 weights from a folder, its files, or a transformers model.safetensors (offline)"


def register_gpt2_commands(register: Callable[..., None]) -> None:
    """For gpt_core.__main__: register(name, help, add_arguments, run)."""
    register("download", DOWNLOAD_HELP, add_download_args, cmd_download)
    register("import", IMPORT_HELP, add_import_args, cmd_import)


def add_gpt2_commands(subparsers: Any) -> None:
    """The same commands on any argparse subparsers object."""
    for name, text, add, run in (("download", DOWNLOAD_HELP, add_download_args, cmd_download),
                                 ("import", IMPORT_HELP, add_import_args, cmd_import)):
        p = subparsers.add_parser(name, help=text, description=text)
        add(p)
        p.set_defaults(func=run)
