"""The runs of one session, kept side by side: each run's settings and curves, the labels that
say how they differ, and their exports (the curves as CSV, the settings as JSON).

Plain data and text (in the session's language, `i18n.tr`): `compare.py` draws and serves
these; tests call them directly.
"""
from __future__ import annotations

import csv
import io
import json
import math
import threading
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .history import RunHistory
from .i18n import tr

MAX_RUNS = 6  # enough to compare; each keeps its (bounded) history
MAX_CHANGES = 4  # a label longer than this would not fit a legend
MAX_TEXT = 20  # characters of a text value (a start context, a corpus name) in a label

# How a setting reads in a label: the Train form's field names, shortened (the book's own
# abbreviations stay in Latin letters in Chinese too, as its config names do).
SHORT_NAMES = {
    "preset": "preset", "tokenizer": "tokens", "start": "from", "text": "text",
    "context_length": "ctx", "emb_dim": "emb", "n_heads": "heads", "n_layers": "layers",
    "drop_rate": "drop", "qkv_bias": "qkv", "num_epochs": "epochs", "batch_size": "batch",
    "learning_rate": "lr", "weight_decay": "wd", "eval_freq": "eval every", "eval_iter": "eval batches",
    "warmup_steps": "warmup", "cosine": "cosine", "grad_clip": "clip", "label_smoothing": "smoothing",
    "seed": "seed", "start_context": "context", "stride": "stride", "iterations": "iters",
}
# The labels' words, each whole (a translation replaces the whole pattern), in one place.
TEXT = {
    "alone": "run {number}",
    "with_values": "run {number}: {values}",
    "changed": "run {number}: {changes}",
    "same": "run {number}: same settings as run {reference}",
    "more": "+{count} more",
    "on": "on", "off": "off", "none": "none",
    "separator": ", ",
    **{f"name:{key}": name for key, name in SHORT_NAMES.items()},
}


def run_name(number: int) -> str:
    return tr(TEXT["alone"], number=number)


def short_value(value: Any) -> str:
    """A setting's value as a label shows it: 0.006 -> "6e-3", True -> "on", long text cut."""
    if isinstance(value, bool):
        return tr(TEXT["on"] if value else TEXT["off"])
    if value is None:
        return tr(TEXT["none"])
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0 or not math.isfinite(value):
            return f"{value:g}"
        if abs(value) < 1e-2 or abs(value) >= 1e5:
            mantissa, exponent = f"{value:.3e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:.4g}"
    text = str(value)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT - 1].rstrip() + "…"
    return f'"{text}"' if " " in text else text


def _join(parts: list[str]) -> str:
    if len(parts) > MAX_CHANGES:
        parts = parts[:MAX_CHANGES - 1] + [tr(TEXT["more"], count=len(parts) - MAX_CHANGES + 1)]
    return tr(TEXT["separator"]).join(parts)


def difference_labels(settings: Sequence[Mapping[str, Any]], numbers: Sequence[int] | None = None) -> list[str]:
    """A label for each run saying what differs from the others: the first run (the
    reference) with its values of the settings that differ anywhere, each other run with
    what it changed from the reference, e.g. "run 2: lr 6e-3 → 1e-3, drop 0.1 → 0".

    `settings`: each run's settings by name (the Train form's field names), in the order the
    labels should name them; `numbers`: the runs' numbers (default 1, 2, ...).
    """
    numbers = list(numbers) if numbers is not None else list(range(1, len(settings) + 1))
    if len(numbers) != len(settings):
        raise ValueError(f"{len(settings)} runs but {len(numbers)} numbers")
    if not settings:
        return []
    if len(settings) == 1:
        return [run_name(numbers[0])]
    names = list(dict.fromkeys(k for s in settings for k in s))  # every name, first-seen order
    differing = [k for k in names if len({repr(s.get(k)) for s in settings}) > 1]
    reference = settings[0]

    def name(key: str) -> str:
        return tr(TEXT[f"name:{key}"]) if key in SHORT_NAMES else key

    # "lr 6e-3", "lr 6e-3 → 1e-3": notation, the same in every language.
    values = [f"{name(k)} {short_value(reference.get(k))}" for k in differing]
    labels = [tr(TEXT["with_values"], number=numbers[0], values=_join(values)) if values
              else run_name(numbers[0])]
    for number, run in zip(numbers[1:], settings[1:]):
        changes = [f"{name(k)} {short_value(reference.get(k))} → {short_value(run.get(k))}"
                   for k in differing if repr(run.get(k)) != repr(reference.get(k))]
        labels.append(tr(TEXT["changed"], number=number, changes=_join(changes)) if changes
                      else tr(TEXT["same"], number=number, reference=numbers[0]))
    return labels


