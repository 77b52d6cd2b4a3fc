"""Attention tab: which earlier tokens each token looks at, layer by layer and head by head.

For a text, the weights of every layer and head of the chosen model (yours, or a loaded GPT-2)
are computed once (gpt_core/attention_maps.py) and kept in the session, so moving the layer
or the head only redraws. Beside them, the same for a fresh model -- the same config and
seed, untrained: what the run started from -- so a class sees what training changed. The
masked upper triangle (the future a token may not see) is drawn in grey.
"""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import torch

from gpt_core.attention_maps import attention_weights, fresh_model, head_average
from gpt_core.config import GPTConfig
from gpt_core.plots import attention_figure, message_figure

from . import models
from .fields import form_number
from .i18n import choices as shown_as, tr
from .session import Workspace, WorkspaceError

MAX_TOKENS = 64  # a map wider than this cannot show its tokens' names
DEFAULT_SEED = 123  # TrainConfig's, the book's: a run without a seed of its own started here
CACHE_KEY = "attention"  # in ws.ui

# Every sentence this tab shows, in one place (for translation).
TEXT = {
    "tab": "6 · Attention",
    "intro": ("Each row is a token of your text; its cells show how much that token attends to each "
              "token before it (the weights sum to 1 along a row). The grey triangle is the causal "
              "mask: a token never sees the tokens after it."),
    "model": "Model",
    "text": "Text",
    "layer": "Layer",
    "head": "Head",
    "average": "Average over heads",
    "head_n": "Head {n}",
    "compare": "Compare with a fresh (untrained) model: same config and seed",
    "show": "Show attention",
    "fresh": "Fresh (untrained)",
    "trained": "Trained",
    "title": "{which}<br>layer {layer} of {layers} · {head}",
    "masked": "masked: a token never sees the tokens after it",
    "x_title": "attends to (key)",
    "y_title": "token (query)",
    "press": "Press “Show attention” to draw the weights.",
    "no_compare": "Tick “Compare with a fresh (untrained) model” to see the untrained weights beside these.",
    "note": "{n} tokens · {layers} layers × {heads} heads. The fresh model: {config}, seed {seed}.",
    "note_alone": "{n} tokens · {layers} layers × {heads} heads.",
    "empty": "The text is empty: type a few words to see how the model reads them.",
    "too_long": ("The text has {n} tokens; an attention map shows at most {limit} tokens readably. "
                 "Shorten it."),
    "unknown": "This model never saw {chars} in its text; they are read as {fallback}.",
    "bigram": ("The bigram baseline is a lookup table: it has no attention to show. Train a GPT preset, "
               "or choose GPT-2."),
    "fresh_too_big": ("A fresh copy of this model would have {params:,} parameters; this server builds up to "
                      "{limit:,} for the comparison. Untick the comparison to see the trained model alone."),
    "fresh_memory": "a fresh model to compare attention with",
    "shape": "{layers} layers × {width}",
    "bad_head": "Unknown head {head}; choose one of the list.",
}


def _head_label(head: int | None) -> str:
    return TEXT["average"] if head is None else TEXT["head_n"].format(n=head + 1)


def head_choices(n_heads: int) -> list[str]:
    return [_head_label(None)] + [_head_label(h) for h in range(n_heads)]


def _head_shown(head: int | None) -> str:
    """A head's label in the session's language (`_head_label` is the English one sent back)."""
    return tr(TEXT["average"]) if head is None else tr(TEXT["head_n"], n=head + 1)


def _shown_heads(n_heads: int) -> list[tuple[str, str]]:
    """(shown in the session's language, sent in English) for the head dropdown."""
    return [(_head_shown(h), _head_label(h)) for h in [None, *range(n_heads)]]


def _parse_head(choice, n_heads: int) -> int | None:
    """The head dropdown's label -> a 0-based head, or None for the average."""
    labels = head_choices(n_heads)
    if choice in (None, "", labels[0]):
        return None
    if choice not in labels:
        raise ValueError(tr(TEXT["bad_head"], head=repr(choice)[:40]))
    return labels.index(choice) - 1


