"""A cap on the size of a request's body, before anything parses it.

Gradio reads a JSON body whole and parses it before a handler can look at the values: a
400 MB body to `/gradio_api/call/use_text` held 1.8 GB before the 5M-character limit
refused it. `BodyLimit` refuses a body over `max_bytes` with 413 at the socket: at once when
its Content-Length says so, and while it streams when it is chunked. Gradio's upload route is
left alone; it writes files to disk and enforces `max_file_size` itself.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from gpt_core.units import MB

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

UPLOAD_PATHS = frozenset({"/gradio_api/upload", "/upload"})


class BodyTooLarge(Exception):
    """Raised inside the app when its body passes the cap; never leaves the middleware."""


class BodyLimit:
    """ASGI middleware: HTTP requests whose body exceeds `max_bytes` get 413 and a sentence."""

    def __init__(self, app, *, max_bytes: int, exempt: frozenset[str] = UPLOAD_PATHS):
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.app = app
        self.max_bytes = int(max_bytes)
        self.exempt = exempt

    def message(self) -> bytes:
        mb = self.max_bytes / MB
        return (f"This request is larger than the server accepts ({mb:,.0f} MB). Upload large texts "
                "and checkpoints as files instead.").encode()

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _route_path(scope) in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            # Nothing is read: uvicorn discards the rest of the body after the response.
            await self._refuse(send)
            return

        received = 0
        over = False
        refused = False
        started = False

        async def capped_receive() -> Message:
            nonlocal received, over
            if over:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal refused, started
            if over and not started:
                # Whatever the app answers to the exception (FastAPI makes it a 400) gives way
                # to the 413 that says what happened.
                if not refused:
                    refused = True
                    await self._refuse(send)
                return
            started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except BodyTooLarge:
            pass
        if over and not started and not refused:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = self.message()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _route_path(scope: Message) -> str:
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _content_length(scope: Message) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses a malformed length before we get here
    return None
