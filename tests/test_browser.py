"""The playground in a real browser (Playwright driving Debian's Chromium, headless).

Loads the page, trains the demo preset and watches the loss chart gain points while the run
is still going, stops it, generates with moved sliders, opens every tab. Screenshots of each
tab go to test-artifacts/screenshots/ and the measured timings to test-artifacts/timings.json.
"""
from __future__ import annotations

import re
import time

import pytest

from browser_kit import CHROMIUM, DESKTOP, PHONE, SHOTS, choose, open_tab, seen, set_number, shot, write_timings

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from app_server import SMALL_SERVER, cpu_seconds  # noqa: E402

pytestmark = pytest.mark.browser
TIMINGS: dict[str, float] = {}

# The loss chart's traces, read from Plotly's own data on the page.
POINTS_JS = """() => {
  const el = document.querySelector('#loss-chart .js-plotly-plot');
  if (!el || !el.data) return -1;
  const t = el.data.find(t => t.name === 'Validation loss');
  return t && t.x ? t.x.length : 0;
}"""


@pytest.fixture(scope="module")
def app(launch_app):
    server = launch_app("browser-app", env=SMALL_SERVER)
    TIMINGS["seconds_from_launch_to_page_served"] = round(server.startup_seconds, 2)
    TIMINGS["server_cpu_seconds_until_served"] = round(server.cpu_seconds_to_serve, 2)
    yield server
    write_timings(TIMINGS, "timings.json")


