"""Generation inspected token by token: click a generated token to see what it was drawn from.

`generate_tab.generate_text` records every step of its generation in a
`gpt_core.generation_trace.GenerationTrace` (made by `new_trace`, kept in the session). After
the run the tokens are shown coloured by their rank; clicking one draws its candidates at each
stage (softmax, top-k, temperature, top-p) with the drawn token marked, and says its rank and
its probability at each stage.
"""
from __future__ import annotations

import html
from types import SimpleNamespace
from typing import Any

import gradio as gr

from gpt_core.generation_trace import GenerationTrace
from gpt_core.plots import candidates_figure, message_figure, visible_token
from gpt_core.sampling import STAGES

from . import common
from .i18n import speaking, tr
from .session import Workspace

TRACE_KEY = "generation_trace"  # in ws.ui
PROMPT_SHOWN_CHARS = 300  # the prompt before the tokens, its end only

# Every sentence this view shows, in one place (for translation).
TEXT = {
    "title": "Inspect the generation token by token",
    "chart_label": "What the clicked token was drawn from",
    "tokens": "Click a generated token",
    "hint": "Generate some text, then click any of its tokens to see the candidates it was drawn from.",
    "click": "Click any generated token above: green ones were the model's first choice, red ones a surprise.",
    "prompt": "That is the prompt (given, not drawn): click a generated token after it.",
    "bad_index": "Click one of the {total} generated tokens (got item {index}).",
    "chart": "Token {n} of {total}: “{token}”",
    "summary": ("**Token {n} of {total}: “{token}”** was the model's **#{rank:,}** choice of {vocab:,} tokens. "
                "Its probability at each stage: {stages}. It was drawn from the {kept:,} tokens the filters left."),
    "greedy": ("**Token {n} of {total}: “{token}”** was the model's **#{rank:,}** choice of {vocab:,} tokens "
               "(temperature 0: greedy decoding takes the most likely token). Its probability at each stage: {stages}."),
    "settings": "temperature {temperature:g}, top-k {top_k}, top-p {top_p}",
    "off": "off",
}
STAGE_NAMES = {"softmax": "softmax", "top_k": "after top-k", "temperature": "after temperature",
               "top_p": "after top-p"}
# Token colours by rank: what the model expected most, what it found likely, a surprise.
RANKS = {"rank 1": "#bbf7d0", "rank 2–5": "#fde68a", "rank 6 or lower": "#fecaca"}


def new_trace(ws: Workspace, tokenizer: Any, prompt: str, options: dict) -> GenerationTrace:
    """A trace for the generation about to run, kept as the session's latest."""
    trace = GenerationTrace(tokenizer, temperature=options["temperature"], top_k=options["top_k"],
                            top_p=options["top_p"], prompt=prompt)
    ws.ui[TRACE_KEY] = trace
    return trace


def _bucket(rank: int) -> str:
    names = list(RANKS)
    return names[0] if rank == 1 else names[1] if rank <= 5 else names[2]


def tokens(ws: Workspace) -> list[tuple[str, str | None]]:
    """The prompt, then each generated token with its rank's colour (HighlightedText's value;
    the categories in the session's language, as the legend shows them)."""
    trace = ws.ui.get(TRACE_KEY)
    if trace is None or not trace.tokens:
        return []
    prompt = trace.prompt if len(trace.prompt) <= PROMPT_SHOWN_CHARS else "…" + trace.prompt[-PROMPT_SHOWN_CHARS:]
    return [(prompt, None)] + [(t.label, tr(_bucket(t.rank))) for t in trace.tokens]


def after_generation(ws: Workspace):
    """(tokens, summary, chart) once a generation ends: its tokens to click, nothing chosen yet."""
    shown = tokens(ws)
    note = tr(TEXT["click"] if shown else TEXT["hint"])
    colours = {tr(rank): colour for rank, colour in RANKS.items()}
    return gr.update(value=shown, color_map=colours), note, message_figure(note, title=tr(TEXT["title"]))


