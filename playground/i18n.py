"""Two languages on the page: English as the code writes it, Chinese (zh-CN) from one table.

The table (`playground.zh.ZH`) is keyed by the English text itself, as gettext is, so the code reads in
English and a missing translation shows the English rather than a key. Three kinds of text:

- The layout's labels, info, placeholders, choices and static Markdown: `localize_layout`
  turns them into `gr.I18n` keys after the page is built, and the browser translates them
  (its language first; the page's switch changes it with Gradio's own `changeLocale`).
- What handlers write (status, estimates, errors): `tr(template, **values)` in the language
  of the session being served, which `bind` sets for the handler's duration.
- Figures and engine messages, which gpt_core writes in English: `localize_figure` and
  `translate_message` match them against the table's templates.
"""
from __future__ import annotations

import contextvars
import re
from contextlib import contextmanager
from functools import lru_cache

import gradio as gr
import plotly.graph_objects as go
from gradio.components.api_component import Api

from gpt_core.plots import wrapped

from .zh import GRADIO_ZH, TR_ONLY, ZH

LANGUAGES = {"en": "English", "zh-CN": "中文"}
DEFAULT_LANGUAGE = "en"
TABLES = {"en": {}, "zh-CN": ZH}

# Gradio's frontend picks the browser's language among the locales it was given: Chinese
# browsers report zh-CN, zh, zh-Hans or zh-SG, which all read the simplified table.
BROWSER_ZH = {**ZH, **GRADIO_ZH}
I18N = gr.I18n(en={}, **{lang: BROWSER_ZH for lang in ("zh-CN", "zh", "zh-Hans", "zh-SG")})

_current = contextvars.ContextVar("playground_language", default=DEFAULT_LANGUAGE)

# Gradio's `changeLocale` re-renders every `gr.I18n` label, Gradio's own words included. It
# lives in the frontend's core module, which a second import of the same URL returns as the
# same instance. Shared by the switch and the page's load.
_SET_LOCALE = """
  const setLocale = async (lang, why) => {
    try {
      const url = performance.getEntriesByType('resource').map(e => e.name)
        .find(n => /\\/assets\\/core-[\\w-]+\\.js$/.test(n));
      if (url) { (await import(url)).changeLocale(lang); }
    } catch (e) { console.warn(why, e); }
  };
"""
# Runs in the browser when the page's switch changes the language.
CHANGE_LOCALE_JS = "async (lang) => {" + _SET_LOCALE + """
  await setLocale(lang, 'language switch:');
  return lang;
}
"""
# On load: the language a `?lang=` link asks for, else the browser's.
BROWSER_LANGUAGE_JS = "async () => {" + _SET_LOCALE + """
  const asked = new URLSearchParams(window.location.search).get('lang');
  const lang = asked || navigator.language || 'en';
  // One of the switch's two values (a browser says en-US, zh-Hans...): the radio refuses others.
  const chosen = String(lang).toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
  if (asked) { await setLocale(chosen, 'language from link:'); }
  return chosen;
}
"""


def pick_language(requested: str | None) -> str:
    """One of `LANGUAGES` for a browser's or a link's language tag: any Chinese tag reads the
    zh-CN table, anything else (or nothing, or junk) English."""
    tag = str(requested or "").strip().lower()
    if tag in ("中文",) or tag.startswith("zh"):
        return "zh-CN"
    return DEFAULT_LANGUAGE


def set_language(ws, requested: str) -> str:
    """The session's language from the page's switch, a link or the browser."""
    ws.lang = pick_language(requested)
    return ws.lang


def current_language() -> str:
    return _current.get()


