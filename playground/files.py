"""Session files on disk and what a session downloads: the links that serve a checkpoint (or
an export made on the spot) to its session only, and the clean-up of the files root at start
and at shutdown.

Nothing a session downloads is handed to a Gradio component: Gradio would copy it into its
cache and serve it at `/gradio_api/file=...` to anyone with the URL, session or not. Instead a
session gets a link of ours, `gradio_api/checkpoint/<token>/<name>` for a file directly inside
its own folder, or `gradio_api/export/<token>/<name>` for content made from its own state when
the link is followed (the curves of its runs as CSV, their settings as JSON). The token is
unguessable (`secrets.token_urlsafe`), expires, and names one thing of one session. Anything
else is a 404.
"""
from __future__ import annotations

import logging
import mimetypes
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from .common import SETTINGS
from .limits import session_folder

log = logging.getLogger("playground")

ROUTE = "/gradio_api/checkpoint/{token}/{name}"
EXPORT_ROUTE = "/gradio_api/export/{token}/{name}"
NOT_VALID = "This download link is not valid (it may have expired): make it again in your own session."


@dataclass(frozen=True)
class _Link:
    session_id: str
    slot: str
    name: str
    target: Any  # what the subclass serves: a session's files root, or a function making the content
    expires: float


class SessionLinks:
    """token -> one thing of one session, until it expires. A session holds one link per slot
    (its latest checkpoint, its latest export of each kind), so there are never more links
    than sessions times slots. Subclasses say what a link serves and at which route."""
    route_path = ""

    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = float(ttl_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._links: dict[str, _Link] = {}

    def _issue(self, session_id: str, slot: str, name: str, target: Any, *, renew: bool = False) -> str:
        """A token for `target`, replacing the session's link in `slot`. `renew`: keep that
        link's token (while valid, for the same name), now serving `target`, for another `ttl_s`."""
        with self._lock:
            now = self._clock()
            token = None
            for old, other in list(self._links.items()):
                if (other.session_id, other.slot) == (session_id, slot) or other.expires <= now:
                    del self._links[old]
                    if renew and other.session_id == session_id and other.name == name and other.expires > now:
                        token = old
            token = token or secrets.token_urlsafe(32)
            self._links[token] = _Link(session_id, slot, name, target, now + self.ttl_s)
        return token

    def _lookup(self, token: str, name: str) -> _Link | None:
        with self._lock:
            link = self._links.get(token)
        if link is None or link.name != name or self._clock() >= link.expires:
            return None
        return link

    def _url(self, token: str, name: str) -> str:
        # Relative to the page, so it works under a root path.
        return self.route_path.format(token=token, name=quote(name)).lstrip("/")

    async def serve(self, request: Request) -> Response:
        raise NotImplementedError

    def route(self) -> Route:
        return Route(self.route_path, self.serve, methods=["GET", "HEAD"])


class DownloadLinks(SessionLinks):
    """Links to a file directly inside a session's own folder (its latest checkpoint)."""
    route_path = ROUTE

    def issue(self, ws, path: str | Path) -> str:
        """A new token for `path`, which must lie directly inside `ws`'s own folder."""
        path = Path(path).resolve()
        if path.parent != ws.files_dir() or not path.is_file():
            raise ValueError(f"{path.name} is not a file of this session")
        return self._issue(ws.id, "checkpoint", path.name, Path(ws.files_root))

    def resolve(self, token: str, name: str) -> Path | None:
        """The file `token` was issued for, if it is still valid, still named `name` and still
        in its session's folder; else None."""
        link = self._lookup(token, name)
        if link is None:
            return None
        try:
            folder = session_folder(link.target, link.session_id)
        except ValueError:
            return None
        path = (folder / link.name).resolve()
        return path if path.parent == folder and path.is_file() else None

    def url(self, ws, path: str | Path) -> str:
        """A fresh link to `path` for `ws`."""
        return self._url(self.issue(ws, path), Path(path).name)

    async def serve(self, request: Request) -> Response:
        path = self.resolve(request.path_params["token"], request.path_params["name"])
        if path is None:
            return PlainTextResponse(NOT_VALID, status_code=404)
        return FileResponse(path, filename=path.name, media_type="application/octet-stream")


class ExportLinks(SessionLinks):
    """Links to content made from a session's state when the link is followed, so it is
    always what the session shows now. `make()` returns the bytes, or None once the session
    has gone (then the link is a 404)."""
    route_path = EXPORT_ROUTE

    def url(self, ws, name: str, make: Callable[[], bytes | None]) -> str:
        """The link of `ws` to `name` (its slot: one link per name and session). Drawing it again
        keeps its token and renews it: a link on the page stays good while the page redraws it."""
        return self._url(self._issue(ws.id, name, name, make, renew=True), name)

    def content(self, token: str, name: str) -> bytes | None:
        link = self._lookup(token, name)
        return None if link is None else link.target()

    async def serve(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = self.content(request.path_params["token"], name)
        if body is None:
            return PlainTextResponse(NOT_VALID, status_code=404)
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


# The server's links: the page's Download buttons, the `/save_checkpoint` API.
LINKS = DownloadLinks(SETTINGS.download_link_s)
EXPORTS = ExportLinks(SETTINGS.download_link_s)


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
