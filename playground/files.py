"""Session files on disk: the links that serve a checkpoint to its session only, and the
clean-up of the files root at start and at shutdown.

A checkpoint is never handed to a Gradio component: Gradio would copy it into its cache and
serve it at `/gradio_api/file=...` to anyone with the URL, session or not. Instead a session
gets a link of ours, `gradio_api/checkpoint/<token>/<name>`, whose token is unguessable
(`secrets.token_urlsafe`), expires, and names one file directly inside that session's own
folder. Anything else is a 404.
"""
from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from .common import SETTINGS
from .limits import session_folder

log = logging.getLogger("playground")

ROUTE = "/gradio_api/checkpoint/{token}/{name}"


@dataclass(frozen=True)
class _Link:
    files_root: Path
    session_id: str
    name: str
    expires: float


class DownloadLinks:
    """token -> one file of one session, until it expires. A session holds one link at a
    time (its latest checkpoint), so there are never more links than sessions."""

    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = float(ttl_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._links: dict[str, _Link] = {}

    def issue(self, ws, path: str | Path) -> str:
        """A new token for `path`, which must lie directly inside `ws`'s own folder."""
        path = Path(path).resolve()
        if path.parent != ws.files_dir() or not path.is_file():
            raise ValueError(f"{path.name} is not a file of this session")
        link = _Link(Path(ws.files_root), ws.id, path.name, self._clock() + self.ttl_s)
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            for old, other in list(self._links.items()):
                if other.session_id == ws.id or other.expires <= now:
                    del self._links[old]
            self._links[token] = link
        return token

    def resolve(self, token: str, name: str) -> Path | None:
        """The file `token` was issued for, if it is still valid, still named `name` and still
        in its session's folder; else None."""
        with self._lock:
            link = self._links.get(token)
        if link is None or link.name != name or self._clock() >= link.expires:
            return None
        try:
            folder = session_folder(link.files_root, link.session_id)
        except ValueError:
            return None
        path = (folder / link.name).resolve()
        return path if path.parent == folder and path.is_file() else None

    def url(self, ws, path: str | Path) -> str:
        """A fresh link to `path` for `ws`, relative to the page (so it works under a root path)."""
        token = self.issue(ws, path)
        return ROUTE.format(token=token, name=quote(Path(path).name)).lstrip("/")

    async def serve(self, request: Request) -> Response:
        path = self.resolve(request.path_params["token"], request.path_params["name"])
        if path is None:
            return PlainTextResponse("This download link is not valid (it may have expired): save the "
                                     "checkpoint again in your own session.", status_code=404)
        return FileResponse(path, filename=path.name, media_type="application/octet-stream")

    def route(self) -> Route:
        return Route(ROUTE, self.serve, methods=["GET", "HEAD"])


# The server's links: the page's Download button, the `/save_checkpoint` API.
LINKS = DownloadLinks(SETTINGS.download_link_s)


# --- the files root at start and at shutdown ------------------------------------------------
def _is_ours(entry: Path) -> bool:
    """A session's folder (its name a server-made id) or a temp file of an atomic write."""
    name = entry.name
    if name.startswith(".") and name.endswith(".tmp"):
        return True
    try:
        session_folder(entry.parent, name)
    except ValueError:
        return False
    return True


def remove_leftovers(files_root: str | Path) -> int:
    """Remove session folders and temp files from `files_root` (a crash, or a previous run,
    left them); anything else there is left alone. Returns how many entries went."""
    root = Path(files_root)
    if not root.is_dir():
        return 0
    removed = 0
    for entry in root.iterdir():
        if not _is_ours(entry):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except OSError as exc:
            log.warning("could not remove %s: %s", entry, exc)
    if removed:
        log.info("removed %d leftover session folder(s) and temp file(s) from %s", removed, root)
    return removed
