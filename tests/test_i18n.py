"""Two languages: every word the page shows has its Chinese, and the machinery picks it.

The layout's words are read off the built page; the handlers' words off every literal
`tr("...")` in playground/. A new label or message without a Chinese entry fails here.
"""
import ast
import re
import string
from pathlib import Path

import plotly.graph_objects as go
import pytest

from playground.i18n import (I18N, LANGUAGES, current_language, layout_texts, localize_figure, pick_language,
                             speaking, tr, translate_message)
from playground.zh import ZH

ROOT = Path(__file__).resolve().parent.parent
# Words a Chinese page keeps in Latin letters, as the Chinese texts on the book do.
LATIN_TERMS = re.compile(r"GPT-2|GPT|BPE|OpenAI|AdamW|top-k|top-p|Top-k|Top-p|Plotly|CSV|PNG|JSON|"
                         r"safetensors|Hugging Face|BabyGPT|Bigram|CPU|GPU|MB|GB|KB|ms|tok/s|ETA|"
                         r"\b[0-9.]+[MBk]\b|\.txt|\.pt|\.pth|UTF-8|utf-8|GBK")


def needs_translation(text: str) -> bool:
    """Words remain once numbers, code spans, paths and the Latin terms are taken out."""
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"(/[\w.\-]+)+", "", text)
    text = LATIN_TERMS.sub("", text)
    return bool(re.search(r"[A-Za-z]{2,}", text))


@pytest.fixture(scope="module")
def page():
    import app
    return app.build_app()


def test_every_word_of_the_layout_has_its_chinese(page):
    missing = sorted({text for block in page.blocks.values() for _, text in _english_texts(block)
                      if text not in ZH and needs_translation(text)})
    assert not missing, f"{len(missing)} layout strings have no zh-CN entry in playground/zh/:\n" + \
        "\n".join(repr(m) for m in missing)


def _english_texts(block):
    """The layout's words as English again (localize_layout made them gr.I18n keys)."""
    for prop in ("label", "info", "placeholder", "value"):
        value = getattr(block, prop, None)
        key = getattr(value, "key", None)
        if isinstance(key, str):
            yield prop, key
    for display, _ in getattr(block, "choices", None) or []:
        key = getattr(display, "key", None)
        if isinstance(key, str):
            yield "choices", key


def test_the_built_page_leaves_no_fixed_word_untranslatable(page):
    """After localize_layout no label, info, placeholder or Markdown is a bare English string:
    a bare one would stay English in the Chinese page."""
    bare = [(type(b).__name__, prop, text) for b in page.blocks.values() for prop, text in layout_texts(b)
            if needs_translation(text)]
    assert not bare, bare


