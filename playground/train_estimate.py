"""Train tab, before a run: the preset fitted to the text, and the estimate of what the run
will take (parameters, memory, steps, the time measured here), with what would stop it from
starting and the value that would work instead.
"""
from __future__ import annotations

import html
import math
import threading
import time
from typing import Any

import gradio as gr

from gpt_core.precision import precision_for
from gpt_core.prepare import select_device

from .common import SETTINGS, SHARED
from .data_tab import tokenizer_hint, tokenizer_kind
from .errors import WorkspaceError
from .formatting import counted, format_bytes, format_count
from .i18n import tr, translate_message
from .memory import MemoryBudgetError
from .options import PRESET_FILLS, START_FROM, build_spec, precision_sentence, preset_fields, preset_name
from .share import start_id
from .preset_fit import FITTED_FIELDS, Fit, about, duration_words, fit_preset
from .run_plan import (AUTOSAVE_MAX_PARAMETERS, RunPlan, TextSize, plan_run, text_size, warmup_problem,
                       window_problems)
from .session import BoundedDict, Workspace

AUTO_MEASURE_MAX_PARAMS = 20_000_000  # models this small are timed without asking (a few seconds)
# Run costs measured on this server, shared by all sessions: every page load fits the default
# preset, and thirty students opening the page at once would otherwise time thirty throwaway
# models (~6 s each on a busy 2-core server) while others train.
MEASURED_RUN_COSTS: BoundedDict = BoundedDict(64)  # (config, batch size) -> (RunCosts, when measured)
MEASURE_MAX_AGE_S = 120.0
_MEASURING: BoundedDict = BoundedDict(64)  # (config, batch size) -> the lock of its measurement
_MEASURING_LOCK = threading.Lock()
# Random windows seeing the training text this many times over are bound to memorise it:
# the notebook's 3,000 x 128 x 64 characters were meant for a novel; on the bundled 论语
# they are ~1,400 passes and BabyGPT's validation loss climbs from 5.4 to 10 (scripts/babygpt_vs_bigram.py).
MANY_PASSES = 50


def spec_of(ws: Workspace, form: dict):
    """The Train form (options.FORM_FIELDS by name) -> a checked RunSpec."""
    kind = tokenizer_kind(form["tokenizer"])
    return build_spec(tokenizer=kind, vocab_size=ws.tokenizer(kind).n_vocab, preset_label=form["preset"],
                      **{k: form[k] for k in PRESET_FILLS})


def gpt2_base():
    """(name, (model, config, tokenizer)) of the first GPT-2 loaded on the server, or None."""
    loaded = SHARED.keys()
    base = SHARED.get(loaded[0]) if loaded else None
    return (loaded[0], base) if base is not None else None


def run_model(ws: Workspace, spec: Any, start: str) -> tuple[Any, str]:
    """(model config, tokenizer kind) of the model the run will train: the form's, GPT-2's
    cropped to the form's context, or the session's own."""
    if start == "gpt2":
        loaded = gpt2_base()
        if loaded is None:
            raise WorkspaceError("No GPT-2 is loaded yet: load one in the GPT-2 tab, then train.")
        base_config = loaded[1][1]
        return base_config.replace(context_length=min(spec.model.context_length, base_config.context_length)), "gpt2"
    if start == "own":
        own = ws.own
        if own is None:
            raise WorkspaceError("You have no model to continue yet: train one from scratch or upload a "
                                 "checkpoint first.")
        return own.config, own.tokenizer.to_dict().get("type", spec.tokenizer)
    return spec.model, spec.tokenizer


