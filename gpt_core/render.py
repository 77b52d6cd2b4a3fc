"""Tokens as HTML: how a tokenizer splits a text, and how likely a model found each token.

Every piece of user text goes through `html.escape`; the only markup is ours. The functions
return strings for an HTML widget (the app) or a notebook's `IPython.display.HTML`.
"""
from __future__ import annotations

import html
import math
from typing import Mapping, Sequence

# Light, distinct backgrounds so neighbouring tokens are told apart (BPE splits show).
TOKEN_COLORS = ("#dbeafe", "#fde68a", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa")
_BOX = ("display:inline;padding:1px 1px;margin:0 1px 0 0;border-radius:3px;"
        "line-height:1.9;white-space:pre-wrap;color:#111827;")


def _show_whitespace(piece: str) -> str:
    # Escape first, then make whitespace visible without letting a token hide inside it.
    return html.escape(piece).replace("\n", "\u21b5").replace("\t", "\u21e5")


def _breaks(piece: str) -> str:
    # Line breaks go after the token's box, so its id stays beside it.
    return "<br>" * piece.count("\n")


MORE_NOTE = "... and {more} more tokens"


def _more_tail(more: int, note: str) -> str:
    """The closing note under a token view that shows only its first tokens: `note` (a
    template with {more}, the caller's words and language) or nothing."""
    if more <= 0:
        return ""
    return f"<div style='color:#6b7280;margin-top:6px'>{html.escape(note.format(more=f'{more:,}'))}</div>"


def tokens_html(pieces: Sequence[str], ids: Sequence[int], *, show_ids: bool = True,
                more: int = 0, more_note: str = MORE_NOTE) -> str:
    """Each token on its own background colour, its id underneath (hover shows it too).

    `more` says how many further tokens were left out, for a closing note (`more_note`).
    """
    spans = []
    for i, (piece, tid) in enumerate(zip(pieces, ids)):
        color = TOKEN_COLORS[i % len(TOKEN_COLORS)]
        id_html = (f"<sub style='font-size:0.65em;color:#4b5563;margin-left:1px'>{int(tid)}</sub>"
                   if show_ids else "")
        spans.append(f"<span title='id {int(tid)}' style='{_BOX}background:{color}'>"
                     f"{_show_whitespace(piece)}{id_html}</span>{_breaks(piece)}")
    tail = _more_tail(more, more_note)
    return ("<div class='token-view' style='font-family:ui-monospace,monospace;font-size:14px'>"
            + "".join(spans) + "</div>" + tail)


def probability_color(p: float) -> str:
    """Red for tokens the model found unlikely, through yellow, to green for likely ones.

    The scale is logarithmic (p = 1e-4 is fully red): most tokens of a real text get small
    probabilities and a linear scale would paint nearly all of them the same red.
    """
    if not math.isfinite(p):
        return "#e5e7eb"
    x = (math.log10(max(p, 1e-4)) + 4) / 4  # 0 at 1e-4 .. 1 at p = 1
    x = min(1.0, max(0.0, x))
    hue = 120 * x  # 0 red, 60 yellow, 120 green
    return f"hsl({hue:.0f},85%,80%)"


# A token's details show in a bar at the foot of the screen while it is hovered or focused (a
# tap focuses it: tabindex), so they work on touch screens, where a title tooltip never appears.
# Fixed to the screen, the bar is never clipped by the scrolling text nor scrolled out of sight.
_PROB_STYLE = """<style>
.prob-view .tok {cursor:pointer;outline:none}
.prob-view .tok:focus {box-shadow:0 0 0 2px #1d4ed8}
.prob-view .tok-tip {display:none}
.prob-view .tok:hover .tok-tip, .prob-view .tok:focus .tok-tip {display:block;position:fixed;left:8px;right:8px;
  bottom:8px;max-width:720px;margin:0 auto;z-index:1000;padding:8px 12px;border-radius:8px;background:#111827;
  color:#f9fafb;font-size:14px;line-height:1.5;white-space:normal;font-family:ui-sans-serif,system-ui,sans-serif;
  box-shadow:0 4px 16px rgba(0,0,0,.3)}
.prob-view .tok-tip b {color:inherit;font-weight:700}
.prob-view .tok-hint {margin-top:6px;font-size:13px;color:#6b7280}
</style>"""


def format_probability(p: float) -> str:
    """12.3%, 0.41%, or 3.2e-05 for the tiny ones: never a bare 0.0000."""
    return f"{p:.1%}" if p >= 0.01 else f"{p:.2%}" if p >= 0.001 else f"{p:.1e}"


# The words of a probability view; a caller passes its own (same keys and {names}) for its language.
PROBABILITY_WORDS = {
    "rank": "rank {rank}", "rank_of": "rank {rank} of {vocab}", "own_guess": "the model's own first guess",
    "guess": "the model's first guess was {guess}", "legend": "probability:",
    "first": "The first token: nothing comes before it, so it is not predicted.",
    "hint": "Hover or tap a token: its probability, its rank among the model's guesses, and the model's own first guess.",
}


def _details(piece: str, p: float, rank: int | None, vocab: int | None, guess: str | None,
             words: Mapping[str, str]) -> str:
    parts = [f"<b>“{_show_whitespace(piece)}”</b>: p = {format_probability(p)}"]
    if rank is not None:
        parts.append(html.escape(words["rank_of"] if vocab else words["rank"]).format(rank=f"{rank:,}",
                                                                                      vocab=f"{vocab or 0:,}"))
    if guess is not None:
        parts.append(html.escape(words["own_guess"]) if rank == 1 else
                     html.escape(words["guess"]).format(guess=f"<b>“{_show_whitespace(guess)}”</b>"))
    return " · ".join(parts)


def probability_html(pieces: Sequence[str], probabilities: Sequence[float], *,
                     first_unscored: int = 0, more: int = 0, ranks: Sequence[int] | None = None,
                     guesses: Sequence[str] | None = None, vocab_size: int | None = None,
                     more_note: str = MORE_NOTE, words: Mapping[str, str] = PROBABILITY_WORDS) -> str:
    """A text with each token coloured by the probability the model gave it (`words`: the
    view's own words, PROBABILITY_WORDS in the caller's language).

    The first `first_unscored` pieces have no prediction (nothing comes before them) and are
    shown grey; `probabilities` covers the rest, in order, and so do `ranks` (1 = the model's
    first guess) and `guesses` (the token it found likeliest there) when given. Hovering or
    tapping a token shows them.
    """
    spans = []
    for i, piece in enumerate(pieces):
        if i < first_unscored:
            spans.append(f"<span class='tok' tabindex='0' style='{_BOX}background:#e5e7eb'>"
                         f"{_show_whitespace(piece)}<span class='tok-tip'>{html.escape(words['first'])}"
                         f"</span></span>{_breaks(piece)}")
            continue
        j = i - first_unscored
        p = float(probabilities[j])
        tip = _details(piece, p, int(ranks[j]) if ranks is not None else None, vocab_size,
                       guesses[j] if guesses is not None else None, words)
        spans.append(f"<span class='tok' tabindex='0' style='{_BOX}background:{probability_color(p)}'>"
                     f"{_show_whitespace(piece)}<span class='tok-tip'>{tip}</span></span>{_breaks(piece)}")
    tail = _more_tail(more, more_note)
    return (_PROB_STYLE + "<div class='prob-view'>"
            "<div class='token-view' style='font-family:ui-monospace,monospace;font-size:14px'>"
            + "".join(spans) + "</div>"
            f"<div class='tok-hint'>{html.escape(words['hint'])}</div></div>" + tail
            + probability_legend(words["legend"]))


def probability_legend(label: str = PROBABILITY_WORDS["legend"]) -> str:
    stops = [(1.0, "1"), (0.1, "0.1"), (0.01, "0.01"), (0.001, "0.001"), (0.0001, "\u2264 0.0001")]
    items = "".join(f"<span style='{_BOX}background:{probability_color(p)}'>{stop}</span>"
                    for p, stop in stops)
    return f"<div style='margin-top:8px;font-size:12px;color:#374151'>{html.escape(label)} {items}</div>"


def message_html(text: str, *, kind: str = "info") -> str:
    """A short boxed note (escaped): info, warn or error."""
    colors = {"info": ("#eff6ff", "#1d4ed8"), "warn": ("#fffbeb", "#b45309"),
              "error": ("#fef2f2", "#b91c1c")}
    bg, fg = colors.get(kind, colors["info"])
    return (f"<div style='background:{bg};color:{fg};padding:8px 12px;border-radius:6px;"
            f"border:1px solid {fg}33'>{html.escape(text)}</div>")


GENERATION_KEY = {"prompt": "prompt", "generated": "generated", "cut": "not seen (cut to the context)"}


def generation_html(prompt: str, continuation: str, *, cut: str = "", key: Mapping[str, str] = GENERATION_KEY
                    ) -> str:
    """A prompt and the model's continuation, told apart: the prompt on grey, the generated text
    on blue, and `cut` (a start the model did not see: the prompt is longer than its context)
    struck out before them. A key under the text says which is which (`key`: the caller's words
    for GENERATION_KEY's, in its language)."""
    text_style = ("white-space:pre-wrap;word-break:break-word;line-height:1.7;font-size:15px;"
                  "padding:10px 12px;border:1px solid #e5e7eb;border-radius:8px;min-height:3em")
    cut_html = (f"<span class='gen-cut' style='color:#9ca3af;text-decoration:line-through'>{html.escape(cut)}</span>"
                if cut else "")
    return (f"<div class='gen-text' style='{text_style}'>{cut_html}"
            f"<span class='gen-prompt' style='background:#e5e7eb;color:#111827;border-radius:3px'>"
            f"{html.escape(prompt)}</span>"
            f"<span class='gen-new' style='background:#dbeafe;color:#1e3a8a;border-radius:3px'>"
            f"{html.escape(continuation)}</span></div>"
            "<div class='gen-key' style='margin-top:6px;font-size:12px;color:#374151'>"
            f"<span style='{_BOX}background:#e5e7eb'>{html.escape(key['prompt'])}</span> "
            f"<span style='{_BOX}background:#dbeafe'>{html.escape(key['generated'])}</span>"
            + (f" <span style='{_BOX}color:#9ca3af;text-decoration:line-through'>{html.escape(key['cut'])}</span>"
               if cut else "") + "</div>")
