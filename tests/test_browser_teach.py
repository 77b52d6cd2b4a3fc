"""The teaching views in a real browser, on a desktop (1400 x 1000) and a phone (390 x 844):
a run replayed with its slider (the sample shown changes, the marker on the curve moves), the
attention heatmap of the trained model beside a fresh one, and the inspector opened on a
generated token. What is asserted is what a person sees: visible, and what the browser hits
at that point (document.elementFromPoint). Screenshots go to test-artifacts/screenshots/.
"""
from __future__ import annotations

import pytest

# Skips this module where the browser is missing; `browser` is its one Chromium per module, on our `app`.
from browser_kit import seen
from app_server import ROOT, SMALL_SERVER

pytestmark = pytest.mark.browser
SHOTS = ROOT / "test-artifacts" / "screenshots"
VIEWPORTS = {"desktop": (1400, 1000), "phone": (390, 844)}
STATUS = "() => document.querySelector('#train-status').innerText"

# The loss chart's replay marker: its x in the data, and where its first point is drawn.
MARKER_JS = """() => {
  const el = document.querySelector('#loss-chart .js-plotly-plot');
  const t = el && el.data && el.data.find(t => t.name === 'Replay');
  if (!t) return null;
  const g = [...el.querySelectorAll('g.trace')].find(g => g.__data__ && g.__data__[0] && g.__data__[0].trace
                                                         && g.__data__[0].trace.name === 'Replay');
  const point = g && g.querySelector('path.point');
  const r = point ? point.getBoundingClientRect() : null;
  return {x: t.x[0], left: r ? r.left + r.width / 2 : null, top: r ? r.top + r.height / 2 : null};
}"""
# Is what the browser hits at (x, y) inside `selector`?
HIT_JS = """([selector, x, y]) => {
  const box = document.querySelector(selector), hit = document.elementFromPoint(x, y);
  return !!(box && hit && box.contains(hit));
}"""
SLIDER_MAX_JS = "() => Number(document.querySelector('#replay-slider input[type=range]').max)"


@pytest.fixture(scope="module")
def app(launch_app):
    return launch_app("teach-app", env=SMALL_SERVER)


@pytest.fixture(scope="module", params=list(VIEWPORTS))
def page(request, app, browser):
    """One student per viewport (a browser context of its own), who starts a 2-epoch demo run."""
    width, height = VIEWPORTS[request.param]
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.viewport_name = request.param
    pg.goto(app.url)
    open_tab(pg, "2 · Train")
    pg.get_by_text("parameters").first.wait_for()
    pg.get_by_text("Training options").click()
    epochs = pg.get_by_label("Epochs", exact=True)
    epochs.fill("2")
    epochs.press("Tab")
    pg.locator("#train-btn").click()
    yield pg
    context.close()


def open_tab(page, name: str) -> None:
    """Click the tab, from the "More tabs" menu where a narrow page folds it away."""
    page.get_by_role("tab").first.wait_for()  # the tab bar is drawn (and folded, where narrow)
    tab = page.get_by_role("tab", name=name)
    if not tab.is_visible():
        page.locator("button[aria-label='More tabs']").click()
        tab = page.locator(".overflow-dropdown button", has_text=name)
    tab.click()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"teach-{name}-{page.viewport_name}.png"), full_page=True)


def wait_done(page) -> None:
    page.wait_for_function(f"({STATUS})().includes('Done')", timeout=300_000)


def replay_text(page) -> str:
    return page.inner_text("#replay-text")


def scrub_to(page, position: int) -> None:
    box = page.locator("#replay-slider input[type=number]")
    box.fill(str(position))
    box.press("Enter")


def test_the_run_is_replayed_with_its_slider_and_the_marker_moves(page):
    # During the run the replay fills in: the slider grows while the status says Training.
    page.wait_for_function(f"({SLIDER_MAX_JS})() >= 2 && ({STATUS})().includes('Training')", timeout=180_000)
    wait_done(page)
    n = page.evaluate(SLIDER_MAX_JS)
    assert n >= 5  # 2 epochs of 9 steps, an evaluation every 3
    page.locator("#replay-frame").scroll_into_view_if_needed()
    assert seen(page, "#replay-frame", f"Evaluation {n} of {n}") == "seen"
    last_text, last_marker = replay_text(page), page.evaluate(MARKER_JS)
    shot(page, "replay-last")

    scrub_to(page, 1)
    page.wait_for_function("() => document.querySelector('#replay-frame').innerText.includes('Evaluation 1 of')")
    page.wait_for_function(f"() => ({MARKER_JS})() && ({MARKER_JS})().x < {last_marker['x']}")
    first_text, first_marker = replay_text(page), page.evaluate(MARKER_JS)
    assert first_text != last_text and first_text.startswith("Every effort moves you")
    assert seen(page, "#replay-frame", "Evaluation 1 of") == "seen"
    page.locator("#loss-chart").scroll_into_view_if_needed()
    first_marker = page.evaluate(MARKER_JS)
    assert page.evaluate(HIT_JS, ["#loss-chart", first_marker["left"], first_marker["top"]])
    shot(page, "replay-first")

    scrub_to(page, n)
    page.wait_for_function(f"() => document.querySelector('#replay-frame').innerText.includes('Evaluation {n} of {n}')")
    page.wait_for_function(f"() => ({MARKER_JS})().x === {last_marker['x']}")
    assert replay_text(page) == last_text
    moved = page.evaluate(MARKER_JS)
    assert moved["left"] > first_marker["left"]  # drawn further right: later in the run