def _prompt_ids(tok, text) -> tuple[list[int], str | None]:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(tr(TEXT["empty"]))
    ids = tok.encode(text)
    if not ids:
        raise ValueError(tr(TEXT["empty"]))
    if len(ids) > MAX_TOKENS:
        raise ValueError(tr(TEXT["too_long"], n=len(ids), limit=MAX_TOKENS))
    unknown = tok.unknown_chars(text) if hasattr(tok, "unknown_chars") else []
    note = tr(TEXT["unknown"], chars=repr("".join(unknown[:20])), fallback=repr(tok.fallback)) if unknown else None
    return ids, note


def _seed(ws: Workspace, choice: str) -> int:
    own = ws.own
    if choice == models.OWN and own is not None and own.trainer is not None and own.trainer.config.seed is not None:
        return int(own.trainer.config.seed)
    return DEFAULT_SEED


def _fresh_maps(ws: Workspace, config: GPTConfig, seed: int, idx: torch.Tensor, device) -> torch.Tensor:
    params = config.num_parameters()
    if params > ws.limits.max_train_parameters:
        raise WorkspaceError(tr(TEXT["fresh_too_big"], params=params, limit=ws.limits.max_train_parameters))
    ws.reserve("attention", config.memory_bytes(), tr(TEXT["fresh_memory"]))
    try:
        model = fresh_model(config, seed, device=device)
        maps = attention_weights(model, idx)
        del model
        return maps
    finally:
        ws.release("attention")


def show(ws: Workspace, model_choice, text, layer, head, compare):
    """Compute the maps of every layer for `text` (and a fresh model's), then draw the chosen
    layer and head. Returns (fresh chart, trained chart, note, layer slider, head dropdown)."""
    model, tok, cfg = models.resolve(ws, model_choice)
    if not isinstance(cfg, GPTConfig):
        raise WorkspaceError(tr(TEXT["bigram"]))
    ids, unknown = _prompt_ids(tok, text)
    idx = torch.tensor([ids], dtype=torch.long)
    trained = attention_weights(model, idx)
    seed = _seed(ws, model_choice or models.OWN)
    fresh = _fresh_maps(ws, cfg, seed, idx, model.tok_emb.weight.device) if compare else None
    # Half precision is plenty for a colour and halves what a session keeps (GPT-2 XL: 48 x 25 maps).
    ws.ui[CACHE_KEY] = dict(tokens=tok.token_strings(ids), trained=trained.half(), fresh=None if fresh is None
                            else fresh.half(), which=model_choice or models.OWN, layers=cfg.n_layers,
                            heads=cfg.n_heads)
    layer_n = form_number(layer, tr(TEXT["layer"]), 1, None, whole=True, empty=cfg.n_layers)
    layer_n = min(layer_n, cfg.n_layers)
    head_i = _parse_head(head, cfg.n_heads) if head in head_choices(cfg.n_heads) else None
    fresh_fig, trained_fig = _figures(ws, layer_n, head_i)
    ws.ui[CACHE_KEY].update(note=(compare, dict(n=len(ids), layers=cfg.n_layers, heads=cfg.n_heads,
                                               width=cfg.emb_dim, seed=seed), unknown), layer_n=layer_n, head_i=head_i)
    note = _note(ws.ui[CACHE_KEY]["note"])
    return (fresh_fig, trained_fig, note,
            # A slider needs two ends: a one-layer model's stands still at 1 of 2.
            gr.update(minimum=1, maximum=max(2, cfg.n_layers), value=layer_n, interactive=cfg.n_layers > 1),
            gr.update(choices=_shown_heads(cfg.n_heads), value=_head_label(head_i)))


def _note(parts) -> str:
    compare, v, unknown = parts
    shape = tr(TEXT["shape"], layers=v["layers"], width=v["width"])
    note = (tr(TEXT["note"], n=v["n"], layers=v["layers"], heads=v["heads"], config=shape, seed=v["seed"])
            if compare else tr(TEXT["note_alone"], n=v["n"], layers=v["layers"], heads=v["heads"]))
    return note + (" " + unknown if unknown else "")


def in_language(ws: Workspace):
    """(fresh chart, trained chart, note) of the maps shown last, in the session's language
    (after a language switch); unchanged before any."""
    cached = ws.ui.get(CACHE_KEY)
    if cached is None or "note" not in cached:
        return gr.update(), gr.update(), gr.update()
    return (*_figures(ws, cached["layer_n"], cached["head_i"]), _note(cached["note"]))