def _tr_literals() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted((ROOT / "playground").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "tr"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.append((path.name, node.lineno, node.args[0].value))
    return found


def test_every_message_the_handlers_write_has_its_chinese():
    literals = _tr_literals()
    assert literals, "no tr() call found: the scan is broken"
    missing = [f"{name}:{line}: {text!r}" for name, line, text in literals
               if text not in ZH and needs_translation(text)]
    assert not missing, "\n".join(missing)


def test_every_table_of_words_has_its_chinese():
    """Views that keep their words in one table (`TEXT`, and the inspector's stage and rank
    names) and pass them through tr(): every entry has its Chinese."""
    import importlib

    from playground import inspector
    words = [*inspector.STAGE_NAMES.values(), *inspector.RANKS]
    for path in sorted((ROOT / "playground").glob("*.py")):
        table = getattr(importlib.import_module(f"playground.{path.stem}"), "TEXT", None)
        if isinstance(table, dict):
            words += [w for w in table.values() if isinstance(w, str)]
    assert len(words) > 50, "no table found: the scan is broken"
    missing = [w for w in words if w not in ZH and needs_translation(w)]
    assert not missing, "\n".join(map(repr, missing))


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("english", sorted(ZH))
def test_each_translation_keeps_the_templates_names(english):
    assert _fields(ZH[english]) == _fields(english), (english, ZH[english])
    assert ZH[english].strip(), english


def test_the_translations_use_the_glossarys_terms():
    glossary = (ROOT.parent / "shared" / "zh-glossary.md")
    if not glossary.exists():
        pytest.skip("../shared/zh-glossary.md is not beside the checkout")
    chinese = " ".join(ZH.values())
    for english, term in (("token", "词元"), ("perplexity", "困惑度"), ("validation", "验证集"),
                          ("temperature", "温度"), ("epoch", "训练轮次"), ("checkpoint", "检查点")):
        if any(english in key.lower() for key in ZH):
            assert term in chinese, f"{english!r} should read {term!r} (../shared/zh-glossary.md)"
    assert "标记" not in chinese and "令牌" not in chinese, "a token is 词元 in the texts the students read"


@pytest.mark.parametrize("tag, lang", [("zh-CN", "zh-CN"), ("zh", "zh-CN"), ("zh-Hans-CN", "zh-CN"),
                                       ("ZH-tw", "zh-CN"), ("中文", "zh-CN"), ("en-US", "en"), ("fr", "en"),
                                       ("", "en"), (None, "en"), ("<script>", "en"), ("x" * 10_000, "en")])
def test_any_language_tag_reads_one_of_the_two(tag, lang):
    assert pick_language(tag) == lang
    assert pick_language(tag) in LANGUAGES


def test_tr_fills_the_template_in_the_current_language():
    template = next(k for k in ZH if "{" in k)
    names = {name: 7 for name in _fields(template)}
    assert tr(template, **names) == template.format(**names)
    with speaking("zh-CN"):
        assert current_language() == "zh-CN"
        assert tr(template, **names) == ZH[template].format(**names)
    assert current_language() == "en"
    with speaking("klingon"):  # never raises: an unknown language is English
        assert tr("Train") == "Train"


def test_engine_messages_are_matched_against_the_templates():
    template = next(k for k in ZH if re.fullmatch(r"[^{}]*\{\w+\}[^{}]*", k))
    name = _fields(template).pop()
    english = template.format(**{name: "42"})
    with speaking("zh-CN"):
        assert translate_message(english) == ZH[template].format(**{name: "42"})
        assert translate_message("A sentence nobody wrote down.") == "A sentence nobody wrote down."
    assert translate_message(english) == english


def test_figures_are_worded_in_the_language_and_the_original_kept():
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0], name="Loss"))
    fig.update_layout(xaxis_title="Loss")
    with speaking("zh-CN"):
        shown = localize_figure(fig)
    assert shown.data[0].name == ZH["Loss"] and shown.layout.xaxis.title.text == ZH["Loss"]
    assert fig.data[0].name == "Loss", "the engine's figure must stay English for the next reader"


def test_the_browser_gets_both_tables():
    tables = I18N.translations_dict
    assert tables["zh-CN"] is tables["zh"] and ZH.items() <= tables["zh-CN"].items()
    assert tables["zh-CN"]["common.runs"] == "运行记录"  # a word of Gradio's footer its own table lacks


def test_the_engines_words_on_the_page_have_their_chinese():
    """gpt_core's HTML views take their words from the caller: the tables the page passes them."""
    from gpt_core.render import GENERATION_KEY, MORE_NOTE, PROBABILITY_WORDS
    words = [*GENERATION_KEY.values(), *PROBABILITY_WORDS.values(), MORE_NOTE]
    assert [w for w in words if w not in ZH] == []
    assert [w for w in PROBABILITY_WORDS.values() if _fields(w) != _fields(ZH[w])] == []


def test_each_word_of_gradios_own_page_is_a_key_gradio_shows_with_the_same_fields():
    """GRADIO_ZH fills what Gradio's zh-CN table lacks (the queue's "In queue: 1 of 3" a
    student waits behind, the footer's "Runs", an event's "complete" that has no English and
    would show as its key): a key Gradio renamed would show English again."""
    import re
    from pathlib import Path

    import gradio

    from playground.zh import GRADIO_ZH

    assets = Path(gradio.__file__).parent / "templates" / "frontend" / "assets"
    scripts = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in assets.glob("*.js")}
    bundle = "\n".join(text for name, text in scripts.items() if name.startswith("core-"))  # the tables
    everything = "\n".join(scripts.values())
    for key, chinese in GRADIO_ZH.items():
        group, name = key.split(".")
        # The English table's group object, e.g. st={queue_position:`In queue: {position} of {size}`}.
        objects = re.findall(r"(\w+)=\{([^{}]*\b" + name + r":`[^`]*`[^{}]*)\}", bundle)
        english = [re.search(r"\b" + name + r":`([^`]*)`", body).group(1) for var, body in objects
                   if re.search(r"\b" + group + r":" + var + r"\b", bundle)]
        if not english:  # no English at all: Gradio asks for the key by name
            assert f"`{key}`" in everything or f'"{key}"' in everything, f"Gradio's page never shows {key}"
            continue
        assert set(re.findall(r"\{(\w+)\}", english[0])) == set(re.findall(r"\{(\w+)\}", chinese)), (key, english[0])