def too_many_steps(tc, batches_per_epoch: int) -> str | None:
    """The sentence refusing a run that plans more optimizer steps than this server trains in
    one run, with the largest value that fits; None when it fits."""
    cap = SETTINGS.max_run_steps
    if tc.batching == "random_windows":
        if tc.max_steps <= cap:
            return None
        return (f"{tc.max_steps:,} iterations are more than this server trains in one run "
                f"({cap:,} steps): choose at most {cap:,} iterations.")
    planned = batches_per_epoch * tc.num_epochs
    if planned <= cap:
        return None
    epochs = cap // max(1, batches_per_epoch)
    fix = (f"choose at most {epochs:,} epochs" if epochs else
           f"one epoch is already {batches_per_epoch:,} steps: choose a batch size of at least "
           f"{math.ceil(batches_per_epoch * tc.batch_size / cap)}, or at most {cap:,} iterations")
    return (f"This run plans {planned:,} optimizer steps ({batches_per_epoch:,} per epoch × {tc.num_epochs:,} "
            f"epochs); this server trains up to {cap:,} in one run: {fix}.")


def run_problems(ws: Workspace, tc: Any, config: Any, size: TextSize) -> list[str]:
    """Everything that would stop this run from starting, each with what to change."""
    problems = window_problems(size, context_length=config.context_length, batch_size=tc.batch_size,
                               stride=tc.stride, random_windows=tc.batching == "random_windows")
    if not problems:
        warmup = warmup_problem(tc, plan_run(tc, size).steps)
        problems += [warmup] if warmup else []
    steps = too_many_steps(tc, size.train_batches)
    problems += [steps] if steps else []
    if config.num_parameters() > ws.limits.max_train_parameters:
        problems.append(f"This model has {format_count(config.num_parameters())} parameters, more than this server "
                        f"trains ({format_count(ws.limits.max_train_parameters)}): choose a smaller preset.")
    return problems


def check_startable(ws: Workspace, spec: Any, start: str) -> None:
    """Refuse, before anything is queued or built, a run that cannot start, saying what to change."""
    config, kind = run_model(ws, spec, start)
    problems = run_problems(ws, spec.train, config, text_size(ws, kind, config.context_length, spec.train))
    if problems:
        raise WorkspaceError(" ".join(problems))


def costs_for(ws: Workspace, config: Any, tc: Any):
    """The run's measured costs, known to this session or server; a model small enough to time
    without asking (and with room to) is timed again once its figure is MEASURE_MAX_AGE_S old,
    for a shared machine's load changes. None when nothing is known (the estimate then offers
    the Measure button)."""
    key = (config, tc.batch_size, tc.precision)  # timed in the run's precision
    known = max((c for c in (ws.run_costs.get(key), MEASURED_RUN_COSTS.get(key)) if c), key=lambda c: c[1],
                default=None)
    params = config.num_parameters()
    fresh = known is not None and time.monotonic() - known[1] < MEASURE_MAX_AGE_S
    if fresh or params > AUTO_MEASURE_MAX_PARAMS or params > ws.limits.max_train_parameters:
        return known[0] if known is not None else None
    with _MEASURING_LOCK:  # a class opening the page at once: one times it, the others wait or read the older figure
        lock = _MEASURING.setdefault(key, threading.Lock())
    if not lock.acquire(blocking=known is None):
        return known[0]
    try:
        again = MEASURED_RUN_COSTS.get(key)
        if again is not None and time.monotonic() - again[1] < MEASURE_MAX_AGE_S:  # timed while we waited
            known = ws.run_costs[key] = again
        else:
            known = ws.run_costs[key] = MEASURED_RUN_COSTS[key] = (
                ws.time_run(config, batch_size=tc.batch_size, train_config=tc), time.monotonic())
    except (MemoryBudgetError, WorkspaceError):
        pass  # no room to time it now: an older figure, or the Measure button
    finally:
        lock.release()
    return known[0] if known is not None else None


def _plan_line(tc, size: TextSize, plan: RunPlan) -> str:
    if plan.random_windows:  # the BabyGPT notebook: one pass of iterations, no epochs
        return tr("{iterations}, each over {windows} windows at random starts (80/20 split of the tokens); loss "
                  "estimated every {every} over {batches} of each split, with a sample each time",
                  iterations=counted(tc.max_steps, "iteration"), windows=tc.batch_size,
                  every=counted(tc.eval_freq, "iteration"),
                  batches=counted(tc.eval_iter, "random batch", "random batches"))
    return tr("{batches} per epoch × {epochs} = {steps}; loss estimated every {every} over {eval_batches} of the "
              "two splits", batches=counted(size.train_batches, "batch", "batches"),
              epochs=counted(tc.num_epochs, "epoch"), steps=counted(plan.steps, "step"),
              every=counted(tc.eval_freq, "step"), eval_batches=counted(plan.eval_batches, "batch", "batches"))


