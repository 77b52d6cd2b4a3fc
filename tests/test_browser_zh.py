"""The Chinese page (`?lang=zh-CN`) in a real browser at 1400 x 1000 and 390 x 844, every tab
visited in use: no visible English word is left, charts included, and the switch back to
English leaves no Chinese. Screenshots of each tab go to test-artifacts/screenshots/zh-*.png.

"Visible" is what a person sees: a text node with a non-zero box, not hidden, not faded out
(Plotly's SVG text counts). What the user wrote or the model generated is not the page's
wording and is left out: text boxes, the token views, the prompt and the generated text, the samples replayed,
and the tick labels of charts whose ticks are tokens.
"""
from __future__ import annotations

import re

import pytest

# Skips this module where the browser is missing; `browser` is its one Chromium per module, on our `app`.
from browser_kit import SHOTS
from test_browser_teach import open_tab

from app_server import SMALL_SERVER
from page_actions import TINY, train_until_done

pytestmark = pytest.mark.browser
VIEWPORTS = {"desktop": (1400, 1000), "phone": (390, 844)}

# Latin words a Chinese reader of the book sees in Latin letters too, and why:
ALLOWED = re.compile("|".join([
    r"context_length|emb_dim|n_heads|n_layers|drop_rate|qkv_bias|GPT_CONFIG|model\.pth",  # the book's code names
    r"GPT-2|GPT|BPE|AdamW|OpenAI|BabyGPT|Bigram|Transformer|Gradio|API",  # names of things
    r"float32|bfloat16|top-k|top-p|logits|softmax|CSV|PNG|JSON|safetensors|utf-8|UTF-8|GBK|\.txt|\.pt|\.pth",  # formats,
    # and the functions the Chinese texts on the book name in Latin letters too (softmax, logits)
    r"small|medium|large|xl|\d+(\.\d+)?[kKMB]\b",  # GPT-2's sizes (124M, 355M...) and counts
    r"The Verdict|Tiny Shakespeare|Build a Large Language Model \(From Scratch\)",  # titles of works
    r"every effort moves you",  # the book's example sentence, quoted
    r"\d+(\.\d+)?\s*(ms|s|MB|GB|KB|tok/s)\b|[GTM]?FLOP/s|\be\^|\bln\b|\blr\b|\bCPU\b|\bGPU\b|\bETA\b",  # units, math, machine
]), re.IGNORECASE)
ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")

# Every visible text node (its text, and the id of the nearest element with one, to find it).
VISIBLE_TEXT_JS = """() => {
  const SKIP = 'textarea, input, script, style, .token-view, .tok-tip, #generate-output .gen-text, #inspect-tokens,'
    + ' #replay-text, #language label:first-of-type,'  // the switch names English in English
    + ' #candidates-chart .ytick, #inspect-chart .ytick, #lab-chart .xtick, #lab-chart .x2tick, [id^=attention-] .xtick,'
    + ' [id^=attention-] .ytick';  // tokens on a chart's axis
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim(), el = n.parentElement;
    if (!text || !el || el.closest(SKIP)) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const r = range.getBoundingClientRect();
    if (r.width < 1 || r.height < 1 || getComputedStyle(el).visibility !== 'visible') continue;
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= parseFloat(getComputedStyle(e).opacity);
    if (opacity < 0.1) continue;
    out.push([text, (el.closest('[id]') || {}).id || el.tagName.toLowerCase()]);
  }
  return out;
}"""


def english_left(texts) -> list[str]:
    return sorted({f"{where}: {text!r}" for text, where in texts if ENGLISH_WORD.search(ALLOWED.sub("", text))})


def chinese_left(texts) -> list[str]:
    """The Chinese of the English page, but the switch's own name for Chinese (中文)."""
    return sorted({f"{where}: {text!r}" for text, where in texts
                   if re.search(r"[\u4e00-\u9fff]", text) and (where, text) != ("language", "中文")})


@pytest.fixture(scope="module")
def app(launch_app):
    return launch_app("zh-app", env=SMALL_SERVER)


