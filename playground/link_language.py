"""A `?lang=` link opens the page in that language from its first frame.

Gradio picks its locale once, from the browser's language, as its frontend starts, and some of
what it draws then keeps those words for good: the tab bar of tabs not yet opened, and the
upload boxes ("Drop File Here", "Click to Upload") did not follow a locale set later by the
page's load event (checked in Chromium). Its `head=` scripts are added after it starts, too late
to change that. So this middleware writes, into the page's own HTML for a request that carries
`lang=`, a script that runs before Gradio's: the browser then reports the asked language.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from .i18n import pick_language

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Before Gradio's module script: `navigator.language(s)` as the link asks (one of the page's
# two languages); BROWSER_LANGUAGE_JS reads the same on load.
SCRIPT = """<script>(() => {{
  const lang = {lang!r};
  Object.defineProperty(Navigator.prototype, 'language', {{get: () => lang, configurable: true}});
  Object.defineProperty(Navigator.prototype, 'languages', {{get: () => [lang], configurable: true}});
}})();</script>"""
MARK = b'<script type="module"'
MAX_PAGE_BYTES = 8 * 2**20  # Gradio's page is ~0.5 MB; anything far larger is passed on untouched


def asked_language(query_string: bytes) -> str | None:
    """The page language a query string's `lang=` asks for, or None without one."""
    values = parse_qs(query_string.decode("latin-1")).get("lang")
    return pick_language(values[0]) if values else None


def with_language(html: bytes, lang: str) -> bytes:
    """The page `html` with the language script before its first module script."""
    at = html.find(MARK)
    if at < 0:
        return html
    return html[:at] + SCRIPT.format(lang=lang).encode() + html[at:]


class LinkLanguage:
    """ASGI middleware: GET requests with `lang=` whose answer is HTML get the script."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive: Receive, send: Send) -> None:
        lang = (asked_language(scope.get("query_string", b""))
                if scope["type"] == "http" and scope.get("method") == "GET" else None)
        if lang is None:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = bytearray()

        async def send_page(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                if b"text/html" in headers.get(b"content-type", b"") and b"content-encoding" not in headers:
                    start = message  # held until the whole page is here
                    return
                await send(message)
            elif start is None or message["type"] != "http.response.body":
                await send(message)
            else:
                body.extend(message.get("body", b""))
                if message.get("more_body") and len(body) <= MAX_PAGE_BYTES:
                    return
                page = with_language(bytes(body), lang) if not message.get("more_body") else bytes(body)
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(page)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": page, "more_body": bool(message.get("more_body"))})
                start = None  # the rest, if any, passes through
        await self.app(scope, receive, send_page)