def _time_line(plan: RunPlan, costs, saved: bool) -> str:
    if costs is None:
        return tr("Time: press *Measure speed* (times the parts of a run of this model here).")
    total = plan.seconds(costs, saved=saved)
    samples = plan.evaluations if plan.random_windows else plan.samples  # (random windows: one each evaluation)
    per_epoch = ("" if plan.random_windows else
                 tr(", {duration} per epoch", duration=duration_words((total - costs.build) / plan.samples)))
    return tr("Measured here: {step} ms a step, {batch} ms an evaluation batch → **{total}** on this machine "
              "({parts})", step=f"{costs.train_step * 1000:,.0f}", batch=f"{costs.eval_batch * 1000:,.0f}",
              total=about(total), parts=tr("{steps}, {evaluations}, {samples}", steps=counted(plan.steps, "step"),
                                           evaluations=counted(plan.evaluations, "evaluation"),
                                           samples=counted(samples, "sample")) + per_epoch)


def _passes_warning(tc, size: TextSize, context_length: int) -> str:
    passes = tc.max_steps * tc.batch_size * context_length / max(1, size.train_tokens)
    if passes < MANY_PASSES:
        return tr("The iterations read the training part about {passes} times over", passes=f"{passes:,.1f}")
    return tr("⚠️ The iterations read the training part about **{passes} times over**: expect the model to "
              "memorise this text (the validation loss turns up early). Fewer iterations, dropout or a longer "
              "text keep it learning.", passes=f"{passes:,.0f}")


# How each fitted field reads in the estimate's one-line summary of the fit.
FITTED_WORDS = {"num_epochs": lambda n: counted(n, "epoch"), "iterations": lambda n: counted(n, "iteration"),
                "warmup_steps": lambda n: counted(n, "warmup step"),
                "eval_iter": lambda n: tr("{batches} an evaluation", batches=counted(n, "batch", "batches")),
                "eval_freq": lambda n: tr("an evaluation every {every}", every=counted(n, "iteration"))}  # (fitted for random windows)


def _fit_reasons(ws: Workspace, form: dict) -> list[str]:
    """What the fitting chose, in one line, and why (folded, so the estimate stays short on a
    phone), for the fields the user has not changed since."""
    label, fit = ws.ui.get("fit", (None, Fit()))
    if label != form.get("preset"):
        return []
    kept = {name: reason for name, reason in fit.reasons.items() if _same(form.get(name), fit.values[name])}
    if not kept:
        return []
    chosen = tr(", ").join(FITTED_WORDS[name](int(fit.values[name])) for name in kept)
    items = "".join(f"<li>{html.escape(reason)}</li>" for reason in kept.values())
    if {"num_epochs", "iterations"} & set(kept):  # the time budget had its say
        summary = tr("Fitted to <i>{text}</i> and the time budget of {budget}: {chosen} (why?)",
                     text=html.escape(ws.corpus_name), budget=duration_words(SETTINGS.time_budget_s), chosen=chosen)
    else:
        summary = tr("Fitted to <i>{text}</i>: {chosen} (why?)", text=html.escape(ws.corpus_name), chosen=chosen)
    return [f"<details><summary>{summary}</summary><ul>{items}</ul></details>"]


