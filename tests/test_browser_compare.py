"""Teaching with the page, in a real browser at a laptop's 1400 x 1000 and a phone's 390 x 844:
two runs compared on one chart with their labels and exported (CSV checked against the chart,
JSON, PNG), a shared link restoring the settings, presenter mode (larger text, thicker lines).

What is asserted is what a person sees: each element is scrolled to and hit-tested at its
centre with document.elementFromPoint. Screenshots go to test-artifacts/screenshots/.
"""
from __future__ import annotations

import csv
import io
import json
import time

import pytest

# Skips this module where the browser is missing; `browser` is its one Chromium per module, on our `app`.
from browser_kit import SHOTS, choose
from test_browser_teach import open_tab  # a tab folded away on a phone is opened from its menu

from app_server import SMALL_SERVER  # noqa: E402
from page_actions import TINY, second_run, train_until_done  # noqa: E402

pytestmark = pytest.mark.browser

LABELS = ["run 1: lr 6e-3, drop 0.1", "run 2: lr 6e-3 → 1e-3, drop 0.1 → 0"]
VIEWPORTS = {"desktop": (1400, 1000), "phone": (390, 844)}

# 'seen' when the element is on screen, has a size, is what the browser hits at its centre (for a
# legend entry: its group, whose toggle lies over the text) and is not faded out; else why not.
HIT_JS = """(el) => {
  el.scrollIntoView({block: 'center', inline: 'center'});
  const r = el.getBoundingClientRect();
  if (r.width < 1 || r.height < 1) return 'zero-size box';
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  if (x < 0 || y < 0 || x > innerWidth || y > innerHeight) return 'off screen';
  const hit = document.elementFromPoint(x, y);
  const owner = el.closest('.traces') || el;
  if (!hit || !(hit === owner || owner.contains(hit) || hit.contains(el)))
    return 'covered by ' + (hit ? hit.outerHTML.slice(0, 120) : 'nothing');
  let opacity = 1;
  for (let e = el; e; e = e.parentElement) opacity *= parseFloat(getComputedStyle(e).opacity);
  return opacity >= 0.9 ? 'seen' : 'faded to ' + opacity.toFixed(2);
}"""


def seen(locator) -> str:
    locator.first.wait_for()
    return locator.first.evaluate(HIT_JS)


@pytest.fixture(scope="module")
def app(launch_app):
    return launch_app("compare-app", env=SMALL_SERVER)


@pytest.fixture(scope="module", params=list(VIEWPORTS), ids=list(VIEWPORTS))
def viewport(request):
    return request.param


@pytest.fixture(scope="module")
def context(browser, viewport):  # noqa: F811
    width, height = VIEWPORTS[viewport]
    ctx = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    ctx.set_default_timeout(60_000)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def page(app, context):
    page = context.new_page()
    page.goto(app.url + TINY)
    page.get_by_text("Characters per token").wait_for()
    yield page
    page.close()


