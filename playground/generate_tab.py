"""Generate tab: streaming text, the next-token candidates chart, the book's sampling lab."""
from __future__ import annotations

import time

import gradio as gr
import torch

from gpt_core.generate import next_token_distribution, stream_generate
from gpt_core.plots import candidates_figure, message_figure, sampling_lab_figure
from gpt_core.sampling import STAGES, TOY_INVERSE_VOCAB, temperature_lab

from .fields import form_number
from .inspector import new_trace
from .models import resolve
from .session import Workspace

# Browsers redraw text ~20 times a second at most; more frequent updates only cost bandwidth.
STREAM_INTERVAL_S = 0.05
MAX_PROMPT_CHARS = 5_000


def sampling_options(temperature, top_k, top_p, seed) -> dict:
    """Slider values -> generate() options: top-k 0 and top-p 1 mean "off", no seed = random."""
    t = form_number(temperature, "Temperature", 0.0, 5.0)
    k = form_number(top_k, "Top-k", 0, 100_000, whole=True, empty=0)
    p = form_number(top_p, "Top-p", 0.0, 1.0, empty=1.0)
    if p == 0:
        raise ValueError("Top-p must be above 0 (1 keeps every token).")
    s = form_number(seed, "Seed", 0, 2**31 - 1, whole=True, empty=None)
    return dict(temperature=t, top_k=k or None, top_p=p if p < 1 else None, seed=s)


def _prompt_ids(tok, prompt: str, context_length: int) -> list[int]:
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("The prompt is empty: type a few words for the model to continue.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"The prompt is longer than {MAX_PROMPT_CHARS:,} characters; shorten it.")
    unknown = tok.unknown_chars(prompt) if hasattr(tok, "unknown_chars") else []
    if unknown:  # a character model only knows its corpus's characters
        gr.Warning(f"This model never saw {''.join(unknown[:20])!r} in its text; "
                   f"they are read as {tok.fallback!r}.")
    ids = tok.encode(prompt)
    if not ids:
        raise ValueError("The prompt has no tokens this model knows.")
    return ids[-context_length:]  # the model only sees its last context_length tokens


def generate_text(ws: Workspace, model_choice, prompt, max_new_tokens, temperature, top_k, top_p,
                  seed, stop_at_eot):
    """Stream the prompt's continuation (prompt + new text, updated as tokens arrive)."""
    model, tok, cfg = resolve(ws, model_choice)
    n = form_number(max_new_tokens, "Max new tokens", 1, ws.limits.max_new_tokens, whole=True)
    options = sampling_options(temperature, top_k, top_p, seed)
    ids = _prompt_ids(tok, prompt, cfg.context_length)
    eos = tok.eot_id if stop_at_eot else None
    text = prompt
    yield text
    last = time.monotonic()
    trace = new_trace(ws, tok, prompt, options)  # for the inspector, from generation's own logits
    for piece in stream_generate(model, tok, ids, n, eos_id=eos, on_step=trace.record, **options):
        text += piece
        if time.monotonic() - last >= STREAM_INTERVAL_S:
            last = time.monotonic()
            yield text
    yield text


def candidates(ws: Workspace, model_choice, prompt, temperature, top_k, top_p, seed=None):
    """The next-token chart for the prompt under the current sliders."""
    model, tok, cfg = resolve(ws, model_choice)
    options = sampling_options(temperature, top_k, top_p, seed)
    ids = _prompt_ids(tok, prompt, cfg.context_length)
    idx = torch.tensor([ids], dtype=torch.long, device=next(model.parameters()).device)
    dist = next_token_distribution(model, idx, temperature=options["temperature"], top_k=options["top_k"],
                                   top_p=options["top_p"], top_n=12, tokenizer=tok)
    labels = [c.label for c in dist.candidates]
    stages = {name: [c.probs[name] for c in dist.candidates] for name in STAGES}
    if options["top_k"] is None:
        stages.pop("top_k")
    if options["top_p"] is None:
        stages.pop("top_p")
    settings = (f"temperature {options['temperature']:g}" + ("" if options["temperature"] else " = greedy")
                + f", top-k {options['top_k'] or 'off'}, top-p {options['top_p'] or 'off'}; "
                + f"{dist.kept.get('top_p', dist.kept.get('temperature', 0)):,} tokens can be drawn")
    return candidates_figure(labels, stages, settings=settings)


def candidates_or_note(ws: Workspace, model_choice, prompt, temperature, top_k, top_p):
    """The candidates chart, or an empty chart saying why there is none (no model yet, an
    empty prompt): shown without a pop-up when the tab opens or after generating."""
    try:
        return candidates(ws, model_choice, prompt, temperature, top_k, top_p)
    except ValueError as e:
        return message_figure(str(e), title="Next-token candidates")


def sampling_lab(temperature, draws, seed):
    """The book's toy vocabulary: probabilities at a temperature and counts of `draws` samples."""
    t = form_number(temperature, "Temperature", 0.01, 10.0)
    n = form_number(draws, "Draws", 1, 10_000, whole=True)
    s = form_number(seed, "Seed", 0, 2**31 - 1, whole=True, empty=None)
    reference, run = temperature_lab([1.0, t], num_samples=n, seed=s)
    words = [TOY_INVERSE_VOCAB[i] for i in range(len(run.probs))]
    return sampling_lab_figure(words, run.probs, run.counts, temperature=t, draws=n,
                               reference=reference.probs if t != 1.0 else None)
