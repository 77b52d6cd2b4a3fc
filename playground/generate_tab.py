"""Generate tab: streaming text, the next-token candidates chart, the book's sampling lab."""
from __future__ import annotations

import time
from typing import Iterator

import torch

from gpt_core.generate import next_token_distribution, stream_generate
from gpt_core.plots import candidates_figure, message_figure, sampling_lab_figure
from gpt_core.render import generation_html, message_html
from gpt_core.sampling import STAGES, TOY_INVERSE_VOCAB, temperature_lab

from .fields import form_number
from .i18n import tr
from .inspector import new_trace
from .models import resolve
from .prompts import Prompt, prepare_prompt
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


def _prompt(ws: Workspace, tok, prompt, context_length: int) -> Prompt:
    return prepare_prompt(tok, prompt, context_length, ws.text, max_chars=MAX_PROMPT_CHARS)


def _continuations(ws: Workspace, model_choice, prompt, max_new_tokens, temperature, top_k, top_p, seed,
                   stop_at_eot):
    """(the prompt as the model sees it, the continuation so far), a few times a second."""
    # The numbers first: the API's values reach here unchecked by any slider.
    n = form_number(max_new_tokens, "Max new tokens", 1, ws.limits.max_new_tokens, whole=True)
    options = sampling_options(temperature, top_k, top_p, seed)
    model, tok, cfg = resolve(ws, model_choice)
    seen = _prompt(ws, tok, prompt, cfg.context_length)
    eos = tok.eot_id if stop_at_eot else None
    text = ""
    yield seen, text
    last = time.monotonic()
    trace = new_trace(ws, tok, prompt, options)  # for the inspector, from generation's own logits
    for piece in stream_generate(model, tok, seen.ids, n, eos_id=eos, on_step=trace.record, **options):
        text += piece
        if time.monotonic() - last >= STREAM_INTERVAL_S:
            last = time.monotonic()
            yield seen, text
    yield seen, text


def generate_text(ws: Workspace, model_choice: str | None, prompt: str, max_new_tokens: float, temperature: float,
                  top_k: float, top_p: float, seed: float | None, stop_at_eot: bool) -> Iterator[str]:
    """Stream the prompt's continuation (the whole prompt + the new text, updated as tokens
    arrive; a prompt the model cannot read is replaced by its text's first characters)."""
    for seen, text in _continuations(ws, model_choice, prompt, max_new_tokens, temperature, top_k, top_p, seed,
                                     stop_at_eot):
        yield seen.cut + seen.text + text


def generate_view(ws: Workspace, model_choice, prompt, max_new_tokens, temperature, top_k, top_p,
                  seed, stop_at_eot):
    """The page's view of generate_text: the prompt and the continuation apart, and what was
    done to the prompt (cut to the context, replaced) said above them."""
    for seen, text in _continuations(ws, model_choice, prompt, max_new_tokens, temperature, top_k, top_p, seed,
                                     stop_at_eot):
        yield output_html(seen, text)


def output_html(seen: Prompt | None, continuation: str = "") -> str:
    if seen is None:
        return ("<div class='gen-text' style='color:#6b7280;padding:10px 0'>"
                + tr("The prompt and the model's continuation appear here, told apart.") + "</div>")
    notes = "".join(message_html(n, kind="info") for n in seen.notes)
    return notes + generation_html(seen.text, continuation, cut=seen.cut)


def candidates(ws: Workspace, model_choice, prompt, temperature, top_k, top_p, seed=None):
    """The next-token chart for the prompt under the current sliders."""
    model, tok, cfg = resolve(ws, model_choice)
    options = sampling_options(temperature, top_k, top_p, seed)
    ids = _prompt(ws, tok, prompt, cfg.context_length).ids
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
