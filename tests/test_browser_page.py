"""What a person sees, in headless Chromium on the launched app: messages beside the control
that failed (readable, uncovered, staying, cleared by new input), a Chinese text met as one,
the prompt and the continuation apart, a token's details on a tap, and a phone reaching
every tab.

Every check asks the browser itself: the text must be in the element that
`document.elementFromPoint` hits at its centre (not in a zero-height or covered box). Each
journey is photographed at 1400 x 1000 and 390 x 844 into test-artifacts/screenshots/page-*.
"""
from __future__ import annotations

import time

import pytest

from browser_kit import SHOTS, choose, open_tab, seen, set_number
from app_server import SMALL_SERVER

pytestmark = pytest.mark.browser
DESKTOP, PHONE = {"width": 1400, "height": 1000}, {"width": 390, "height": 844}
LUNYU = "论语 (The Analects)"
CHARACTERS_PRESET = "Characters: 4 layers, character tokens"

# Elements whose own text is exactly `text` that a person can see (a visible, uncovered box).
VISIBLE_EXACTLY_JS = """(text) => [...document.querySelectorAll('body *')].filter(e => {
  if (e.children.length || e.textContent.trim() !== text) return false;
  const r = e.getBoundingClientRect();
  if (r.width < 1 || r.height < 1 || getComputedStyle(e).visibility === 'hidden') return false;
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return hit && (hit === e || e.contains(hit));
}).length"""


@pytest.fixture(scope="module")
def app(launch_app):
    return launch_app("page-app", env=SMALL_SERVER)


@pytest.fixture(scope="module")
def student(app, browser):
    """One student's page on a touch screen (a tap works as on a tablet), desktop-sized."""
    context = browser.new_context(viewport=DESKTOP, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app.url)
    page.get_by_text("Characters per token").wait_for()
    yield page
    context.close()