@contextmanager
def speaking(lang: str):
    """Handlers inside this block write in `lang`."""
    token = _current.set(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


def tr(template: str, /, **values) -> str:
    """`template` in the current language, with `values` filled in (str.format names)."""
    text = TABLES[current_language()].get(template, template)
    return text.format(**values) if values else text


@lru_cache(maxsize=1)
def _templates() -> list[tuple[re.Pattern, str]]:
    """The table's entries with {names} as regular expressions, longest first (the most
    specific template wins)."""
    out = []
    for en, zh in ZH.items():
        if "{" not in en or en in TR_ONLY:
            continue
        parts = re.split(r"\{(\w+)\}", en)
        pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
        try:
            out.append((re.compile(f"^{pattern}$", re.S), zh))
        except re.error:  # the same {name} twice: such a template is only used through tr()
            continue
    return sorted(out, key=lambda item: -len(item[0].pattern))


def translate_message(text: str) -> str:
    """An English sentence from the engine (an error, a figure's title) in the current
    language: exact entries first, then templates; what the table lacks stays English."""
    table = TABLES[current_language()]
    if not table or not text:
        return text
    if text in table:
        return table[text]
    for pattern, zh in _templates():
        match = pattern.match(text)
        if match:
            return zh.format(**{k: translate_message(v) for k, v in match.groupdict().items()})
    return text


# --- the layout ------------------------------------------------------------------------------

_TEXT_PROPS = ("label", "info", "placeholder")
_VALUE_TEXT = (gr.Markdown, gr.Button)  # components whose value is words, not data
_NOT_SHOWN = (Api,)  # gr.api() endpoints: named, never drawn


def layout_texts(block) -> list[tuple[str, str]]:
    """(property, English text) of what `block` shows as fixed words."""
    out = []
    if isinstance(block, _NOT_SHOWN):
        return out
    for prop in _TEXT_PROPS:
        text = getattr(block, prop, None)
        if isinstance(text, str) and text.strip():
            out.append((prop, text))
    if isinstance(block, _VALUE_TEXT) and isinstance(block.value, str) and block.value.strip():
        out.append(("value", block.value))
    for display, _ in getattr(block, "choices", None) or []:
        if isinstance(display, str) and display.strip():
            out.append(("choices", display))
    return out


def localize_layout(demo: gr.Blocks) -> None:
    """Every fixed word of the built page becomes a `gr.I18n` key (its English text), so the
    browser shows it in the page's language. Choice values stay English: handlers get them."""
    for block in demo.blocks.values():
        for prop, text in layout_texts(block):
            if prop == "choices":
                continue
            setattr(block, prop, I18N(text))
        choices = getattr(block, "choices", None)
        if choices and not isinstance(block, _NOT_SHOWN):
            block.choices = [(I18N(d) if isinstance(d, str) and d.strip() else d, v) for d, v in choices]


def relabel(english_labels: list[str]):
    """A handler `(ws) -> updates` that gives components these labels in the session's language."""
    def relabel_in_language(ws):
        return tuple(gr.update(label=tr(label)) for label in english_labels)
    return relabel_in_language


def choices(values) -> list[tuple[str, str]]:
    """(shown, sent) pairs for a dropdown filled by a handler: shown in the session's
    language, sent in English."""
    return [(tr(v), v) for v in values]


def _figure_text(text: str) -> str:
    """A figure's words in the current language: a sentence gpt_core wrapped into lines
    (plots.wrapped) is translated whole and wrapped again; a title over lines of its own
    (its settings in a <span>) line by line."""
    if "<br>" not in text:
        span = re.fullmatch(r"(<span[^>]*>)(.*)(</span>)", text, re.S)
        return f"{span[1]}{translate_message(span[2])}{span[3]}" if span else translate_message(text)
    joined = text.replace("<br>", " ")
    whole = translate_message(joined)
    if whole != joined:
        return wrapped(whole)
    return "<br>".join(_figure_text(part) for part in text.split("<br>"))


def _hover_text(template: str) -> str:
    """A hover template's words translated, its %{placeholders} and tags kept."""
    parts = re.split(r"(%\{[^}]*\}|</?extra>|<br>|: | → )", template)
    return "".join(p if i % 2 else translate_message(p) for i, p in enumerate(parts))


def localize_figure(fig):
    """A Plotly figure from gpt_core with its words in the current language: titles and
    subtitles, axis and colour-bar titles, trace names, hover labels, legend title, notes."""
    if fig is None or current_language() == DEFAULT_LANGUAGE:
        return fig
    fig = go.Figure(fig)  # a copy: a figure kept for later must stay English
    layout = fig.layout
    if layout.title and layout.title.text:
        layout.title.text = _figure_text(layout.title.text)
    if layout.title and layout.title.subtitle and layout.title.subtitle.text:
        layout.title.subtitle.text = _figure_text(layout.title.subtitle.text)
    if layout.legend and layout.legend.title and layout.legend.title.text:
        layout.legend.title.text = _figure_text(layout.legend.title.text)
    for name in layout.to_plotly_json():
        if name.startswith(("xaxis", "yaxis")):
            axis = getattr(layout, name, None)
            if axis is not None and getattr(axis, "title", None) is not None and axis.title.text:
                axis.title.text = _figure_text(axis.title.text)
    for note in layout.annotations or ():
        if note.text:
            note.text = _figure_text(note.text)
    for trace in fig.data:
        if getattr(trace, "name", None):
            trace.name = translate_message(trace.name)
        if getattr(trace, "hovertemplate", None):
            trace.hovertemplate = _hover_text(trace.hovertemplate)
        bar = getattr(trace, "colorbar", None)
        if bar is not None and bar.title and bar.title.text:
            bar.title.text = translate_message(bar.title.text)
    return fig