def _figures(ws: Workspace, layer: int, head: int | None):
    cached = ws.ui[CACHE_KEY]
    figures = []
    trained = f"{tr(cached['which'])} · {tr(TEXT['trained'])}"
    for which, maps in ((tr(TEXT["fresh"]), cached["fresh"]), (trained, cached["trained"])):
        if maps is None:
            figures.append(message_figure(tr(TEXT["no_compare"]), title=tr(TEXT["fresh"])))
            continue
        chosen = maps[layer - 1].float()  # (H, T, T)
        weights = head_average(chosen) if head is None else chosen[head]
        figures.append(attention_figure(
            cached["tokens"], weights.tolist(), masked_text=tr(TEXT["masked"]), x_title=tr(TEXT["x_title"]),
            y_title=tr(TEXT["y_title"]), title=tr(TEXT["title"], which=which, layer=layer, layers=cached["layers"],
                                                  head=_head_shown(head))))
    return tuple(figures)


def redraw(ws: Workspace, layer, head):
    """Another layer or head of the maps computed last: (fresh chart, trained chart)."""
    cached = ws.ui.get(CACHE_KEY)
    if cached is None:
        return (message_figure(tr(TEXT["press"]), title=tr(TEXT["fresh"])),
                message_figure(tr(TEXT["press"]), title=tr(TEXT["trained"])))
    layer_n = form_number(layer, tr(TEXT["layer"]), 1, cached["layers"], whole=True)
    cached.update(layer_n=layer_n, head_i=_parse_head(head, cached["heads"]))
    return _figures(ws, layer_n, cached["head_i"])


def model_choice(ws: Workspace, current, head):
    """The model list when the tab opens, keeping a choice that still exists, and the head list
    in the session's language (shown translated, sent in English)."""
    choices = models.model_choices(ws)
    value = current if current in choices else (choices[0] if choices else None)
    cached = ws.ui.get(CACHE_KEY)
    heads = cached["heads"] if cached is not None else 0
    return (gr.update(choices=shown_as(choices), value=value),
            gr.update(choices=_shown_heads(heads), value=head if head in head_choices(heads) else _head_label(None)))


def layout() -> SimpleNamespace:
    """The tab, made where it is called (inside the page's gr.Tabs)."""
    with gr.Tab(TEXT["tab"], id="attention") as tab:
        gr.Markdown(TEXT["intro"])
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                # Filled per session when the tab opens; models.resolve() checks any value.
                model = gr.Dropdown([], label=TEXT["model"], allow_custom_value=True, elem_id="attention-model")
                text = gr.Textbox("Every effort moves you", label=TEXT["text"], lines=2, elem_id="attention-text")
                layer = gr.Slider(1, 2, value=1, step=1, interactive=False, label=TEXT["layer"], elem_id="attention-layer")
                # Filled when the tab opens, in the session's language: choices of the layout are
                # translated by the browser, which then sends the translation back as the value.
                head = gr.Dropdown([], value=None, label=TEXT["head"], elem_id="attention-head")
                compare = gr.Checkbox(True, label=TEXT["compare"], elem_id="attention-compare")
                button = gr.Button(TEXT["show"], variant="primary", elem_id="attention-btn")
                note = gr.Markdown(elem_id="attention-note")
            with gr.Column(scale=3):
                with gr.Row():
                    fresh = gr.Plot(label=TEXT["fresh"], elem_id="attention-fresh", min_width=320)
                    trained = gr.Plot(label=TEXT["trained"], elem_id="attention-trained", min_width=320)
    return SimpleNamespace(tab=tab, model=model, text=text, layer=layer, head=head, compare=compare,
                           button=button, note=note, fresh=fresh, trained=trained)


def wire(ui: SimpleNamespace, bind, *, concurrency_id: str, concurrency_limit: int) -> None:
    """The tab's events: the model list on opening, Show, and redraws when layer or head move."""
    ui.tab.select(bind(model_choice), [ui.model, ui.head], [ui.model, ui.head], api_name=False)
    ui.button.click(bind(show), [ui.model, ui.text, ui.layer, ui.head, ui.compare],
                    [ui.fresh, ui.trained, ui.note, ui.layer, ui.head], api_name="attention",
                    concurrency_id=concurrency_id, concurrency_limit=concurrency_limit)
    for control in (ui.layer, ui.head):
        control.input(bind(redraw), [ui.layer, ui.head], [ui.fresh, ui.trained], api_name=False,
                      trigger_mode="always_last", show_progress="hidden")