def shot(page, name: str, viewport: str, locator=None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = str(SHOTS / f"compare-{name}-{viewport}.png")
    (locator or page).screenshot(path=path, **({} if locator else {"full_page": True}))


CHART_JS = """() => document.querySelector('#compare-chart .js-plotly-plot').data.map(
  t => ({name: t.name, legend: t.showlegend !== false, dash: (t.line || {}).dash || 'solid', x: t.x, y: t.y}))"""


def download(page, locator):
    with page.expect_download() as info:
        locator.click()
    return info.value


def test_two_runs_compared_on_one_chart_with_their_labels_and_exported(page, viewport):
    open_tab(page, "2 · Train")
    page.get_by_text("parameters").first.wait_for()
    train_until_done(page)
    second_run(page)

    page.get_by_text("Compare runs and export").click()
    page.wait_for_function("() => document.querySelectorAll('#compare-chart .legendtext').length === 2")
    for label in LABELS:
        assert seen(page.locator("#compare-chart .legendtext").filter(has_text=label)) == "seen", label
    for run in ("run 1", "run 2"):
        assert seen(page.locator("#compare-runs label").filter(has_text=run)) == "seen"
    traces = page.evaluate(CHART_JS)
    assert [t["name"] for t in traces if t["legend"]] == LABELS
    assert [t["dash"] for t in traces] == ["solid", "dot", "solid", "dot"]  # training, validation of each
    shot(page, "runs", viewport, page.locator("#compare-box"))

    csv_link = page.locator("#export-csv")
    assert seen(csv_link) == "seen"
    saved = download(page, csv_link)
    assert saved.suggested_filename == "runs.csv"
    table = list(csv.reader(io.StringIO(open(saved.path(), encoding="utf-8-sig").read())))
    assert table[0] == ["run", "label", "step", "tokens_seen", "train_loss", "val_loss"]
    for number, label, train, val in ((1, LABELS[0], *traces[0:2]), (2, LABELS[1], *traces[2:4])):
        mine = [r for r in table[1:] if r[0] == str(number)]
        assert mine and {r[1] for r in mine} == {label}
        assert [int(r[3]) for r in mine] == train["x"] == val["x"]
        assert [float(r[4]) for r in mine] == train["y"] and [float(r[5]) for r in mine] == val["y"]
    assert len(table) - 1 == len(traces[0]["x"]) + len(traces[2]["x"])

    settings = json.loads(open(download(page, page.locator("#export-json")).path(), encoding="utf-8-sig").read())
    assert [r["settings"]["learning_rate"] for r in settings["runs"]] == [0.006, 0.001]
    assert [r["label"] for r in settings["runs"]] == LABELS
    png = download(page, page.locator("#export-png"))
    assert png.suggested_filename == "runs.png" and open(png.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    # The export is this session's: a link with another token is refused.
    href = csv_link.get_attribute("href")
    token = href.split("/")[-2]
    assert page.request.get(page.url.split("?")[0] + href).status == 200
    assert page.request.get(page.url.split("?")[0] + href.replace(token, token[:-4] + "AAAA")).status == 404

    # In Chinese: the chart, its labels and the downloads redrawn in the session's language.
    page.locator("#language").get_by_text("中文").click()
    zh_label = "第 2 次运行：学习率 6e-3 → 1e-3，dropout 0.1 → 0"
    page.wait_for_function(f"() => [...document.querySelectorAll('#compare-chart .legendtext')]"
                           f".some(t => t.textContent === {zh_label!r})")
    assert seen(page.locator("#compare-chart .legendtext").filter(has_text=zh_label)) == "seen"
    assert seen(page.locator("#export-csv").filter(has_text="下载曲线（CSV）")) == "seen"
    shot(page, "runs-zh", viewport, page.locator("#compare-box"))
    page.locator("#language").get_by_text("English").click()
    page.locator("#compare-chart .legendtext").filter(has_text=LABELS[1]).wait_for()


def field(page, label: str):
    return page.get_by_label(label, exact=True)


def test_a_shared_link_restores_the_settings(page, context, viewport):
    open_tab(page, "1 · Data")
    choose(page, "Sample text", "论语 (The Analects)")
    page.wait_for_function("() => [...document.querySelectorAll('textarea')].some(t => t.value.includes('子曰'))")
    page.locator("#copy-link").click()
    box = page.locator("#share-link textarea, #share-link input").first
    page.wait_for_function("el => el.value.startsWith('http')", arg=box.element_handle())
    link = box.input_value()
    assert seen(box) == "seen"
    assert link.startswith(page.url.split("?")[0] + "?preset=custom&tokenizer=char")
    for part in ("learning_rate=0.001", "drop_rate=0.0", "context_length=32", "text=lunyu"):
        assert part in link, (part, link)

    other = context.new_page()  # the link opened in another tab: another session
    try:
        other.goto(link)
        note = other.locator("#link-note")
        note.get_by_text("filled in").wait_for()
        assert seen(note) == "seen"
        other.get_by_text("22,093 (1,359 different)").wait_for()  # the Data tab shows the link's text
        assert seen(other.get_by_text("论语 (The Analects)").first) == "seen"
        open_tab(other, "2 · Train")
        assert field(other, "Preset").input_value() == "Custom (edit the fields below)"
        other.get_by_text("Training options").click()
        other.get_by_text("Model (the book's GPT_CONFIG fields)").click()
        for label, value in (("Learning rate", "0.001"), ("Epochs", "1"), ("drop_rate", "0"),
                             ("context_length", "32"), ("emb_dim", "32"), ("Evaluate every (steps)", "10")):
            assert field(other, label).input_value() == value, label
            assert seen(field(other, label)) == "seen", label
        assert other.get_by_label("Characters").nth(1).is_checked()  # the Train tab's tokenizer
        shot(other, "link-restored", viewport)

        other.goto(link + "&lang=zh-CN")  # the same link, on a Chinese page: its note in Chinese
        other.locator("#link-note").get_by_text("已填入你打开的链接中的设置").wait_for()
        assert seen(other.locator("#link-note")) == "seen"
        assert seen(other.get_by_text("复制带有这些设置的链接")) == "seen"
        shot(other, "link-restored-zh", viewport)

        other.goto(page.url.split("?")[0] + "?learning_rate=fast&text=lunyu")  # a link the page never writes
        other.locator("#link-note").get_by_text("not used").wait_for()
        assert "Learning rate must be a number, got 'fast'." in other.inner_text("#link-note")
        assert seen(other.locator("#link-note")) == "seen"
        other.get_by_text("Characters per token").wait_for()
        assert seen(other.get_by_text("The Verdict (Edith Wharton)").first) == "seen"  # nothing of it applied
        shot(other, "link-refused", viewport)
    finally:
        other.close()


PRESENTER_JS = """() => {
  const px = (el) => el ? parseFloat(getComputedStyle(el).fontSize) : null;
  const width = (el) => el ? parseFloat(getComputedStyle(el).strokeWidth) : null;
  const tick = document.querySelector('#loss-chart .xtick text');
  return {text: px(document.querySelector('#train-status p')), label: px(document.querySelector('#sample-log [data-testid=block-info]')),
          tick: tick ? parseFloat(tick.style.fontSize) : null,
          line: Math.max(...[...document.querySelectorAll('#loss-chart .scatterlayer .js-line')].map(width)),
          legend_line: width(document.querySelector('#loss-chart .legendlines path')),
          on: document.body.classList.contains('presenter')};
}"""


def settled(page, want: dict, timeout: float = 10.0) -> dict:
    """The sizes once they equal `want` (size transitions take a moment), or as they are then."""
    end = time.monotonic() + timeout
    while (got := page.evaluate(PRESENTER_JS)) != want and time.monotonic() < end:
        time.sleep(0.2)
    return got


def test_presenter_mode_makes_text_larger_and_chart_lines_thicker(page, app, context, viewport):
    open_tab(page, "2 · Train")
    normal = page.evaluate(PRESENTER_JS)
    assert not normal["on"] and normal["line"] > 0 and normal["legend_line"] > 0 and normal["tick"] > 0
    toggle = page.get_by_label("Presenter mode (large text, thick lines)")
    assert seen(toggle) == "seen"
    toggle.check()
    page.wait_for_function(f"() => ({PRESENTER_JS})().tick >= 20")
    big = page.evaluate(PRESENTER_JS)
    assert big["on"] and big["text"] >= 1.4 * normal["text"] and big["label"] >= 1.4 * normal["label"]
    assert big["line"] >= 2 * normal["line"] and big["legend_line"] >= 2 * normal["legend_line"]
    assert big["tick"] >= 1.6 * normal["tick"]
    assert seen(page.locator("#train-status p").first) == "seen"
    assert seen(page.locator("#loss-chart .js-plotly-plot")) == "seen"
    shot(page, "presenter", viewport)
    toggle.uncheck()
    assert settled(page, normal) == normal  # back as it was

    other = context.new_page()
    try:
        other.goto(app.url + "?present=1")
        other.wait_for_function(f"() => ({PRESENTER_JS})().on")
        assert other.get_by_label("Presenter mode (large text, thick lines)").is_checked()
        assert not other.locator("#link-note").is_visible()  # presenter mode alone: no settings note
        other.goto(app.url + TINY + "&present=1")  # with settings: a run to draw lines
        other.get_by_text("Characters per token").wait_for()
        open_tab(other, "2 · Train")
        other.get_by_text("parameters").first.wait_for()
        train_until_done(other)
        other.wait_for_function(f"() => ({PRESENTER_JS})().tick >= 20")
        opened = other.evaluate(PRESENTER_JS)
        assert opened["text"] >= 1.4 * normal["text"] and opened["line"] >= 2 * normal["line"]
        assert opened["tick"] >= 1.6 * normal["tick"] and opened["legend_line"] >= 2 * normal["legend_line"]
        assert seen(other.locator("#train-status p").first) == "seen"
        shot(other, "presenter-link", viewport)
    finally:
        other.close()