def _same(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def estimate(ws: Workspace, form: dict, start_label: str = START_FROM[0]) -> str:
    """Parameters, memory, steps and the time measured here, before anything is trained."""
    try:
        spec = spec_of(ws, form)
        config, kind = run_model(ws, spec, start_id(start_label))
    except ValueError as e:
        return f"⚠️ {html.escape(str(e))}"
    tc = spec.train
    size = text_size(ws, kind, config.context_length, tc)
    plan = plan_run(tc, size)
    params = config.num_parameters()
    lines = [
        tr("**{count} parameters** ({exact}) · weights {weights} · training needs about {training}",
           count=format_count(params), exact=f"{params:,}", weights=format_bytes(config.memory_bytes()),
           training=format_bytes(config.training_memory_bytes(tc.batch_size, config.context_length))),
        _plan_line(tc, size, plan),
        _time_line(plan, costs_for(ws, config, tc), params <= AUTOSAVE_MAX_PARAMETERS),
    ]
    lines.append(precision_sentence(precision_for(tc.precision, select_device(tc.device))))
    if plan.random_windows:
        lines.append(_passes_warning(tc, size, config.context_length))
    lines += [f"⚠️ {html.escape(translate_message(p))}" for p in run_problems(ws, tc, config, size)]
    hint = tokenizer_hint(ws, spec.tokenizer)
    if hint:
        lines.append(f"💡 {html.escape(hint)}")
    return "\n\n".join(["  \n".join(lines), *_fit_reasons(ws, form)])  # (an HTML block ends at a blank line)


def set_by_hand(ws: Workspace, form: dict) -> bool:
    """Whether the user (or a shared link) set a fitted field: its value is neither the
    preset's own nor what the last fitting put there. Such values are theirs and stay."""
    if preset_name(form["preset"]) == "custom":
        return False
    _, defaults, _ = preset_fields(form["preset"])
    label, last = ws.ui.get("fit", (None, Fit()))
    last_values = last.values if label == form["preset"] else {}
    return any(not (_same(form.get(k), defaults[k]) or (k in last_values and _same(form.get(k), last_values[k])))
               for k in FITTED_FIELDS)


def fit(ws: Workspace, form: dict, start_label: str = START_FROM[0]):
    """Choosing a text, a tokenizer or a preset: the preset's fields that depend on the text
    (FITTED_FIELDS) fitted to it, then the estimate of the run as fitted. Values set by hand
    stay as they are (the estimate still says what would stop the run), and so do those typed
    while the fitting ran (note_typed): `form` is the page as it was when the fitting began,
    and timing the model here can take seconds."""
    result = Fit()
    if not set_by_hand(ws, form):
        try:
            start = start_id(start_label)
            spec = spec_of(ws, form)
            config, kind = run_model(ws, spec, start)

            def size_of(s):
                return text_size(ws, kind, run_model(ws, s, start)[0].context_length, s.train)

            costs = costs_for(ws, config, spec.train)
            result = fit_preset(form, lambda f: spec_of(ws, f), size_of, costs, SETTINGS.time_budget_s)
        except ValueError:
            pass  # the estimate says what is wrong with the form
        ws.ui["fit"] = (form.get("preset"), result)
    typed = {k: v for k, v in ws.ui.pop("typed", {}).items() if not (v == form.get(k) or _same(v, form.get(k)))}
    updates = [result.values[k] if k in result.values and k not in typed else gr.update() for k in FITTED_FIELDS]
    return (*updates, estimate(ws, {**form, **result.values, **typed}, start_label))


def note_typed(ws: Workspace, name: str, value: Any) -> None:
    """The user typed `value` into the Train form's field `name` (each keystroke): a fitting
    already under way leaves that field as typed and estimates with it (fit)."""
    ws.ui.setdefault("typed", {})[name] = value


def forget_typed(ws: Workspace) -> None:
    """A preset was chosen: the fields typed before hold the preset's values now."""
    ws.ui.pop("typed", None)


def measure(ws: Workspace, form: dict, start_label: str = START_FROM[0]) -> str:
    """The Measure button: time the parts of a run of this model here, whatever its size."""
    spec = spec_of(ws, form)
    config, _ = run_model(ws, spec, start_id(start_label))
    costs = ws.time_run(config, batch_size=spec.train.batch_size, train_config=spec.train)
    ws.run_costs[(config, spec.train.batch_size, spec.train.precision)] = (costs, time.monotonic())
    return estimate(ws, form, start_label)
