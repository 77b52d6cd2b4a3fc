"""Evaluate tab: loss, perplexity and per-token probabilities of a text under one or two models."""
from __future__ import annotations

import math

from gpt_core.corpus import split_text
from gpt_core.generate import score_text
from gpt_core.render import message_html, probability_html

from . import models
from .models import resolve
from .session import Workspace

MAX_SCORE_TOKENS = 4_000  # keeps one evaluation under a few seconds with GPT-2 124M on 2 cores
SHOW_TOKENS = 1_500


def validation_text(ws: Workspace) -> str:
    """The corpus's validation part (its last 10%), as the Train tab measures val loss on."""
    _, val = split_text(ws.text, 0.9)
    return val[: ws.limits.max_score_chars]


def score_one(ws: Workspace, model_choice: str, text: str) -> tuple[str, str]:
    """(metrics markdown, coloured tokens html) for one model."""
    model, tok, cfg = resolve(ws, model_choice)
    ids = tok.encode(text)
    truncated = len(ids) > MAX_SCORE_TOKENS
    ids = ids[:MAX_SCORE_TOKENS]
    if len(ids) < 2:
        raise ValueError(f"The text has {len(ids)} token for {model_choice}; scoring needs at least two.")
    score = score_text(model, ids)
    probs = score.target_probs[0].tolist()
    scored_text = tok.decode(ids)
    nll_total = -float(score.log_probs.sum())
    bits_per_char = nll_total / max(1, len(scored_text)) / math.log(2)
    accuracy_hint = sum(p > 0.5 for p in probs) / len(probs)
    metrics = "\n".join([
        f"### {model_choice}",
        "| Measure | Value |", "|---|---|",
        f"| Loss (cross-entropy) | **{score.cross_entropy:.3f}** |",
        f"| Perplexity | **{score.perplexity:,.1f}** |",
        f"| Bits per character | {bits_per_char:.3f} |",
        f"| Tokens scored | {len(probs):,}" + (" (first part of the text)" if truncated else "") + " |",
        f"| Tokens given p > 0.5 | {accuracy_hint:.0%} |",
    ])
    shown = min(len(ids), SHOW_TOKENS)
    pieces = tok.token_strings(ids[:shown])
    guesses = tok.token_strings(score.top_ids[0, : shown - 1].tolist())
    body = probability_html(pieces, probs[: shown - 1], first_unscored=1, more=len(ids) - shown,
                            ranks=score.ranks[0, : shown - 1].tolist(), guesses=guesses, vocab_size=tok.n_vocab)
    return metrics, body


def evaluate(ws: Workspace, text: str, model_a: str | None, model_b: str | None):
    """Score `text` (empty: the validation part) with model A and, if chosen, model B."""
    text = text if isinstance(text, str) and text.strip() else validation_text(ws)
    if len(text) > ws.limits.max_score_chars:
        raise ValueError(f"The text has {len(text):,} characters; evaluation takes up to "
                         f"{ws.limits.max_score_chars:,}. Shorten it.")
    model_b = None if model_b == models.NO_MODEL else model_b
    if not model_a and not model_b:
        raise ValueError("Choose at least one model to evaluate.")
    outputs = []
    for choice in (model_a, model_b):
        if not choice:
            outputs += ["", message_html("Choose a model to compare.", kind="info")]
            continue
        outputs += list(score_one(ws, choice, text))
    note = ("Loss and perplexity compare only between models with the same tokenizer; "
            "bits per character compare any two.")
    return (*outputs, note)