@pytest.fixture(scope="module")
def found(app, browser):
    """Per viewport and tab, the visible texts of the Chinese page in use: the Train tab after a
    tiny run, Generate after a generation with the inspector open, Evaluate after scoring,
    Attention after Show. Then the page switched to English, tab by tab. One tiny run each."""
    texts: dict[str, list] = {}
    for name, (width, height) in VIEWPORTS.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(app.url + TINY + "&lang=zh-CN")
        page.get_by_text("当前文本").first.wait_for()  # the Data summary, drawn in Chinese on load

        def look(tab: str, lang: str = "zh") -> None:
            page.wait_for_timeout(500)  # what the tab's opening redraws
            texts[f"{lang}-{name}-{tab}"] = page.evaluate(VISIBLE_TEXT_JS)
            page.screenshot(path=str(SHOTS / f"{lang}-{tab}-{name}.png"), full_page=True)

        look("data")
        open_tab(page, "2 · 训练")
        for accordion in ("模型（书中 GPT_CONFIG 的字段）", "训练选项"):
            page.get_by_text(accordion, exact=True).first.click()
        page.locator("#train-numbers").get_by_text("这些数字是什么意思").click()
        train_until_done_zh(page)
        look("train")
        open_tab(page, "3 · 生成")
        page.wait_for_function("() => document.querySelector('#candidates-chart .js-plotly-plot') !== null")
        # Exact is checked, in Chinese, and its value stays the name the server takes: the tab's
        # label redrawn on load once translated a choice whose value was its English label.
        checked = page.evaluate("() => [...document.querySelectorAll('#generate-precision input:checked')]"
                                ".map(i => [i.value, i.checked, i.closest('label').innerText.trim()])")
        assert checked == [["float32", True, "精确（float32：与书中的词元一致）"]], checked
        page.locator("#generate-btn").click()
        spans = "#inspect-tokens .token-container"
        page.wait_for_function(f"() => document.querySelectorAll('{spans}').length >= 8", timeout=120_000)
        page.locator(spans).nth(3).click()
        page.wait_for_function("() => /\\d/.test(document.querySelector('#inspect-summary').innerText)")
        look("generate")
        open_tab(page, "4 · GPT-2")
        look("gpt2")
        open_tab(page, "5 · 评估")
        page.locator("#eval-btn").click()
        page.locator("#eval-a table").wait_for()
        page.locator("#evaluate-numbers").get_by_text("这些数字是什么意思").click()
        look("evaluate")
        open_tab(page, "6 · 注意力")
        page.locator("#attention-btn").click()
        try:
            page.wait_for_function("() => { const el = document.querySelector('#attention-trained .js-plotly-plot');"
                                   " return !!(el && el.data && el.data.length); }", timeout=120_000)
        finally:  # what the tab showed, to see why when it never draws
            page.screenshot(path=str(SHOTS / f"zh-attention-{name}.png"), full_page=True)
        look("attention")

        try:  # the Chinese page's findings stand even if the switch back breaks
            page.locator("#language").get_by_text("English").click()
            page.get_by_role("tab", name="1 · Data").wait_for()
            # The scores are among the switch's last redraws: once they read English, the rest does too.
            page.wait_for_function("() => document.querySelector('#eval-a').innerText.includes('Measure')")
            page.wait_for_timeout(1_000)  # and the upload boxes drawn again
            for tab, label in (("attention", "6 · Attention"), ("evaluate", "5 · Evaluate"), ("gpt2", "4 · GPT-2"),
                               ("generate", "3 · Generate"), ("train", "2 · Train"), ("data", "1 · Data")):
                settled_tab(page, label)
                look(tab, "en")
        except Exception as exc:  # noqa: BLE001 (reported by the English page's tests)
            page.screenshot(path=str(SHOTS / f"en-switch-failed-{name}.png"), full_page=True)
            texts[f"en-{name}-failed"] = f"{type(exc).__name__}: {exc}"[:2000]
        context.close()
    return texts


def settled_tab(page, label: str) -> None:
    """open_tab once the switch has redrawn the tab bar (a tab being redrawn reads as hidden,
    and open_tab would look for it in the "More tabs" menu)."""
    try:
        page.get_by_role("tab", name=label).wait_for(state="visible", timeout=5_000)
    except Exception:  # noqa: BLE001 (folded away on a phone: open_tab opens the menu)
        pass
    open_tab(page, label)


def train_until_done_zh(page) -> None:
    """page_actions.train_until_done, where the status says 完成 (done)."""
    page.evaluate("() => { window.sawRunning = false; new MutationObserver(() => {"
                  " if (document.querySelector('#train-btn').disabled) window.sawRunning = true; })"
                  ".observe(document.body, {subtree: true, attributes: true, attributeFilter: ['disabled']}); }")
    page.locator("#train-btn").click()
    page.wait_for_function("() => window.sawRunning && !document.querySelector('#train-btn').disabled"
                           " && document.querySelector('#train-status').innerText.includes('完成')", timeout=180_000)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("tab", ["data", "train", "generate", "gpt2", "evaluate", "attention"])
def test_the_chinese_page_shows_no_english_word(found, viewport, tab):
    texts = found[f"zh-{viewport}-{tab}"]
    assert len(texts) > 20, "the scan saw almost nothing: it is broken"
    left = english_left(texts)
    assert not left, f"{len(left)} visible strings of the zh-CN page are English:\n" + "\n".join(left)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("tab", ["data", "train", "generate", "gpt2", "evaluate", "attention"])
def test_switched_back_to_english_no_chinese_is_left(found, viewport, tab):
    assert f"en-{viewport}-failed" not in found, found.get(f"en-{viewport}-failed")
    left = chinese_left(found[f"en-{viewport}-{tab}"])
    assert not left, f"{len(left)} visible strings are still Chinese after the switch:\n" + "\n".join(left)


def test_the_scan_sees_english_where_there_is_some():
    """The checks themselves: an English label fails, the allowed terms and numbers pass."""
    assert english_left([("Drop File Here", "x")])
    assert not english_left([("GPT-2 124M：在 CPU 上 3.2 s", "x"), ("top-k（0 = 关闭）", "y")])
    assert chinese_left([("训练", "x")]) and not chinese_left([("Train", "x")])
