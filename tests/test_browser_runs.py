"""Runs of the Train tab in a real browser (Playwright driving Debian's Chromium), asserting what
a person sees: each fast preset, fitted to each bundled text and to an uploaded GBK text, starts
and finishes within twice the time its estimate states (the server's time budget made short);
BabyGPT shows its first point and sample within seconds, on a chart sized to its data without an
epochs axis; the book's 124M is timed against its first steps, then stopped; the loss chart
keeps a zoom while it redraws. Screenshots at 1400 x 1000 and 390 x 844 go to
test-artifacts/screenshots/, the timings to test-artifacts/run-timings.json.
"""
from __future__ import annotations

import os
import re
import time

import pytest

from app_server import SMALL_SERVER, cpu_seconds
from browser_kit import CHROMIUM, DESKTOP, choose, open_tab, seen, set_number, shot, text_of, write_timings

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from gpt_core.corpus import ASSETS_DIR, SAMPLE_CORPORA  # noqa: E402
from playground.options import PRESET_LABELS  # noqa: E402

pytestmark = pytest.mark.browser
BUDGET_S = 10  # the server's time budget for the fast presets: short runs keep the suite fast
FAST_PRESETS = ("demo", "char", "bigram", "babygpt")
ITERATIONS = "Iterations over random windows (0 = epochs over sliding windows, the book's way)"
TIMINGS: dict[str, dict] = {}
STATUS, ESTIMATE, PROGRESS = "#train-status", "#train-estimate", "#progress-box"
CHART = "document.querySelector('#loss-chart .js-plotly-plot')"
POINTS_JS = f"""() => {{
  const el = {CHART};
  const t = el && el.data && el.data.find(t => t.name === 'Validation loss');
  return t && t.x ? t.x.length : 0;
}}"""


@pytest.fixture(scope="module")
def app(launch_app):
    yield launch_app("browser-runs", env={**SMALL_SERVER, "PLAYGROUND_TIME_BUDGET_S": str(BUDGET_S)})
    write_timings(TIMINGS, "run-timings.json")


@pytest.fixture(scope="module")
def page(app, browser):
    page = browser.new_page(viewport=DESKTOP)
    page.set_default_timeout(180_000)
    page.goto(app.url)
    page.get_by_text("Characters per token").wait_for()
    open_tab(page, "2 · Train")
    page.wait_for_function(f"() => document.querySelector('{ESTIMATE}').innerText.includes('on this machine')")
    yield page
    page.close()


def wait_text(page, selector: str, text: str, timeout: float = 180_000) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s) || {innerText: ''}).innerText.includes(t)",
                           arg=[selector, text], timeout=timeout)


def new_estimate(page, before: str, must_say: str = "on this machine", timeout: float = 300.0) -> str:
    """The estimate once it has changed from `before` (a new text or preset fitted), says
    `must_say`, shows no loading timer (Gradio's "0.4s" while a handler runs) and has held
    still for a second."""
    end, last, same = time.monotonic() + timeout, None, 0
    while time.monotonic() < end:
        text = text_of(page, ESTIMATE)
        settled = text != before and must_say in text and not re.match(r"\s*[\d.]+s\b", text)
        same = same + 1 if settled and text == last else 0
        if same >= 2:
            return text
        last = text
        time.sleep(0.5)
    raise AssertionError(f"the estimate did not settle on a new one saying {must_say!r}:\n{text}")


def stated_seconds(estimate: str) -> float:
    m = re.search(r"→ about ([\d.]+) (s|minutes?|hours?) on this machine", estimate)
    assert m, estimate
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)[0]]


def choose_text(page, name: str) -> None:
    open_tab(page, "1 · Data")
    if f"{name} (read as" in page.inner_text("body"):
        return  # already the text: choosing it again changes nothing
    before = text_of(page, ESTIMATE)
    choose(page, "Sample text", name)
    new_estimate(page, before)


def upload_gbk(page, tmp_path) -> str:
    """A Chinese text of 3,000 characters saved as GBK (论语's opening), uploaded on the Data tab."""
    path = tmp_path / "lunyu-gbk.txt"
    path.write_bytes((ASSETS_DIR / "lunyu.txt").read_text(encoding="utf-8")[:3000].encode("gbk"))
    before = text_of(page, ESTIMATE)
    open_tab(page, "1 · Data")
    page.locator("#text-upload input[type=file]").set_input_files(str(path))
    wait_text(page, "body", "Uploaded: lunyu-gbk.txt")
    assert "gb18030" in page.inner_text("body")
    new_estimate(page, before)
    return path.name


