"""What the browser tests share: one Chromium, screenshots at a desktop and a phone size, and
the checks of what a person sees (text visible where the browser hit-tests it, not in a
zero-height or covered box), plus the gestures of a user on Gradio's widgets.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from app_server import ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
SHOTS = ARTIFACTS / "screenshots"
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}


def write_timings(timings: dict, file: str) -> None:
    """What a browser test module measured, to test-artifacts/`file`."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / file).write_text(json.dumps(timings, indent=2))


@contextmanager
def launch_chromium():
    """One headless Chromium (conftest's `browser` fixture, one per module): Playwright's sync
    API runs one driver per thread, so a second `sync_playwright()` inside a test would fail
    while this one is open."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        one = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield one
        finally:
            one.close()


def shot(page, name: str, *, phone: bool = False) -> None:
    """A full-page screenshot; with `phone` also one at 390 x 844 (then back to the size before)."""
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if phone:
        size = page.viewport_size
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(300)  # the layout settles
        page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)
        page.set_viewport_size(size)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the Gradio dropdown labelled `label`, as a user clicks it."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option).click()


def set_number(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")  # Gradio sends a number field's value when it loses focus


# Is the element holding `text` inside `selector` what the browser hits at its centre, and not
# faded out? (Text in a zero-height or covered box fails.)
SEEN_JS = """([selector, text]) => {
  const box = document.querySelector(selector);
  const holders = box ? [...box.querySelectorAll('*')].filter(e => e.innerText && e.innerText.includes(text)) : [];
  const el = holders[holders.length - 1];
  if (!el) return 'no element with the text';
  el.scrollIntoView({block: 'center'});
  // An inline element that wraps has one box a line; the centre of their union can fall
  // between two lines, on the parent. Its first line's box is text.
  const r = [...el.getClientRects()].find(b => b.width >= 1 && b.height >= 1) || el.getBoundingClientRect();
  if (r.width < 1 || r.height < 1) return 'zero-size box';
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  if (!hit || !(hit === el || el.contains(hit))) return 'covered by ' + (hit ? hit.outerHTML.slice(0, 120) : 'nothing');
  let opacity = 1;
  for (let e = el; e; e = e.parentElement) opacity *= parseFloat(getComputedStyle(e).opacity);
  return opacity >= 0.9 ? 'seen' : 'faded to ' + opacity.toFixed(2);
}"""


def seen(page, selector: str, text: str, timeout: float = 10.0) -> str:
    """'seen' once the text is visible and uncovered (transitions may take a moment); else why not."""
    end = time.monotonic() + timeout
    while (verdict := page.evaluate(SEEN_JS, [selector, text])) != "seen" and time.monotonic() < end:
        time.sleep(0.2)
    return verdict


def text_of(page, selector: str) -> str:
    return page.evaluate("s => (document.querySelector(s) || {}).innerText || ''", selector)
