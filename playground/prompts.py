"""What a model is given to continue: a prompt it can read, cut to its context, said out loud.

Generate's prompt and Train's start context both pass here. A character-level model knows only
the characters of its text: an English prompt for a model of 论语 would be read as a row of
fallback characters (its samples then begin "不不不不"), so it is replaced by the text's own
first characters, and the page says so. A prompt longer than the context is cut to its last
tokens, as the model sees it, and the page says that too.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from gpt_core.tokenizers import opening, unreadable_share

from .i18n import tr

# More than this share of a prompt's characters unknown to the model: it cannot be read.
UNREADABLE = 0.5


def _quoted(text: str, limit: int = 40) -> str:
    return f"“{text[:limit]}{'…' if len(text) > limit else ''}”"


def readable_start(tok, context: str, text: str) -> tuple[str, str | None]:
    """(context, None) when `tok` can read `context`; else (the first characters of `text` that it
    can read, a sentence saying so). `text` is the corpus the model learned from."""
    if unreadable_share(tok, context) <= UNREADABLE:
        return context, None
    known = "".join(c for c in opening(text, max_chars=64) if not tok.unknown_chars(c))[:16]
    if not known.strip():
        raise ValueError(tr("This model knows none of the characters of {context}, nor of its text's first "
                            "line: type a few characters from the text it learned.", context=_quoted(context)))
    return known, tr("{context} is in characters this model never saw in its text; it starts from the text's "
                     "own first characters, {known}, instead.", context=_quoted(context), known=_quoted(known))


@dataclass
class Prompt:
    """A prompt as the model sees it: `ids` (at most the context), the text they decode to, the
    part cut off before them, and sentences for the page."""
    ids: list[int]
    text: str
    cut: str = ""
    notes: list[str] = field(default_factory=list)


def prepare_prompt(tok, prompt: str, context_length: int, text: str, *, max_chars: int) -> Prompt:
    """Check `prompt`, replace it when the model cannot read it, cut it to `context_length`."""
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(tr("The prompt is empty: type a few words for the model to continue."))
    if len(prompt) > max_chars:
        raise ValueError(tr("The prompt is longer than {n} characters; shorten it.", n=f"{max_chars:,}"))
    prompt, replaced = readable_start(tok, prompt, text)
    notes = [replaced] if replaced else []
    unknown = tok.unknown_chars(prompt) if hasattr(tok, "unknown_chars") else []
    if unknown:  # a few new characters: the model reads each as its fallback
        notes.append(tr("This model never saw {chars} in its text; it reads them as {fallback}.",
                        chars=_quoted("".join(unknown[:20])), fallback=_quoted(tok.fallback)))
    ids = tok.encode(prompt)
    if not ids:
        raise ValueError(tr("The prompt has no tokens this model knows."))
    if len(ids) <= context_length:
        return Prompt(ids, tok.decode(ids), notes=notes)
    notes.append(tr("The prompt has {tokens} tokens; the model sees only its last {context} (its context "
                    "length), so the struck-out start was cut.", tokens=f"{len(ids):,}", context=f"{context_length:,}"))
    return Prompt(ids[-context_length:], tok.decode(ids[-context_length:]), cut=tok.decode(ids[:-context_length]),
                  notes=notes)


def readable_run_start(ws, spec, start: str):
    """For Train: (spec, None), or the run's spec (playground.options.RunSpec) with the text's
    first characters as its start context and a sentence saying so, when the run's tokenizer
    cannot read the one in the form. `start` is "scratch", "gpt2" or "own"."""
    if start == "gpt2":  # GPT-2's BPE reads any text
        return spec, None
    tok = ws.own.tokenizer if start == "own" and ws.own is not None else ws.tokenizer(spec.tokenizer)
    context, note = readable_start(tok, spec.train.start_context, ws.text)
    if note is None:
        return spec, None
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, start_context=context)), \
        tr("The samples' start context: {note}", note=note)