def both_sizes(page, name: str, focus: str) -> None:
    """Screenshots of the page as it is: the whole page at the desktop size, and the phone's
    screen scrolled to `focus` (the whole phone page is too long to read)."""
    page.screenshot(path=str(SHOTS / f"page-{name}-1400.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(400)  # Gradio re-lays the page out
    page.locator(focus).first.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(SHOTS / f"page-{name}-390.png"))
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(400)


def seen_in(page, selector: str, *texts: str) -> None:
    """Each text is visible and uncovered inside `selector`, scrolled into view first."""
    page.locator(selector).scroll_into_view_if_needed()
    for text in texts:
        assert seen(page, selector, text) == "seen", (selector, text, seen(page, selector, text))


def no_error_badge(page) -> None:
    assert page.evaluate(VISIBLE_EXACTLY_JS, "Error") == 0, "Gradio's red Error badge is showing"


def text_of(page, selector: str) -> str:
    return page.inner_text(selector).strip()


def test_a_refused_upload_is_explained_beside_it_stays_and_clears_on_a_new_text(student, tmp_path):
    page = student
    pdf = tmp_path / "notes.txt"
    pdf.write_bytes(b"%PDF-1.4\n" + b"\x00\x01binary" * 100)
    page.locator("input[type=file]").first.set_input_files(str(pdf))
    page.wait_for_function("() => document.querySelector('#data-message').innerText.includes('PDF')")
    message = text_of(page, "#data-message")
    # Rendered Markdown: bold is bold, no literal asterisks; and no server path.
    assert "**" not in message and "/tmp" not in message and "gradio" not in message.lower(), message
    assert page.locator("#data-message strong").inner_text() == "The Verdict (Edith Wharton)"
    seen_in(page, "#data-message", "This file is a PDF document", "The active text is still")
    no_error_badge(page)
    seen_in(page, "#data-summary", "Active text: The Verdict")  # beside it, the text that stays
    both_sizes(page, "data-refused-upload", "#data-message")
    time.sleep(11)  # longer than a toast lives: the message stays
    seen_in(page, "#data-message", "This file is a PDF document")
    choose(page, "Sample text", "Tiny Shakespeare")
    page.wait_for_function("() => document.body.innerText.includes('Active text: Tiny Shakespeare')")
    assert text_of(page, "#data-message") == ""  # the old error went with the new text
    choose(page, "Sample text", "The Verdict (Edith Wharton)")
    page.wait_for_function("() => document.body.innerText.includes('Active text: The Verdict')")


def test_a_refused_checkpoint_says_why_without_the_server_s_paths(student, tmp_path):
    page = student
    open_tab(page, "2 · Train")
    page.get_by_text("Checkpoint", exact=True).click()  # the accordion
    bad = tmp_path / "model.pth"
    bad.write_bytes(b"this is not a checkpoint at all" * 10)
    page.locator("#train-message").scroll_into_view_if_needed()
    page.locator("input[type=file][accept*='.pt']").set_input_files(str(bad))
    page.wait_for_function("() => document.querySelector('#train-message').innerText.length > 10")
    message = text_of(page, "#train-message")
    assert "model.pth" in message and "/tmp" not in message and "gradio" not in message.lower(), message
    assert "You still have no model of your own." in message
    seen_in(page, "#train-message", "model.pth", "You still have no model")
    no_error_badge(page)
    both_sizes(page, "train-refused-checkpoint", "#train-message")
    choose(page, "Preset", "Fast demo: 2 layers, GPT-2 BPE (seconds)")
    page.wait_for_function("() => document.querySelector('#train-message').innerText.trim() === ''")


def test_the_gpt2_download_offline_reads_as_sentences(student):
    page = student
    open_tab(page, "4 · GPT-2")
    page.locator("#gpt2-download").click()
    page.wait_for_function("() => document.querySelector('#gpt2-status').innerText.includes('No answer')",
                           timeout=60_000)
    progress = text_of(page, "#gpt2-status")
    assert "No answer from the download server yet" in progress
    assert "Errno" not in progress and "://" not in progress and "failed (" not in progress, progress
    page.wait_for_function("() => document.querySelector('#gpt2-message').innerText.length > 10", timeout=180_000)
    message = text_of(page, "#gpt2-message")
    assert "cannot reach the internet" in message and "Import from a folder" in message
    assert "*" not in message and "`" not in message and "Errno" not in message and "://" not in message
    seen_in(page, "#gpt2-message", "cannot reach the internet")
    no_error_badge(page)
    both_sizes(page, "gpt2-offline", "#gpt2-message")


def test_a_chinese_text_suggests_characters_and_an_english_start_is_replaced(student):
    page = student
    open_tab(page, "1 · Data")
    choose(page, "Sample text", LUNYU)
    page.wait_for_function("() => document.body.innerText.includes('mostly into pieces of characters')")
    seen_in(page, "#data-warnings", "mostly into pieces of characters")
    both_sizes(page, "data-chinese-bpe", "#data-warnings")
    open_tab(page, "2 · Train")
    choose(page, "Preset", CHARACTERS_PRESET)
    page.get_by_text("Training options").click()
    page.wait_for_function("el => el.value === 'Every effort moves you'",
                           arg=page.get_by_label("Start context (sampled after each epoch)").element_handle())
    set_number(page, "Epochs", "2")
    page.locator("#train-btn").click()
    page.wait_for_function("() => document.querySelector('#train-status').innerText.includes('Done')",
                           timeout=300_000)
    seen_in(page, "#train-status", "is in characters this model never saw", "“学而篇”")
    assert "学而篇" in page.locator("#sample-log textarea").input_value()
    both_sizes(page, "train-chinese-start-replaced", "#train-status")


def test_generate_shows_prompt_and_continuation_apart_and_says_what_it_changed(student):
    page = student  # the character model of 论语 from the test before
    open_tab(page, "3 · Generate")
    prompt = page.get_by_label("Prompt")
    prompt.fill("Every effort moves you")
    box = page.locator("#max-new input[type=number]")
    box.fill("20")
    box.press("Enter")
    page.locator("#generate-btn").click()
    page.wait_for_function("() => (document.querySelector('#generate-output .gen-new') || {}).innerText?.length >= 20")
    seen_in(page, "#generate-output", "never saw in its text", "学而篇")
    assert page.inner_text("#generate-output .gen-prompt") == "学而篇"
    assert seen(page, "#generate-output .gen-text", page.inner_text("#generate-output .gen-new")[:5]) == "seen"
    both_sizes(page, "generate-prompt-apart", "#generate-output")
    long_prompt = "子曰：学而时习之，不亦说乎？有朋自远方来，不亦乐乎？人不知而不愠，不亦君子乎？" * 5  # > 128 characters
    prompt.fill(long_prompt)
    page.locator("#generate-btn").click()
    page.wait_for_function("() => document.querySelector('#generate-output').innerText.includes('sees only its last')")
    seen_in(page, "#generate-output", "the model sees only its last 128")
    cut = page.inner_text("#generate-output .gen-cut")
    assert cut + page.inner_text("#generate-output .gen-prompt") == long_prompt and len(cut) == len(long_prompt) - 128
    both_sizes(page, "generate-prompt-cut", "#generate-output")
    page.get_by_label("Prompt").fill("子曰")  # the rest of the page's tests use a short prompt


def test_a_tapped_token_shows_its_probability_rank_and_the_model_s_guess(student):
    page = student
    open_tab(page, "5 · Evaluate")
    page.get_by_label("Model B (optional)", exact=True).click()
    options = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]  # ✓: chosen
    assert options and all(options) and options[0] == "None (score with model A only)", options
    page.keyboard.press("Escape")
    page.locator("#eval-btn").click()
    page.wait_for_function("() => document.querySelectorAll('#eval-a .tok').length > 100")
    token = page.locator("#eval-a .tok").nth(12)
    token.scroll_into_view_if_needed()
    token.tap()
    tip = "#eval-a .tok:focus .tok-tip"
    page.wait_for_selector(tip)
    details = page.inner_text(tip)
    assert "p = " in details and "rank" in details and "first guess" in details, details
    assert seen(page, "#eval-a .tok:focus", details.split(" · ")[1]) == "seen"
    page.screenshot(path=str(SHOTS / "page-evaluate-token-tapped-1400.png"), full_page=True)
    page.set_viewport_size(PHONE)
    token.scroll_into_view_if_needed()
    token.tap()
    assert seen(page, "#eval-a .tok:focus", details.split(" · ")[1]) == "seen"
    page.screenshot(path=str(SHOTS / "page-evaluate-token-tapped-390.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


# Boxes of the chart's texts inside the chart: the placeholder, the titles, every word.
CHART_TEXTS_JS = """(selector) => {
  const chart = document.querySelector(selector + ' .js-plotly-plot');
  const c = chart.getBoundingClientRect();
  const ticks = '.xtick text, .x2tick text';  // the words under the bars of each subplot
  const boxes = [...chart.querySelectorAll('.annotation-text, .gtitle, ' + ticks)].map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, left: r.left - c.left, right: r.right - c.left, top: r.top - c.top,
            bottom: r.bottom - c.top, kind: t.matches(ticks) ? 'tick' : 'title'};
  });
  return {width: c.width, height: c.height, boxes};
}"""


def chart_texts(page, selector: str) -> dict:
    """CHART_TEXTS_JS once Plotly has drawn the chart at the width it has on this screen."""
    page.wait_for_function("""(s) => { const c = document.querySelector(s + ' .js-plotly-plot');
      return c && c._fullLayout && Math.abs(c._fullLayout.width - c.getBoundingClientRect().width) < 2; }""",
                           arg=selector)
    return page.evaluate(CHART_TEXTS_JS, selector)


def inside(chart: dict) -> list[str]:
    return [b["text"] for b in chart["boxes"]
            if b["left"] < -1 or b["right"] > chart["width"] + 1 or b["top"] < -1 or b["bottom"] > chart["height"] + 1]


def test_a_phone_reaches_every_tab_and_its_charts_are_legible(app, browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(app.url)
        page.get_by_text("Characters per token").wait_for()
        assert page.locator("[aria-label='More tabs']").count() == 0 or not page.locator(
            "[aria-label='More tabs']").is_visible()
        tabs = {"1 · Data": "#data-message", "2 · Train": "#train-btn", "3 · Generate": "#generate-btn",
                "4 · GPT-2": "#gpt2-download", "5 · Evaluate": "#eval-btn"}
        for name in tabs:  # every tab's button is on screen and nothing covers it
            assert seen(page, "[role=tablist]", name) == "seen", name
        for name, inside_tab in tabs.items():
            page.get_by_role("tab", name=name).tap()
            page.locator(inside_tab).wait_for(state="attached")
            assert page.get_by_role("tab", name=name).get_attribute("aria-selected") == "true"
            page.screenshot(path=str(SHOTS / f"page-phone-{name[0]}-390.png"), full_page=True)
        page.get_by_role("tab", name="2 · Train").tap()
        loss = chart_texts(page, "#loss-chart")
        assert any("Press Train" in b["text"] for b in loss["boxes"]) and inside(loss) == [], loss
        page.get_by_role("tab", name="3 · Generate").tap()
        page.locator("#generate-btn").tap()  # no model yet: the message shows beside the button
        page.wait_for_function("() => document.querySelector('#generate-message').innerText.includes('No model yet')")
        seen_in(page, "#generate-message", "No model yet")
        no_error_badge(page)
        page.wait_for_function("() => document.querySelectorAll('#candidates-chart .annotation-text').length > 0")
        candidates = chart_texts(page, "#candidates-chart")
        assert inside(candidates) == [], candidates
        lab = chart_texts(page, "#lab-chart")
        titles = [b for b in lab["boxes"] if b["kind"] == "title" and ("draws" in b["text"] or
                                                                     "temperature" in b["text"])]
        words = [b["text"] for b in lab["boxes"] if b["kind"] == "tick"]
        assert inside(lab) == [] and len(titles) == 2, lab
        assert titles[0]["bottom"] <= titles[1]["top"] or titles[1]["bottom"] <= titles[0]["top"]  # apart
        assert sorted(set(words)) == sorted(["closer", "every", "effort", "forward", "inches", "moves", "pizza",
                                             "toward", "you"]) and len(words) == 18, words
        # Plotly's camera (download as png) is not under a label: tapping its place hits it.
        page.locator("#lab-chart .js-plotly-plot").hover()
        camera = page.locator("#lab-chart .modebar-btn[data-title*='png' i]").bounding_box()
        hit = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('.modebar-btn')?.dataset.title",
                            [camera["x"] + camera["width"] / 2, camera["y"] + camera["height"] / 2])
        assert hit == "Download plot as a PNG", hit
        page.locator("#lab-chart").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "page-phone-generate-lab-390.png"), full_page=False)
    finally:
        context.close()


def test_epochs_typed_while_the_page_is_still_fitting_its_preset_stay_as_typed(launch_app, browser):
    """On a fresh server the first page's preset fitting times the model (seconds): epochs
    typed meanwhile stay, and the estimate that arrives is of them."""
    fresh = launch_app("fit-race-app", env=SMALL_SERVER)  # nothing measured yet
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(fresh.url)
        page.get_by_text("Characters per token").wait_for()
        open_tab(page, "2 · Train")
        page.get_by_text("Training options").click()
        epochs = page.get_by_label("Epochs", exact=True)
        epochs.wait_for()
        assert "on this machine" not in text_of(page, "#train-estimate")  # the fitting is still timing
        epochs.click()
        epochs.press("Control+A")
        epochs.press_sequentially("3", delay=80)
        epochs.press("Tab")
        page.wait_for_function("() => document.querySelector('#train-estimate').innerText.includes('on this machine')",
                               polling=200)
        page.wait_for_timeout(2000)  # anything late from the fitting has arrived
        assert epochs.input_value() == "3"
        seen_in(page, "#train-estimate", "× 3 epochs")
    finally:
        context.close()