def choose_preset(page, preset: str, must_say: str = "on this machine") -> str:
    """Choose `preset` on the Train tab (fitted to the text on the way); its estimate."""
    open_tab(page, "2 · Train")
    if page.get_by_label("Preset", exact=True).input_value() == PRESET_LABELS[preset]:
        return text_of(page, ESTIMATE)  # already chosen, and fitted when the text was
    before = text_of(page, ESTIMATE)
    choose(page, "Preset", PRESET_LABELS[preset])
    return new_estimate(page, before, must_say)


def run_preset(page, app, text: str, preset: str) -> None:
    """Choose `preset` (fitted to the text), train it to the end, and check what the page says."""
    estimate = choose_preset(page, preset)
    for refusal in ("must be fewer", "fewer than one batch", "fewer than one window", "choose at most"):
        assert refusal not in estimate, estimate  # the fitted preset runs on this text
    stated = stated_seconds(estimate)
    assert stated <= 2.5 * BUDGET_S, estimate  # fitted to the budget
    assert page.locator("#stop-btn").is_disabled()  # nothing to stop yet
    start, cpu_start = time.monotonic(), cpu_seconds(app.pid)
    page.locator("#train-btn").click()
    # While it trains, Stop is live (checked in the same frame as the status says so).
    page.wait_for_function(f"() => document.querySelector('{STATUS}').innerText.includes('Training a new') "
                           "&& !document.querySelector('#stop-btn').disabled")
    page.wait_for_function(f"({POINTS_JS})() >= 1")
    first_point = time.monotonic() - start
    if preset == "babygpt":
        _random_windows_show_samples_and_size_the_chart(page, start)
    wait_text(page, STATUS, "Done:", timeout=max(180_000, 4_000 * stated))
    seconds, cpu = time.monotonic() - start, cpu_seconds(app.pid) - cpu_start
    assert seen(page, STATUS, "Done:") == "seen"
    progress = text_of(page, PROGRESS)
    assert "done" in progress and "ETA" not in progress and "100%" in progress, progress
    assert page.locator("#stop-btn").is_disabled() and not page.locator("#train-btn").is_disabled()
    TIMINGS[f"{text} / {preset}"] = {"stated_s": stated, "first_point_s": round(first_point, 1),
                                     "finished_s": round(seconds, 1), "server_cpu_s": round(cpu, 1)}
    shot(page, f"runs-{re.sub(r'[^a-z0-9]+', '-', text.lower()).strip('-')}-{preset}", phone=True)
    # On a machine others keep busy the wall clock runs long: the server's own CPU time bounds
    # what the run takes on an idle one (it keeps at least one core busy throughout). On an
    # oversubscribed machine even CPU seconds stretch (cores' shared caches and memory
    # bandwidth), so the idle promise, 2x, is judged only where the load leaves the server
    # its cores; past that the run must still finish within 3x.
    idle = min(seconds, cpu)
    load = os.getloadavg()[0]
    factor = 2 if load <= os.cpu_count() else 3
    TIMINGS[f"{text} / {preset}"]["load"] = round(load, 1)
    assert idle <= factor * stated, (f"{text} / {preset}: {seconds:.1f} s ({cpu:.1f} CPU s), stated {stated:.0f} s "
                                     f"(load {load:.1f} on {os.cpu_count()} cores):\n{estimate}")


def _random_windows_show_samples_and_size_the_chart(page, start: float) -> None:
    """BabyGPT: a sample with the first evaluation, within seconds; no epochs axis; the x axis
    the data's, not the whole run's."""
    page.wait_for_function("() => document.querySelector('#sample-log textarea').value.includes('[step 1]')")
    first_sample = time.monotonic() - start
    assert first_sample < 30, f"the first sample took {first_sample:.1f} s"
    layout = page.evaluate(f"""() => {{ const el = {CHART};
        return {{epochs: !!el.layout.xaxis2, range: el._fullLayout.xaxis.range,
                 data: Math.max(...el.data.flatMap(t => (t.x || []).filter(x => x !== null)))}}; }}""")
    assert not layout["epochs"], layout
    assert layout["range"][1] <= layout["data"] * 1.1 + 1, layout


@pytest.mark.parametrize("text", list(SAMPLE_CORPORA))
def test_each_fast_preset_fits_a_bundled_text_and_finishes_within_its_estimate(page, app, text):
    choose_text(page, text)
    for preset in FAST_PRESETS:
        run_preset(page, app, text, preset)


def test_each_fast_preset_fits_an_uploaded_gbk_text_and_finishes_within_its_estimate(page, app, tmp_path):
    name = upload_gbk(page, tmp_path)
    for preset in FAST_PRESETS:
        run_preset(page, app, name, preset)