def inspect(ws: Workspace, index) -> tuple[str, Any]:
    """(summary, chart) for the clicked item of `tokens` (0 is the prompt)."""
    trace = ws.ui.get(TRACE_KEY)
    if trace is None or not trace.tokens:
        return tr(TEXT["hint"]), message_figure(tr(TEXT["hint"]), title=tr(TEXT["title"]))
    if isinstance(index, (list, tuple)):  # a selection's [start, end]: its first token
        index = index[0]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= len(trace.tokens):
        raise ValueError(tr(TEXT["bad_index"], total=len(trace.tokens), index=repr(index)[:40]))
    if index == 0:
        return tr(TEXT["prompt"]), message_figure(tr(TEXT["prompt"]), title=tr(TEXT["title"]))
    n, total = index, len(trace.tokens)
    t = trace.tokens[index - 1]
    token = html.escape(visible_token(t.label))
    shown = [name for name in STAGES if _stage_applies(trace, name)]
    stages = " → ".join(f"{t.probs[name]:.1%} ({tr(STAGE_NAMES[name])})" for name in shown)
    words = dict(n=n, total=total, token=token, rank=t.rank, vocab=t.vocab_size, stages=stages,
                 kept=t.kept["top_p"])
    summary = tr(TEXT["greedy" if trace.temperature == 0 else "summary"], **words)
    rows = list(t.candidates)
    ids = [c[0] for c in rows]
    if t.token_id not in ids:  # drawn from further down: shown under the likeliest
        rows.append((t.token_id, t.label, t.probs))
    settings = trace.settings
    used = tr(TEXT["settings"], temperature=settings["temperature"], top_k=settings["top_k"] or tr(TEXT["off"]),
              top_p=settings["top_p"] or tr(TEXT["off"]))
    # The settings on a line of their own: a phone's narrow chart cuts one long title.
    title = tr(TEXT["chart"], n=n, total=total, token=token) + f"<br><span style='font-size:12px'>{used}</span>"
    figure = candidates_figure(
        [label for _, label, _ in rows], {name: [probs[name] for _, _, probs in rows] for name in shown},
        highlight=[c[0] for c in rows].index(t.token_id), title=title)
    return summary, figure


def _stage_applies(trace: GenerationTrace, name: str) -> bool:
    # A filter that is off repeats the stage before it; the chart leaves it out.
    return not ((name == "top_k" and trace.top_k is None) or (name == "top_p" and trace.top_p is None))


def on_select(evt: gr.SelectData, request: gr.Request):
    """The click on a token, as Gradio delivers it (its index in `tokens`), answered in the
    session's language as `common.bind` answers."""
    try:
        with common.session(request).using() as ws, speaking(ws.lang):
            try:
                return common.localized(inspect(ws, evt.index))
            except Exception as exc:
                raise common.to_gr_error(exc) from None  # worded in the session's language
    except Exception as exc:
        raise common.to_gr_error(exc) from None


def wire(ui: SimpleNamespace, generation, bind) -> None:
    """After each generation (the event `generation`), its tokens; a click, that token's view."""
    generation.then(bind(after_generation), None, [ui.tokens, ui.summary, ui.chart], api_name=False,
                    show_progress="hidden")
    ui.tokens.select(on_select, None, [ui.summary, ui.chart], api_name=False, show_progress="hidden")


def layout() -> SimpleNamespace:
    """The tokens to click, the summary and the chart, made where they are called."""
    with gr.Accordion(TEXT["title"], open=True, elem_id="inspector"):
        # Its colours come with its tokens (after_generation), their names in the page's language.
        view = gr.HighlightedText([], label=TEXT["tokens"], show_legend=True,
                                  show_inline_category=False, combine_adjacent=False, elem_id="inspect-tokens")
        summary = gr.Markdown(TEXT["hint"], elem_id="inspect-summary")
        chart = gr.Plot(label=TEXT["chart_label"], elem_id="inspect-chart")
    return SimpleNamespace(tokens=view, summary=summary, chart=chart)
