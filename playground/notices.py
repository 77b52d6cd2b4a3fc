"""The message area of each tab: where a refused input or a failed action is explained.

An API client gets a handler's error as `gr.Error`. In the browser the same sentence is kept in
the session and drawn, as Markdown, in the message area of the tab whose control failed, where
it stays until that tab's input changes. Gradio's own ways of showing it are not used for these
handlers: its toast vanishes after seconds, leaving only a bare "Error", and its red badge sits
on top of the very outputs the sentence is about.
"""
from __future__ import annotations

from typing import Callable

import gradio as gr

ERRORS = "errors"  # Workspace.ui key: {handler key: the last sentence it failed with}
# Handlers whose failure is drawn in a message area (filled while the page is laid out): their
# errors reach the browser without a toast.
SHOWN_IN_PAGE: set[str] = set()
# What a trigger runs in the browser to empty a message area (no round trip to the server).
CLEAR_JS = "() => ''"


def handler_key(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def remember(ws, key: str, message: str) -> bool:
    """Keep `message` for the message area of the handler `key`; True when an area shows it."""
    if key not in SHOWN_IN_PAGE:
        return False
    errors = ws.ui.setdefault(ERRORS, {})
    errors[key] = message
    return True


def take(ws, key: str) -> str | None:
    """The sentence the handler `key` last failed with, once (None: it did not fail in our code,
    e.g. it was cancelled)."""
    return ws.ui.get(ERRORS, {}).pop(key, None)


def error_markdown(message: str, *, then: str = "") -> str:
    """The message area's text for a failure: the sentence, and what stays as it was."""
    text = f"⚠️ {message.strip()}"
    return text + (f"\n\n{then}" if then else "")


def message_area(elem_id: str) -> gr.Markdown:
    """A tab's message area: empty until something fails (then a sentence in Markdown)."""
    return gr.Markdown("", elem_id=elem_id, elem_classes=["message-area"])