@dataclass
class Run:
    """One training run of the session: the settings it was started with and its curves (the
    same `RunHistory` the live chart draws, so a resumed run keeps growing here too)."""
    number: int
    settings: dict[str, Any]
    history: RunHistory

    @property
    def has_curve(self) -> bool:
        return bool(self.history.val_losses)


class RunArchive:
    """The session's last `max_runs` runs, and which of them the comparison shows."""

    def __init__(self, max_runs: int = MAX_RUNS):
        self.max_runs = max_runs
        self._lock = threading.Lock()
        self._runs: list[Run] = []
        self._hidden: set[int] = set()
        self._next = 1

    def add(self, settings: Mapping[str, Any], history: RunHistory) -> Run:
        with self._lock:
            run = Run(self._next, dict(settings), history)
            self._next += 1
            self._runs = [*self._runs, run][-self.max_runs:]
            self._hidden &= {r.number for r in self._runs}
            return run

    @property
    def runs(self) -> list[Run]:
        """The kept runs with at least one evaluation (a curve to draw), oldest first."""
        with self._lock:
            return [r for r in self._runs if r.has_curve]

    def shown(self) -> list[Run]:
        with self._lock:
            hidden = set(self._hidden)
        return [r for r in self.runs if r.number not in hidden]

    def show(self, numbers: Sequence[int]) -> None:
        """Show exactly the runs numbered `numbers` (others kept, hidden)."""
        wanted = {int(n) for n in numbers}
        with self._lock:
            self._hidden = {r.number for r in self._runs} - wanted

    def clear(self) -> None:
        with self._lock:
            self._runs, self._hidden = [], set()


CSV_COLUMNS = ("run", "label", "step", "tokens_seen", "train_loss", "val_loss")


def _loss(x: float) -> str:
    return repr(float(x)) if math.isfinite(x) else ""  # an empty validation text: no value


def curves_csv(runs: Sequence[Run], labels: Sequence[str]) -> str:
    """The runs' evaluation curves, one row per evaluation (the points the chart draws):
    run, label, step (the book's global step), tokens seen, training and validation loss."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for run, label in zip(runs, labels):
        h = run.history
        for step, tokens, train, val in zip(h.eval_steps, h.tokens_seen, h.train_losses, h.val_losses):
            writer.writerow((run.number, label, step, tokens, _loss(train), _loss(val)))
    return out.getvalue()


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def settings_json(runs: Sequence[Run], labels: Sequence[str], links: Sequence[str]) -> str:
    """The runs' settings (by the Train form's field names) with their labels, the link that
    opens the page with them, and how each run ended."""
    entries = []
    for run, label, link in zip(runs, labels, links):
        h = run.history
        finite_val = [v for v in h.val_losses if math.isfinite(v)]
        entries.append({
            "run": run.number, "label": label, "settings": run.settings, "link": link,
            "evaluations": len(h.val_losses),
            "last_train_loss": _finite(h.train_losses[-1] if h.train_losses else None),
            "last_val_loss": _finite(h.last_val_loss),
            "best_val_loss": min(finite_val) if finite_val else None,
        })
    return json.dumps({"runs": entries}, indent=2, ensure_ascii=False) + "\n"
