"""Take the README's screenshots: launch the app, train the demo preset to the end, replay it,
generate and inspect a token, evaluate, open the attention, and photograph every tab into
docs/screenshots/ (headless Chromium); then two tiny runs compared, and the Train tab in
presenter mode.

    python scripts/screenshots.py [--out docs/screenshots] [--only teach]

Also prints the two timings the README quotes: launch to page served, Train to first point.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from app_server import SMALL_SERVER, AppServer  # noqa: E402
from page_actions import TINY, second_run, train_until_done  # noqa: E402

POINTS_JS = """() => {
  const el = document.querySelector('#loss-chart .js-plotly-plot');
  const t = el && el.data ? el.data.find(t => t.name === 'Validation loss') : null;
  return t && t.x ? t.x.length : 0;
}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--only", choices=["tabs", "teach"], help="only the tabs' screenshots, or only the "
                        "runs compared and presenter mode")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    env = {**SMALL_SERVER, "PLAYGROUND_MAX_UPLOAD_MB": "50"}
    with tempfile.TemporaryDirectory() as tmp, AppServer(Path(tmp), env=env) as app:
        print(f"page served {app.startup_seconds:.1f} s after launch")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            if args.only != "tabs":
                teach(browser, app.url, out)
            if args.only == "teach":
                return 0
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(600_000)
            page.goto(app.url)
            page.get_by_text("Characters per token").wait_for()
            page.screenshot(path=str(out / "data.png"), full_page=True)

            page.get_by_role("tab", name="2 · Train").click()
            page.get_by_text("parameters").first.wait_for()
            # The run in Fast: the photograph shows the precision chosen, the estimate saying
            # which runs and why, and the FLOP/s line under the chart.
            page.get_by_label("Fast (bfloat16)").check()
            page.wait_for_function("() => { const e = document.querySelector('#train-estimate').innerText;"
                                   " return e.includes('Precision: Fast (bfloat16)') && e.includes('on this machine'); }")
            start = time.monotonic()
            page.locator("#train-btn").click()
            page.wait_for_function(f"({POINTS_JS})() >= 1")
            print(f"first chart point {time.monotonic() - start:.1f} s after clicking Train")
            page.wait_for_function("() => document.querySelector('#train-status').innerText.startsWith('Done')")
            print(f"demo preset trained in {time.monotonic() - start:.0f} s")
            page.screenshot(path=str(out / "train.png"), full_page=True)
            box = page.locator("#replay-slider input[type=number]")  # the run replayed from its start
            box.fill("2")
            box.press("Enter")
            page.wait_for_function("() => document.querySelector('#replay-frame').innerText.includes('Evaluation 2 of')")
            page.wait_for_timeout(1500)  # the marker's redraw
            page.locator("#loss-chart").scroll_into_view_if_needed()
            clip = page.evaluate("""() => { const a = document.querySelector('#loss-chart').getBoundingClientRect();
                                            const b = document.querySelector('#replay-frame').getBoundingClientRect();
                                            return {x: a.left, y: a.top + window.scrollY, width: a.width,
                                                    height: b.bottom - a.top}; }""")
            page.screenshot(path=str(out / "replay.png"), full_page=True, clip=clip)

            page.get_by_role("tab", name="3 · Generate").click()
            page.wait_for_function("() => document.querySelector('#candidates-chart .js-plotly-plot') !== null")
            page.locator("#generate-btn").click()
            page.wait_for_function("() => document.querySelectorAll('#inspect-tokens .token-container').length > 5")
            page.locator("#inspect-tokens .token-container").nth(4).click()
            page.wait_for_function("() => document.querySelector('#inspect-summary').innerText.includes('Token ')")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / "generate.png"), full_page=True)
            page.locator("#inspector").screenshot(path=str(out / "inspect.png"))

            page.get_by_role("tab", name="4 · GPT-2").click()
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "gpt2.png"), full_page=True)

            page.get_by_role("tab", name="5 · Evaluate").click()
            page.wait_for_timeout(1000)
            page.locator("#eval-btn").click()
            page.wait_for_function("() => document.querySelectorAll('#eval-a .token-view span').length > 100")
            page.screenshot(path=str(out / "evaluate.png"), full_page=True)

            page.get_by_role("tab", name="6 · Attention").click()
            page.locator("#attention-text textarea").fill("Every effort moves you forward, and every step moves you")
            page.locator("#attention-btn").click()
            page.wait_for_function("() => document.querySelector('#attention-trained g.hm image') !== null")
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "attention.png"), full_page=True)
            browser.close()
    print(f"screenshots in {out}")
    return 0


def teach(browser, url: str, out: Path) -> None:
    """Two tiny runs on one chart (compare.png), then the Train tab in presenter mode (presenter.png)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(600_000)
    page.goto(url + TINY)
    page.get_by_role("tab", name="2 · Train").click()
    page.get_by_text("parameters").first.wait_for()
    train_until_done(page)
    second_run(page)
    page.get_by_text("Compare runs and export").click()
    page.wait_for_function("() => document.querySelectorAll('#compare-chart .legendtext').length === 2")
    page.wait_for_timeout(1000)
    page.locator("#compare-box").screenshot(path=str(out / "compare.png"))
    page.get_by_label("Presenter mode (large text, thick lines)").check()
    page.wait_for_timeout(2500)  # each chart relaid out with its larger text
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(out / "presenter.png"))
    page.close()


if __name__ == "__main__":
    sys.exit(main())