def test_the_books_124M_is_timed_against_its_first_steps_then_stopped(page, app):
    choose_text(page, "The Verdict (Edith Wharton)")
    choose_preset(page, "book-124M", "Measure speed")
    before = text_of(page, ESTIMATE)
    page.get_by_role("button", name="Measure speed on this machine").click()
    estimate = new_estimate(page, before, "ms a step")
    step_s = float(re.search(r"Measured here: ([\d,]+) ms a step", estimate).group(1).replace(",", "")) / 1000
    page.locator("#train-btn").click()
    steps = {}
    for n in (2, 4):  # steps 2-4 have no evaluation between them (one every 5 steps, from step 1)
        wait_text(page, PROGRESS, f"step {n}/90", timeout=600_000)
        steps[n] = (time.monotonic(), cpu_seconds(app.pid))
    wall, cpu = ((steps[4][i] - steps[2][i]) / 2 for i in (0, 1))
    TIMINGS["book-124M"] = {"measured_step_s": step_s, "run_step_s": round(wall, 2), "run_step_cpu_s": round(cpu, 2)}
    shot(page, "runs-book-124M-training", phone=True)
    page.locator("#stop-btn").click()  # (before the checks: a failed one must not leave it training)
    wait_text(page, STATUS, "Stopped after step", timeout=600_000)
    assert seen(page, STATUS, "Stopped after step") == "seen"
    progress = text_of(page, PROGRESS)
    assert "stopped at step" in progress and "ETA" not in progress, progress  # no time left for a stopped run
    assert page.locator("#stop-btn").is_disabled() and not page.locator("#resume-btn").is_disabled()
    shot(page, "runs-book-124M-stopped", phone=True)
    # The run's steps take at most twice the measured step. On a machine others keep busy the
    # wall clock runs long, and the server's CPU time (at least one core busy throughout) bounds
    # an idle machine's step; the measured step is not too pessimistic either where the machine
    # is idle enough to tell (both cores the server's: CPU time near twice the wall clock).
    assert min(wall, cpu) <= 2 * step_s, (step_s, wall, cpu)
    if cpu >= 1.5 * wall:
        assert step_s / 2 <= wall, (step_s, wall, cpu)


def _ranges(page) -> dict:
    return page.evaluate(f"() => {{ const l = {CHART}._fullLayout; return {{x: l.xaxis.range, y: l.yaxis.range}}; }}")


def test_the_chart_keeps_a_zoom_while_it_redraws(page):
    choose_preset(page, "demo")
    if not page.get_by_label(ITERATIONS, exact=True).is_visible():
        page.get_by_text("Training options").click()  # the accordion
    set_number(page, ITERATIONS, "0")  # (fitted to a short budget, the demo may train random windows)
    set_number(page, "Epochs", "100")  # a run long enough to zoom into
    page.locator("#train-btn").click()
    page.wait_for_function(f"({POINTS_JS})() >= 2")
    full = _ranges(page)
    for _ in range(5):  # a drag that a redraw interrupts (a new chart mid-drag) is tried again
        page.locator("#loss-chart").scroll_into_view_if_needed()
        box = page.locator("#loss-chart .nsewdrag").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.6, steps=4)
        page.mouse.up()
        page.wait_for_timeout(300)
        if _ranges(page)["x"][1] < full["x"][1] * 0.8:
            break
    zoomed = _ranges(page)
    assert zoomed["x"][1] < full["x"][1] * 0.8, (full, zoomed)
    # Gradio draws each update into a new chart: mark this one, then wait for two redraws with more points.
    points = page.evaluate(POINTS_JS)
    for _ in range(2):
        page.evaluate(f"() => {{ {CHART}.__seen = true; }}")
        page.wait_for_function(f"() => {CHART} && !{CHART}.__seen")
    page.wait_for_function(f"({POINTS_JS})() > {points}")
    kept = _ranges(page)
    assert kept["x"] == pytest.approx(zoomed["x"]) and kept["y"] == pytest.approx(zoomed["y"]), (zoomed, kept)
    shot(page, "runs-chart-zoom-kept", phone=False)
    page.locator("#loss-chart .nsewdrag").first.dblclick()  # Plotly's reset: the whole frame again
    page.evaluate(f"() => {{ {CHART}.__seen = true; }}")
    page.wait_for_function(f"() => {CHART} && !{CHART}.__seen")
    assert _ranges(page)["x"] == pytest.approx(full["x"])
    page.locator("#stop-btn").click()
    wait_text(page, STATUS, "Stopped after step")
