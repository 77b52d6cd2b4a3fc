"""A link that opens the page with the same settings: the Train form, where the run starts from
and the sample text, as URL query parameters (`?preset=char&learning_rate=0.002&text=lunyu`),
written by "copy link" and read when the page loads; `present=1` turns presenter mode on.

A link is input like any other: its values are checked as the form's are
(`options.build_spec`), and a link with a bad value gets a sentence saying which, while the
form stays as it was. The settings here are also what a run keeps (`runs.Run.settings`), so
a run's JSON export carries the link that opens it again.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode

import gradio as gr

from gpt_core.corpus import DEFAULT_CORPUS, SAMPLE_CORPORA

from . import presenter
from .data_tab import TOKENIZER_LABELS, tokenizer_kind
from .i18n import tr, translate_message
from .options import (DEFAULT_PRESET_LABEL, MODEL_FIELDS, PRESET_LABELS, START_FROM, TRAIN_FIELDS, RunSpec,
                      build_spec, preset_fields, train_form_values)

START_IDS = ("scratch", "gpt2", "own")  # START_FROM's choices, in its order
SAMPLE_IDS = {Path(path).stem: name for name, path in SAMPLE_CORPORA.items()}  # "lunyu" -> its name
SAMPLE_ID_OF = {name: sample_id for sample_id, name in SAMPLE_IDS.items()}
# In the order run labels name what differs (runs.difference_labels): how it trains, then the model.
LINK_PARAMS = ("preset", "tokenizer", "start", "text", *TRAIN_FIELDS, *MODEL_FIELDS)
PRESENT = "present"
# Gradio's own (`__theme`, `view`) and the page language's: read elsewhere, passed over here.
OTHERS_PARAMS = ("__theme", "view", "lang")
BOOLEAN_FIELDS = ("qkv_bias", "cosine")
TRUE, FALSE = ("1", "true", "on", "yes"), ("0", "false", "off", "no")
MAX_QUERY_CHARS = 4_000  # the longest a link of ours gets is ~1,500 (a 500-character start context)

# Every sentence of the link and its controls, in one place (for translation).
TEXT = {
    "too_long": "The link is {length:,} characters long; a link of this page is at most {limit:,}.",
    "unknown": "{name} is not a setting of this page; it knows: {known}.",
    "twice": "{name} is given twice.",
    "bad_choice": "{name} must be one of {choices}, got {value}.",
    "bad_boolean": "{name} must be 1 or 0, got {value}.",
    "bad_start": "Unknown start {value}; choose one of: {choices}.",
    "refused": "⚠️ This link's settings were not used: {reason}",
    "applied": "The settings of the link you opened are filled in: press **Train** to run them.",
    "text_left_out": ("⚠️ The link leaves out the text: only a bundled sample text travels in a link, and "
                      "this session trains on {name}."),
    "copy": "Copy a link to these settings",
    "link": "Link to these settings",
}
CSS = "#share-row {align-items: end}" + presenter.CSS


def _preset_defaults(preset: str) -> dict[str, Any]:
    """What the page shows for `preset` (Custom keeps the fields: the page's first values)."""
    label = PRESET_LABELS[preset] if preset != "custom" else DEFAULT_PRESET_LABEL
    model, train, tokenizer = preset_fields(label)
    return {"preset": preset, "tokenizer": tokenizer, "start": START_IDS[0], "text": DEFAULT_CORPUS,
            **model, **train}


def _model_value(spec: RunSpec, form: Mapping[str, Any], name: str) -> Any:
    if hasattr(spec.model, name):
        return getattr(spec.model, name)
    value = form[name]  # a field the model does not use (the bigram's), already checked by build_spec
    if name == "qkv_bias":
        return bool(value)
    return float(value) if name == "drop_rate" else int(float(value))


def settings_of(spec: RunSpec, form: Mapping[str, Any], *, start: str, text: str) -> dict[str, Any]:
    """A run's settings by link parameter (`LINK_PARAMS`), each in one form: what `spec` (built
    from `form`) will train, where it starts from (`START_IDS`) and the text's name."""
    if start not in START_IDS:
        raise ValueError(tr(TEXT["bad_choice"], name="start", choices=", ".join(START_IDS), value=repr(start)))
    train = train_form_values(spec.train)
    return {"preset": spec.preset, "tokenizer": spec.tokenizer, "start": start, "text": text,
            **{k: train[k] for k in TRAIN_FIELDS}, **{k: _model_value(spec, form, k) for k in MODEL_FIELDS}}


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""  # an empty field (a random seed)
    return repr(value) if isinstance(value, float) else str(value)


def link_query(settings: Mapping[str, Any], *, present: bool = False) -> str:
    """`?preset=...&...`: the preset, and every setting that differs from what the preset
    fills in. A text other than a bundled sample cannot travel in a link and is left out."""
    base = _preset_defaults(settings["preset"])
    pairs = [("preset", settings["preset"])]
    for name in LINK_PARAMS[1:]:
        value = settings[name]
        if name == "text":
            value = SAMPLE_ID_OF.get(value)
            if value is None or value == SAMPLE_ID_OF[base["text"]]:
                continue
        elif value == base[name]:
            continue
        pairs.append((name, _param(value)))
    if present:
        pairs.append((PRESENT, "1"))
    return "?" + urlencode(pairs)


def _boolean(name: str, value: str) -> bool:
    if value.strip().lower() in TRUE:
        return True
    if value.strip().lower() in FALSE:
        return False
    raise ValueError(tr(TEXT["bad_boolean"], name=name, value=repr(value)[:40]))


def parse_link(query: str) -> tuple[dict[str, str], bool | None]:
    """A page URL's query (`location.search`) -> (the settings it gives, by name; presenter
    mode on/off, or None when it does not say). Raises ValueError with a sentence."""
    query = (query or "").lstrip("?")
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(tr(TEXT["too_long"], length=len(query), limit=MAX_QUERY_CHARS))
    given: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in OTHERS_PARAMS:
            continue
        if name not in (*LINK_PARAMS, PRESENT):
            raise ValueError(tr(TEXT["unknown"], name=repr(name)[:40], known=", ".join((*LINK_PARAMS, PRESENT))))
        if name in given:
            raise ValueError(tr(TEXT["twice"], name=name))
        given[name] = value
    present = given.pop(PRESENT, None)
    return given, None if present is None else _boolean(PRESENT, present)


def _choice(given: Mapping[str, str], name: str, choices, default: str) -> str:
    value = given.get(name, default)
    if value not in choices:
        raise ValueError(tr(TEXT["bad_choice"], name=name, choices=", ".join(choices), value=repr(value)[:40]))
    return value


def link_settings(given: Mapping[str, str], *, vocab_size: Callable[[str], int]) -> dict[str, Any]:
    """The settings a link gives (`parse_link`), completed from its preset and checked as the
    Train form is; `vocab_size(tokenizer kind)` sizes the model being checked. Raises ValueError
    with a sentence naming the bad value."""
    preset = _choice(given, "preset", list(PRESET_LABELS), "demo")
    base = _preset_defaults(preset)
    tokenizer = _choice(given, "tokenizer", ("gpt2", "char"), base["tokenizer"])
    start = _choice(given, "start", START_IDS, START_IDS[0])
    text = SAMPLE_IDS[_choice(given, "text", list(SAMPLE_IDS), SAMPLE_ID_OF[DEFAULT_CORPUS])]
    form = {k: base[k] for k in (*MODEL_FIELDS, *TRAIN_FIELDS)}
    for name in (*MODEL_FIELDS, *TRAIN_FIELDS):
        if name in given:
            form[name] = _boolean(name, given[name]) if name in BOOLEAN_FIELDS else given[name]
    spec = build_spec(tokenizer=tokenizer, vocab_size=vocab_size(tokenizer), preset_label=PRESET_LABELS[preset],
                      **form)
    return settings_of(spec, form, start=start, text=text)


def start_label(start: str) -> str:
    return START_FROM[START_IDS.index(start)]


def start_id(label: str) -> str:
    if label not in START_FROM:
        raise ValueError(tr(TEXT["bad_start"], value=repr(label)[:40], choices=", ".join(START_FROM)))
    return START_IDS[START_FROM.index(label)]


# --- the page: read a link on load, make one on "copy link" ------------------------------------
# What `restore` fills, in its outputs' order (app.py maps the names to components).
RESTORED = ("link_note", "preset", "tokenizer", "data_tokenizer", *MODEL_FIELDS, *TRAIN_FIELDS, "start_from",
            "sample", "presenter")

# The query the server wrote, as a whole link of this page (the browser knows its address; a
# server behind a proxy does not), copied where the browser allows it (https or localhost).
COMPOSE_JS = """(query) => {
  const url = location.origin + location.pathname + query;
  if (navigator.clipboard) navigator.clipboard.writeText(url).catch(() => {});
  return url;
}"""


def _vocab_size(ws) -> Callable[[str], int]:
    return lambda kind: ws.tokenizer(kind).n_vocab


NOTE_KEY = "link_note"  # in ws.ui: what the link's note said, to say it again in another language


def link_note(ws):
    """The note a link's settings left (applied, or refused and why) in the session's language;
    gr.update() when the page came without a link."""
    said = ws.ui.get(NOTE_KEY)
    if said is None:
        return gr.update()
    kind, reason = said
    # The form's rules speak English; the table has them.
    return tr(TEXT["refused"], reason=translate_message(reason)) if kind == "refused" else tr(TEXT["applied"])


def restore(ws, search: str):
    """On page load: the form from the URL's query (`location.search`), checked first; a bad
    link changes nothing and says why. Outputs: `RESTORED`."""
    keep = [gr.update() for _ in RESTORED[1:]]
    try:
        given, present = parse_link(search)
        settings = link_settings(given, vocab_size=_vocab_size(ws)) if given else None
        if settings is not None and settings["text"] != ws.corpus_name:
            ws.require_idle("change the text")
            ws.load_sample(settings["text"])
    except ValueError as e:
        ws.ui[NOTE_KEY] = ("refused", str(e))
        return (gr.update(value=link_note(ws), visible=True), *keep)
    presenter = gr.update() if present is None else present
    if settings is None:
        return (gr.update(), *keep[:-1], presenter)
    tokenizer = TOKENIZER_LABELS[settings["tokenizer"]]
    ws.ui[NOTE_KEY] = ("applied", "")
    return (gr.update(value=link_note(ws), visible=True), PRESET_LABELS[settings["preset"]], tokenizer, tokenizer,
            *(settings[k] for k in (*MODEL_FIELDS, *TRAIN_FIELDS)), start_label(settings["start"]),
            settings["text"], presenter)


def copy_link(ws, form: dict, start: str, present: bool):
    """The query of a link to the Train form as it stands (checked as Train checks it), and a
    note when the session's text cannot travel in it. Outputs: (query, link note)."""
    kind = tokenizer_kind(form["tokenizer"])
    spec = build_spec(tokenizer=kind, vocab_size=ws.tokenizer(kind).n_vocab, preset_label=form["preset"],
                      **{k: form[k] for k in (*MODEL_FIELDS, *TRAIN_FIELDS)})
    settings = settings_of(spec, form, start=start_id(start), text=ws.corpus_name)
    note = "" if ws.corpus_name in SAMPLE_CORPORA else tr(TEXT["text_left_out"], name=ws.corpus_name)
    query = link_query(settings, present=bool(present))
    return gr.update(value=query, visible=True), gr.update(value=note, visible=bool(note))


def layout() -> SimpleNamespace:
    """The presenter toggle and the link's controls, made where they are called (the top of
    the page), with the note a link's settings leave and the URL's query read on load."""
    with gr.Row(elem_id="share-row"):
        present = gr.Checkbox(False, label=presenter.LABEL, elem_id="presenter", scale=1, min_width=200)
        copy = gr.Button(TEXT["copy"], size="sm", elem_id="copy-link", scale=1, min_width=200)
        link = gr.Textbox(label=TEXT["link"], elem_id="share-link", visible=False, scale=3, buttons=["copy"])
    note = gr.Markdown(visible=False, elem_id="link-note")
    query = gr.Textbox(visible=False)
    return SimpleNamespace(presenter=present, copy=copy, link=link, note=note, query=query)


def wire(ui: SimpleNamespace, form_inputs: list, copy_handler) -> None:
    """Presenter mode follows its toggle in the browser; Copy link sends `form_inputs` (the
    Train form and its start) with the toggle to `copy_handler` (copy_link, bound), then the
    browser makes the whole link of it."""
    ui.presenter.change(None, ui.presenter, None, js=presenter.TOGGLE_JS)
    ui.copy.click(copy_handler, [*form_inputs, ui.presenter], [ui.link, ui.note], api_name="share_link").success(
        None, ui.link, ui.link, js=COMPOSE_JS)


def restoring(event, ui: SimpleNamespace, outputs: list, bind):
    """After `event` (the page's load), the settings of the link it was opened with into
    `outputs` (the components named by `RESTORED`); the event that follows on."""
    return event.then(bind(restore), ui.query, outputs, js="() => location.search", api_name=False,
                      show_progress="hidden")
