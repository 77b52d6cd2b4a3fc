"""What the browser tests and the screenshot script do on the page alike: open it on a tiny
model through a link, and train a run to its end."""
from __future__ import annotations

from app_server import ROOT

SHOTS = ROOT / "test-artifacts" / "screenshots"

# A tiny model on The Verdict's characters: a run of one epoch takes a few seconds.
TINY = ("?preset=custom&tokenizer=char&num_epochs=1&learning_rate=0.006&eval_freq=10&eval_iter=1"
        "&context_length=32&emb_dim=32&n_heads=2&n_layers=1&drop_rate=0.1")
STATUS = "() => document.querySelector('#train-status').innerText"
# A tiny run can be over between two looks at the page: watch the Train button go disabled.
WATCH_RUN_JS = """() => {
  window.sawRunning = false;
  new MutationObserver(() => {
    if (document.querySelector('#train-btn').disabled) window.sawRunning = true;
  }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['disabled']});
}"""


def set_number(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")  # Gradio sends a number field's value when it loses focus


def train_until_done(page, timeout_ms: float = 180_000) -> None:
    page.evaluate(WATCH_RUN_JS)
    page.locator("#train-btn").click()
    try:
        page.wait_for_function(f"() => window.sawRunning && !document.querySelector('#train-btn').disabled"
                               f" && ({STATUS})().includes('Done')", timeout=timeout_ms)
    except Exception:  # what the page showed instead, beside the test's other screenshots
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "train-until-done-failed.png"), full_page=True)
        raise


def second_run(page) -> None:
    """The tiny run again at learning rate 1e-3 without dropout (the page's Train tab open)."""
    page.get_by_text("Training options").click()
    set_number(page, "Learning rate", "0.001")
    page.get_by_text("Model (the book's GPT_CONFIG fields)").click()
    set_number(page, "drop_rate", "0")
    train_until_done(page)
