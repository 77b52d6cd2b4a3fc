"""One HTTP attempt at one file: bring `NAME.part` to the complete file from one URL.

An interrupted download resumes with an HTTP Range request when the server answers 206 and
starts over when it answers 200. The failure says whether the next URL should be tried
(Permanent: 404, an HTML page, a wrong size) or this one again later (Transient: timeouts,
dropped connections, 5xx). Standard library only; the retries are download.py's.
"""
from __future__ import annotations

import re
import socket
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import Callable

_CHUNK = 1 << 20  # what read1 hands over at most: a stall keeps what came before
_MARKUP = (b"<!doctype", b"<html", b"<?xml", b"<error", b"<head", b"<body")


class Permanent(Exception):
    """This URL will not serve the file (404, an HTML page, wrong size): try the next one."""


class Transient(Exception):
    """Worth retrying (timeout, dropped connection, 5xx); the .part file is kept for resuming.
    `unreached`: no server answered (nothing was received)."""

    def __init__(self, message: str, *, unreached: bool = False):
        super().__init__(message)
        self.unreached = unreached


def looks_like_markup(head: bytes) -> bool:
    """An HTML or XML error page (what storage services send for 403/404), not a model file."""
    return head.lstrip()[:16].lower().startswith(_MARKUP)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 1000); 'bytes */1000' -> (None, 1000)."""
    m = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def fetch(url: str, name: str, part: Path, expected: int | None, *, timeout: float, deadline: float | None,
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
            raise Transient(f"range {offset}- not satisfiable; starting the file over") from None
        if e.code in (400, 401, 403, 404, 410):
            raise Permanent(f"HTTP {e.code} {e.reason}") from None
        raise Transient(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, HTTPException, OSError) as e:
        reason = getattr(e, "reason", e)
        raise Transient(f"could not connect ({reason})", unreached=True) from None
    with resp:
        ctype = resp.headers.get("Content-Type", "")
        if "html" in ctype.lower():
            raise Permanent(f"served an HTML page ({ctype}) instead of {name}")
        if resp.status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                offset = 0  # a range we did not ask for: start over rather than guess
                if start != 0:
                    raise Transient("server answered with the wrong byte range")
        else:  # 200: the server ignored Range, so the body is the whole file
            offset = 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if expected is not None and total is not None and total != expected:
            raise Permanent(f"server reports {total:,} bytes for {name}, the release has {expected:,}")
        total = expected if total is None else total
        done = offset
        on_bytes(done, total)
        with open(part, "r+b" if offset else "wb") as f:
            f.seek(offset)
            f.truncate()
            first = True
            while True:
                if deadline is not None and time.monotonic() > deadline:
                    raise Transient("the overall deadline passed")
                try:
                    chunk = resp.read1(_CHUNK)  # what has arrived, so a stall keeps what came before
                except (socket.timeout, TimeoutError):
                    raise Transient(f"no data for {sock_timeout:.0f} s (stalled)") from None
                except (HTTPException, OSError) as e:
                    raise Transient(f"connection broken ({type(e).__name__}: {e})") from None
                if not chunk:
                    break
                if first and offset == 0 and looks_like_markup(chunk[:64]):
                    f.close()
                    part.unlink()
                    raise Permanent(f"served an HTML/XML page instead of {name}")
                first = False
                f.write(chunk)
                done += len(chunk)
                on_bytes(done, total)
    if total is not None and done < total:
        raise Transient(f"connection closed after {done:,} of {total:,} bytes")
    if total is not None and done > total:
        part.unlink()
        raise Permanent(f"received {done:,} bytes, more than the {total:,} announced")
    return done
