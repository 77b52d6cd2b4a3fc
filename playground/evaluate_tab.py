"""Evaluate tab: loss, perplexity and per-token probabilities of a text under one or two models."""
from __future__ import annotations

import math
from types import SimpleNamespace

import gradio as gr

from gpt_core.corpus import split_text
from gpt_core.generate import score_text
from gpt_core.render import MORE_NOTE, PROBABILITY_WORDS, message_html, probability_html

from . import models
from .common import clear_on, explain_failures
from .explain import EVALUATE_NUMBERS, numbers_note
from .i18n import tr, translate_message
from .models import resolve
from .notices import message_area
from .session import Workspace

MAX_SCORE_TOKENS = 4_000  # keeps one evaluation under a few seconds with GPT-2 124M on 2 cores
SHOW_TOKENS = 1_500
SCORES_KEY = "evaluated"  # in ws.ui: the last scores, redrawn in the language of a switch


def validation_text(ws: Workspace) -> str:
    """The corpus's validation part (its last 10%), as the Train tab measures val loss on."""
    _, val = split_text(ws.text, 0.9)
    return val[: ws.limits.max_score_chars]


def score_one(ws: Workspace, model_choice: str, text: str) -> dict:
    """One model's score of `text`, as plain numbers and tokens (`scores_view` draws them)."""
    model, tok, cfg = resolve(ws, model_choice)
    ids = tok.encode(text)
    truncated = len(ids) > MAX_SCORE_TOKENS
    ids = ids[:MAX_SCORE_TOKENS]
    if len(ids) < 2:
        raise ValueError(tr("The text has {n} token for {model}; scoring needs at least two.", n=len(ids),
                            model=translate_message(model_choice)))
    score = score_text(model, ids)
    probs = score.target_probs[0].tolist()
    nll_total = -float(score.log_probs.sum())
    shown = min(len(ids), SHOW_TOKENS)
    return dict(model=model_choice, loss=score.cross_entropy, perplexity=score.perplexity, truncated=truncated,
                bits_per_char=nll_total / max(1, len(tok.decode(ids))) / math.log(2), scored=len(probs),
                accuracy_hint=sum(p > 0.5 for p in probs) / len(probs), pieces=tok.token_strings(ids[:shown]),
                probs=probs[: shown - 1], ranks=score.ranks[0, : shown - 1].tolist(), more=len(ids) - shown,
                guesses=tok.token_strings(score.top_ids[0, : shown - 1].tolist()), vocab=tok.n_vocab)


def score_view(s: dict) -> tuple[str, str]:
    """(metrics markdown, coloured tokens html) of one model's score, in the current language."""
    scored = f"{s['scored']:,}" + (" " + tr("(first part of the text)") if s["truncated"] else "")
    metrics = "\n".join([
        f"### {translate_message(s['model'])}",
        f"| {tr('Measure')} | {tr('Value')} |", "|---|---|",
        f"| {tr('Loss (cross-entropy)')} | **{s['loss']:.3f}** |",
        f"| {tr('Perplexity')} | **{s['perplexity']:,.1f}** |",
        f"| {tr('Bits per character')} | {s['bits_per_char']:.3f} |",
        f"| {tr('Tokens scored')} | {scored} |",
        f"| {tr('Tokens given p > 0.5')} | {s['accuracy_hint']:.0%} |",
    ])
    body = probability_html(s["pieces"], s["probs"], first_unscored=1, more=s["more"], ranks=s["ranks"],
                            guesses=s["guesses"], vocab_size=s["vocab"], more_note=tr(MORE_NOTE),
                            words={k: tr(w) for k, w in PROBABILITY_WORDS.items()})
    return metrics, body


def evaluate(ws: Workspace, text: str, model_a: str | None, model_b: str | None):
    """Score `text` (empty: the validation part) with model A and, if chosen, model B."""
    text = text if isinstance(text, str) and text.strip() else validation_text(ws)
    if len(text) > ws.limits.max_score_chars:
        raise ValueError(tr("The text has {count} characters; evaluation takes up to {limit}. Shorten it.",
                            count=f"{len(text):,}", limit=f"{ws.limits.max_score_chars:,}"))
    model_b = None if model_b == models.NO_MODEL else model_b
    if not model_a and not model_b:
        raise ValueError(tr("Choose at least one model to evaluate."))
    ws.ui[SCORES_KEY] = [score_one(ws, choice, text) if choice else None for choice in (model_a, model_b)]
    return scores_view(ws)


def scores_view(ws: Workspace):
    """The last scores (A, B) and the note in the current language: after scoring, on a language switch."""
    scores = ws.ui.get(SCORES_KEY)
    if scores is None:
        return tuple(gr.update() for _ in range(5))
    outputs = []
    for s in scores:
        outputs += list(score_view(s)) if s else ["", message_html(tr("Choose a model to compare."), kind="info")]
    note = tr("Loss and perplexity compare only between models with the same tokenizer; "
              "bits per character compare any two.")
    return (*outputs, note)


def layout() -> SimpleNamespace:
    """The tab, made where it is called (inside the page's gr.Tabs)."""
    with gr.Tab("5 · Evaluate", id="evaluate") as tab:
        with gr.Row():
            text = gr.Textbox(label="Text to score (empty = the validation part of the corpus)",
                              lines=4, max_lines=8, scale=3)
            with gr.Column(scale=1, min_width=240):
                # Filled per session when the tab opens; models.resolve() checks any value.
                model_a = gr.Dropdown([], label="Model A", allow_custom_value=True)
                model_b = gr.Dropdown([], label="Model B (optional)", allow_custom_value=True)
                button = gr.Button("Score", variant="primary", elem_id="eval-btn")
                message = message_area("evaluate-message")
        note = gr.Markdown()
        numbers_note(EVALUATE_NUMBERS, "evaluate-numbers")
        with gr.Row():
            with gr.Column(elem_id="eval-a"):
                a_md = gr.Markdown()
                a_html = gr.HTML()
            with gr.Column(elem_id="eval-b"):
                b_md = gr.Markdown()
                b_html = gr.HTML()
    return SimpleNamespace(tab=tab, text=text, model_a=model_a, model_b=model_b, button=button,
                           message=message, note=note, a_md=a_md, a_html=a_html, b_md=b_md, b_html=b_html)


def score_outputs(ui: SimpleNamespace) -> list:
    """What `evaluate` and `scores_view` draw into."""
    return [ui.a_md, ui.a_html, ui.b_md, ui.b_html, ui.note]


def wire(ui: SimpleNamespace, bind, *, new_text, concurrency_id: str, concurrency_limit: int) -> None:
    """Score, in the generation group; its message stays until an input changes or a new text
    (`new_text`: the Data tab's triggers) replaces the validation part."""
    explain_failures(ui.message, (ui.button.click(
        bind(evaluate), [ui.text, ui.model_a, ui.model_b], score_outputs(ui),
        api_name="evaluate", concurrency_id=concurrency_id, concurrency_limit=concurrency_limit), evaluate))
    clear_on(ui.message, *new_text, ui.text.input, ui.model_a.input, ui.model_b.input, ui.button.click)