@pytest.fixture(scope="module")
def page(app, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(app.url)
    yield page
    page.close()


def test_page_opens_on_the_verdict_with_what_the_model_sees(page):
    page.get_by_text("Characters per token").wait_for()
    body = page.inner_text("body")
    assert "The Verdict (Edith Wharton)" in body and "5,145" in body and "20,479" in body
    assert page.locator(".token-view span").count() >= 300
    shot(page, "1-data")


def test_training_draws_the_chart_while_it_runs_then_stops(page, app):
    open_tab(page, "2 · Train")
    page.get_by_text("parameters").first.wait_for()
    # The empty chart is drawn once the tab's first view arrives (the page's load chain).
    page.wait_for_function(f"({POINTS_JS})() >= 0", timeout=30_000)
    assert page.evaluate(POINTS_JS) == 0
    start, cpu_start = time.monotonic(), cpu_seconds(app.pid)
    page.locator("#train-btn").click()
    page.wait_for_function(f"({POINTS_JS})() >= 1", timeout=120_000)
    TIMINGS["seconds_from_train_click_to_first_chart_point"] = round(time.monotonic() - start, 2)
    TIMINGS["server_cpu_seconds_until_first_chart_point"] = round(cpu_seconds(app.pid) - cpu_start, 2)
    first = page.evaluate(POINTS_JS)
    page.wait_for_function(f"({POINTS_JS})() >= {first + 2}", timeout=120_000)
    # Still running: more points arrived while the Train button stays disabled.
    assert page.locator("#train-btn").is_disabled()
    assert "Training" in page.inner_text("#train-status")
    fraction = float(page.locator(".run-progress-fill").get_attribute("data-fraction"))
    assert 0 < fraction < 1
    shot(page, "2-train-running")
    page.locator("#stop-btn").click()
    page.wait_for_function("() => document.querySelector('#train-status').innerText.includes('Stopped after step')",
                           timeout=60_000)
    page.wait_for_function("() => !document.querySelector('#resume-btn').disabled")
    assert not page.locator("#train-btn").is_disabled()
    n = page.evaluate(POINTS_JS)
    page.wait_for_timeout(1500)
    assert page.evaluate(POINTS_JS) == n  # stopped: no more points
    shot(page, "2-train-stopped")


def test_download_checkpoint_saves_the_stopped_run_s_file(page, tmp_path):
    from gpt_core.checkpoint import read_checkpoint

    page.get_by_text("Checkpoint", exact=True).click()  # the accordion
    link = page.locator("#download-ckpt a")
    link.wait_for()
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.endswith(".pt"), download.suggested_filename
    local = tmp_path / download.suggested_filename
    download.save_as(local)
    assert read_checkpoint(local).trainer_state["step"] >= 0


def test_generate_with_moved_sliders(page):
    open_tab(page, "3 · Generate")
    # The tab opening fills the model list and draws the candidates for the prompt.
    page.wait_for_function("() => document.querySelector('#candidates-chart .js-plotly-plot') !== null")
    for slider, value in (("#temperature", "0.7"), ("#top-k", "10"), ("#top-p", "0.9"), ("#max-new", "30")):
        box = page.locator(f"{slider} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.locator("#generate-btn").click()
    # The prompt and the continuation are shown apart.
    page.wait_for_function("() => (document.querySelector('#generate-output .gen-new') || {}).innerText?.length > 0")
    assert page.inner_text("#generate-output .gen-prompt") == "Every effort moves you"
    # After generating, the candidates chart is redrawn under the moved sliders.
    title = ("() => [...document.querySelectorAll('#candidates-chart .gtitle')]"
             ".some(t => t.textContent.includes('temperature 0.7, top-k 10, top-p 0.9'))")
    try:
        page.wait_for_function(title, timeout=120_000)
    finally:
        shot(page, "3-generate")
    lab = page.locator("#lab-temperature input[type=number]")
    lab.fill("3")
    lab.press("Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#lab-chart .annotation-text')].some(t => t.textContent.includes('temperature 3'))")
    shot(page, "3-generate-lab")


def test_generate_fast_says_what_it_did_under_the_output(page):
    # The last generation ran in the default, Exact; the line under the output says so.
    assert seen(page, "#generate-status", "Exact (float32)") == "seen"
    page.locator("#generate-precision").get_by_text("Fast (bfloat16)").click()
    page.locator("#generate-btn").click()
    page.wait_for_function("() => document.querySelector('#generate-status').innerText.includes('Fast (bfloat16)')",
                           timeout=120_000)
    line = page.inner_text("#generate-status")
    assert re.search(r"Generated \d+ tokens? in [\d.]+ s \([\d,]+ tokens/s\)\. Precision: Fast \(bfloat16\): "
                     r"bfloat16 was asked for", line), line
    assert seen(page, "#generate-status", "Fast (bfloat16)") == "seen"
    page.set_viewport_size(PHONE)  # a phone's width: the line wraps and stays readable
    page.wait_for_timeout(400)  # Gradio and the charts lay themselves out again
    try:
        assert seen(page, "#generate-status", "tokens/s") == "seen"
        width = page.evaluate("() => document.querySelector('#generate-status').getBoundingClientRect().right")
        assert width <= PHONE["width"], width
        page.locator("#generate-output").evaluate("e => e.scrollIntoView({block: 'start'})")
        page.screenshot(path=str(SHOTS / "3-generate-fast-390.png"))
    finally:
        page.set_viewport_size(DESKTOP)
        page.wait_for_timeout(400)
    shot(page, "3-generate-fast")


STOP_STATE = "() => { const b = document.querySelector('#generate-stop'); return [b.disabled, b.className]; }"


def test_generate_stop_is_live_only_while_a_generation_runs(page):
    disabled, classes = page.evaluate(STOP_STATE)
    assert disabled and "stop" not in classes.split(), classes  # nothing runs: greyed out, not red
    # Every state Stop passes through is recorded, however short the generation.
    page.evaluate("""() => { window.stopStates = [];
        const b = document.querySelector('#generate-stop');
        new MutationObserver(() => window.stopStates.push([b.disabled, b.className]))
            .observe(b, {attributes: true}); }""")
    box = page.locator("#max-new input[type=number]")
    box.fill("500")
    box.press("Enter")
    page.locator("#generate-btn").click()
    page.wait_for_function("() => window.stopStates.some(([d, c]) => !d && c.split(' ').includes('stop'))")
    # Stopped mid-way; forced, so a generation that ends just before the click leaves a greyed
    # button pressed for nothing instead of a click waiting for it to come live again.
    page.locator("#generate-stop").click(force=True)
    page.wait_for_function("() => document.querySelector('#generate-stop').disabled", timeout=60_000)
    disabled, classes = page.evaluate(STOP_STATE)
    assert disabled and "stop" not in classes.split(), classes
    box.fill("30")
    box.press("Enter")


def test_gpt2_tab_explains_sizes_and_refuses_folders_outside_the_models_folder(page):
    open_tab(page, "4 · GPT-2")
    assert "1558M" in page.inner_text("body") and "124.4M" in page.inner_text("body")
    page.get_by_text("Offline? Import from a folder or upload").click()
    page.locator("#gpt2-folder textarea, #gpt2-folder input").first.fill("/etc")
    page.locator("#gpt2-folder-btn").click()
    page.get_by_text("imports only from").first.wait_for()
    shot(page, "4-gpt2")


def test_evaluate_colours_each_token(page):
    open_tab(page, "5 · Evaluate")
    page.locator("#eval-btn").click()
    page.wait_for_function("() => document.querySelectorAll('#eval-a .token-view span').length > 100")
    assert "Perplexity" in page.inner_text("#eval-a")
    shot(page, "5-evaluate")


ITERATIONS = "Iterations over random windows (0 = epochs over sliding windows, the book's way)"
TRAIN_POINTS_JS = POINTS_JS.replace("'Validation loss'", "'Training loss'")


def test_babygpt_on_lunyu_draws_both_curves_and_sits_beside_its_bigram(page):
    open_tab(page, "1 · Data")
    choose(page, "Sample text", "论语 (The Analects)")
    page.wait_for_function("() => [...document.querySelectorAll('textarea')].some(t => t.value.includes('子曰'))")
    open_tab(page, "2 · Train")
    status = "() => document.querySelector('#train-status').innerText"
    page.get_by_text("Training options").click()  # the iterations and evaluation fields
    for preset in ("Bigram baseline (BabyGPT notebook): a lookup table",
                   "BabyGPT notebook: 4 layers, characters, random windows"):
        choose(page, "Preset", preset)
        # The preset sets the notebook's 3,000 iterations; fewer keep the test short.
        page.wait_for_function("el => el.value === '3000'", arg=page.get_by_label(ITERATIONS).element_handle())
        set_number(page, ITERATIONS, "150")
        set_number(page, "Evaluate every (steps)", "50")
        set_number(page, "Evaluation batches", "5")
        page.locator("#train-btn").click()
        page.wait_for_function(f"!({status})().includes('Done')")
        # Both curves draw while the run goes on, then it ends with an evaluation every 50 steps.
        page.wait_for_function(f"({POINTS_JS})() >= 2 && ({TRAIN_POINTS_JS})() >= 2", timeout=180_000)
        page.wait_for_function(f"({status})().includes('Done')", timeout=300_000)
        assert page.evaluate(POINTS_JS) == page.evaluate(TRAIN_POINTS_JS) >= 3
    metrics = page.inner_text("#train-metrics")
    assert "Runs on this text, last validation loss" in metrics
    assert "bigram" in metrics and "babygpt" in metrics
    shot(page, "2-train-babygpt-lunyu")


def test_a_second_student_sees_the_queue_and_leaves_it_with_stop(app, browser):
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    # two browser contexts: two students, two Gradio sessions
    try:
        first, second = (context.new_page() for context in contexts)
        for pg in (first, second):
            pg.set_default_timeout(60_000)
            pg.goto(app.url)
            open_tab(pg, "2 · Train")
            pg.get_by_text("parameters").first.wait_for()
        first.get_by_text("Training options").click()  # the accordion
        epochs = first.get_by_label("Epochs", exact=True)
        epochs.fill("100")
        epochs.press("Tab")
        first.locator("#train-btn").click()
        first.wait_for_function("() => document.querySelector('#train-status').innerText.includes('Training')",
                                timeout=120_000)
        second.locator("#train-btn").click()
        waiting = "Waiting: 1 training ahead of you"
        second.wait_for_function(f"() => document.querySelector('#train-status').innerText.includes('{waiting}')")
        second.locator("#train-status").scroll_into_view_if_needed()  # pressing Train scrolled the page down
        assert seen(second, "#train-status", waiting) == "seen"
        assert "1 ahead of you" in second.inner_text("#progress-box")
        assert second.locator("#train-btn").inner_text().startswith("Waiting… (1 ahead)")
        assert second.locator("#train-btn").is_disabled() and not second.locator("#stop-btn").is_disabled()
        shot(second, "2-train-waiting-in-the-queue", phone=True)
        second.locator("#stop-btn").click()
        left = "You left the queue; nothing was trained."
        second.wait_for_function(f"() => document.querySelector('#train-status').innerText.includes('{left}')")
        second.wait_for_function("() => !document.querySelector('#train-btn').disabled")
        assert second.locator("#train-btn").inner_text() == "Train"
        second.locator("#train-status").scroll_into_view_if_needed()
        assert seen(second, "#train-status", left) == "seen"
        assert second.locator("#stop-btn").is_disabled()  # nothing left to stop
        shot(second, "2-train-left-the-queue", phone=True)
        first.locator("#stop-btn").click()
        first.wait_for_function("() => document.querySelector('#train-status').innerText.includes('Stopped after step')",
                                timeout=120_000)
    finally:
        for context in contexts:
            context.close()