def test_attention_heatmap_of_the_trained_model_beside_the_fresh_one(page):
    wait_done(page)
    open_tab(page, "6 · Attention")
    page.locator("#attention-btn").click()
    heat = ("(sel) => { const el = document.querySelector(sel + ' .js-plotly-plot');"
            " return el && el.data ? el.data.map(t => t.name) : null; }")
    for box in ("#attention-trained", "#attention-fresh"):
        page.wait_for_function(f"() => {{ const n = ({heat})('{box}'); return n && n.includes('masked'); }}")
    title = "(sel) => [...document.querySelectorAll(sel + ' .gtitle')].map(t => t.textContent).join(' ')"
    assert "Your model · Trained" in page.evaluate(title, "#attention-trained")
    assert "Fresh (untrained)" in page.evaluate(title, "#attention-fresh")
    # The map is drawn where a person looks: its image is what the browser hits.
    page.locator("#attention-trained").scroll_into_view_if_needed()
    centre = page.evaluate("""() => { const img = document.querySelector('#attention-trained g.hm image');
                                      const r = img.getBoundingClientRect();
                                      return [r.left + r.width / 2, r.top + r.height / 2, r.width, r.height]; }""")
    assert centre[2] > 100 and centre[3] > 100
    assert page.evaluate(HIT_JS, ["#attention-trained", centre[0], centre[1]])
    rows = page.evaluate("() => document.querySelector('#attention-trained .js-plotly-plot').data[0].z.length")
    assert rows == 4  # "Every effort moves you": four GPT-2 tokens
    shot(page, "attention")
    page.get_by_label("Head", exact=True).click()
    page.get_by_role("option", name="Head 2").click()
    page.wait_for_function(f"() => ({title})('#attention-trained').includes('Head 2')")
    assert seen(page, "#attention-note", "4 tokens") == "seen"
    shot(page, "attention-head-2")


def test_the_inspector_opens_on_a_generated_token(page):
    wait_done(page)
    open_tab(page, "3 · Generate")
    page.wait_for_function("() => document.querySelector('#candidates-chart .js-plotly-plot') !== null")
    box = page.locator("#max-new input[type=number]")
    box.fill("12")
    box.press("Enter")
    page.locator("#generate-btn").click()
    spans = "#inspect-tokens .token-container"  # the prompt, then each token (a newline token draws a break)
    page.wait_for_function(f"() => document.querySelectorAll('{spans}').length >= 8", timeout=120_000)
    token = page.locator(spans).nth(3)
    token.scroll_into_view_if_needed()
    r = token.bounding_box()
    assert page.evaluate(HIT_JS, ["#inspect-tokens", r["x"] + r["width"] / 2, r["y"] + r["height"] / 2])
    clicked = token.inner_text().strip()
    token.click()
    page.wait_for_function("() => /Token \\d+ of 12/.test(document.querySelector('#inspect-summary').innerText)")
    summary = page.inner_text("#inspect-summary")
    assert clicked in summary and "choice of 50,257 tokens" in summary
    page.locator("#inspect-summary").scroll_into_view_if_needed()  # below the output since it became the page's HTML
    assert seen(page, "#inspect-summary", "choice of 50,257 tokens") == "seen"
    number = summary.split("Token ", 1)[1].split(" ", 1)[0]
    page.wait_for_function("(n) => [...document.querySelectorAll('#inspect-chart .gtitle')]"
                           ".some(t => t.textContent.includes('Token ' + n + ' of 12'))", arg=number)
    marked = page.evaluate("() => [...document.querySelectorAll('#inspect-chart .ytick text')]"
                           ".filter(t => t.textContent.startsWith('▶')).length")
    assert marked == 1  # the drawn token, marked among its candidates
    page.locator("#inspect-chart").scroll_into_view_if_needed()
    shot(page, "inspector")


def test_the_views_switch_to_chinese(page):
    wait_done(page)
    page.locator("#language").get_by_text("中文").click()
    page.wait_for_function("() => document.querySelector('#replay-frame').innerText.includes('次评估')")
    open_tab(page, "2 · 训练")
    page.locator("#replay-frame").scroll_into_view_if_needed()
    assert seen(page, "#replay-frame", "训练集损失") == "seen"
    assert seen(page, "#replay-slider", "回放训练过程") == "seen"
    shot(page, "replay-zh")
    open_tab(page, "6 · 注意力")
    page.locator("#attention-btn").click()
    page.wait_for_function("() => [...document.querySelectorAll('#attention-trained .gtitle')]"
                           ".some(t => t.textContent.includes('你的模型 · 训练后'))")
    assert seen(page, "#attention-note", "个注意力头") == "seen"
    shot(page, "attention-zh")
