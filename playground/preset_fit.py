"""Presets fitted to the text: what in a preset depends on the text is derived from it.

A preset is written for some text (the demo for The Verdict, BabyGPT for a novel). Choosing a
text or a preset derives, from the preset's own values, what would otherwise break or mislead
on another text: the epochs or iterations that fit the server's time budget (measured with the
run's model), a warmup within the run, evaluation batches within the validation part, and for
random windows an evaluation (with its sample) every tenth of the run. Each choice comes with
the sentence that says what was chosen and why. The book's 124M keeps the book's epochs: its
point is the book's numbers, not a minute's run.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from gpt_core.config import BABYGPT_TRAIN_RATIO
from gpt_core.speed import RunCosts
from gpt_core.train import MIN_OVERFIT_EVAL_BATCHES

from .formatting import counted
from .i18n import tr
from .options import preset_fields, preset_name
from .run_plan import TextSize, count_evaluations, plan_run, window_problems

FITTED_FIELDS = ("num_epochs", "iterations", "warmup_steps", "eval_iter", "eval_freq")
UNTIMED_PRESETS = ("book-124M",)
EVALUATIONS_PER_RUN = 10  # random windows: points enough for a curve, each with a sample
EVAL_SHARE = 1 / 3  # at most this part of the budget goes to evaluating and sampling
WARMUP_SHARE = 1 / 5  # warmup takes at most the first fifth of a run


@dataclass(frozen=True)
class Fit:
    """Fitted form values (field -> value) and, for each value that differs from the
    preset's, why."""
    values: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)


def duration_words(seconds: float) -> str:
    """A duration as a person says it: "40 s", "1 minute", "2.5 hours" (in the page's language)."""
    if seconds < 59.5:
        return tr("{n} s", n=max(1, round(seconds)))
    unit, value = ("minute", seconds / 60) if seconds < 59.5 * 60 else ("hour", seconds / 3600)
    shown = f"{value:.0f}" if value >= 10 or round(value, 1) == round(value) else f"{value:.1f}"
    return tr("{n} " + unit + ("" if shown == "1" else "s"), n=shown)


def about(seconds: float) -> str:
    return tr("about {duration}", duration=duration_words(seconds))


def fit_preset(form: dict, spec_of: Callable[[dict], Any], size_of: Callable[[Any], TextSize],
               costs: RunCosts | None, budget_s: float) -> Fit:
    """The fitted values of the form's preset on the current text.

    `spec_of(form)` checks a form into a RunSpec, `size_of(spec)` measures the text for it
    (run_plan.text_size), `costs` are the run's measured costs (None: not measured, the time
    is then not fitted). Custom fits nothing: its fields are the user's.
    """
    name = preset_name(form["preset"])
    if name == "custom":
        return Fit()
    _, defaults, _ = preset_fields(form["preset"])
    values = {k: defaults[k] for k in FITTED_FIELDS}
    spec = spec_of({**form, **values})
    size = size_of(spec)
    reasons: dict[str, str] = {}
    tc, cfg = spec.train, spec.model
    if window_problems(size, context_length=cfg.context_length, batch_size=tc.batch_size, stride=tc.stride,
                       random_windows=tc.batching == "random_windows"):
        return Fit(values)  # nothing fits: the estimate says what to change
    if costs is not None and name not in UNTIMED_PRESETS:
        if tc.batching == "random_windows":
            values.update(_fit_iterations(spec, size, costs, budget_s, defaults, reasons,
                                          cap=defaults["iterations"]))
        else:
            values.update(_fit_epochs(spec, size, costs, budget_s, defaults, reasons))
    if values["iterations"] == 0 and size.val_batches < values["eval_iter"]:
        values["eval_iter"] = size.val_batches
        reasons["eval_iter"] = tr("{batches}: all the validation part has (the preset's {preset})",
                                  batches=counted(size.val_batches, "evaluation batch", "evaluation batches"),
                                  preset=f"{defaults['eval_iter']:,}")
    steps = plan_run(spec_of({**form, **values}).train, size).steps
    warmup = min(values["warmup_steps"], int(steps * WARMUP_SHARE))
    if warmup != values["warmup_steps"]:
        reasons["warmup_steps"] = tr("{warmup} (the preset's {preset}): warmup stays within the first fifth of the "
                                     "run's {steps} steps", warmup=counted(warmup, "warmup step"),
                                     preset=f"{values['warmup_steps']:,}", steps=f"{steps:,}")
        values["warmup_steps"] = warmup
    return Fit(values, reasons)


def _seconds(spec: Any, size: TextSize, costs: RunCosts, **changes: Any) -> float:
    return plan_run(spec.train.replace(**changes), size).seconds(costs)


def _fit_epochs(spec, size, costs, budget_s, defaults, reasons) -> dict[str, Any]:
    """The preset's epochs, or as many as the budget holds (at least one, if it takes at most
    twice the budget), or iterations over random windows instead."""
    epochs = defaults["num_epochs"]
    while epochs > 1 and _seconds(spec, size, costs, num_epochs=epochs) > budget_s:
        epochs -= 1
    if _seconds(spec, size, costs, num_epochs=epochs) <= budget_s:
        if epochs != defaults["num_epochs"]:
            per_epoch = _seconds(spec, size, costs, num_epochs=2) - _seconds(spec, size, costs, num_epochs=1)
            reasons["num_epochs"] = tr("{epochs} (the preset's {preset}) to stay within the time budget of {budget}: "
                                       "an epoch of this text takes {per_epoch} here", epochs=counted(epochs, "epoch"),
                                       preset=f"{defaults['num_epochs']:,}", budget=duration_words(budget_s),
                                       per_epoch=about(per_epoch))
        return {"num_epochs": epochs}
    one = _seconds(spec, size, costs, num_epochs=1)
    if one <= 2 * budget_s:  # a little over: one epoch is still the shortest run of the book's kind
        reasons["num_epochs"] = tr("{epochs} (the preset's {preset}): an epoch of this text takes {one} here, a "
                                   "little over the time budget of {budget}", epochs=counted(1, "epoch"),
                                   preset=f"{defaults['num_epochs']:,}", one=about(one), budget=duration_words(budget_s))
        return {"num_epochs": 1}
    # As the form makes a run of random windows (options.build_spec): the notebook's 80/20 split.
    windows = spec.train.replace(batching="random_windows", max_steps=1, train_ratio=BABYGPT_TRAIN_RATIO)
    values = _fit_iterations(dataclasses.replace(spec, train=windows),
                             size.as_random_windows(BABYGPT_TRAIN_RATIO), costs, budget_s, defaults, reasons,
                             cap=None)
    reasons["iterations"] = tr("{iterations} over random windows instead of epochs: one epoch of this text is {steps} "
                               "steps, {one} here, longer than the time budget of {budget}",
                               iterations=counted(values["iterations"], "iteration"), steps=f"{size.train_batches:,}",
                               one=about(one), budget=duration_words(budget_s))
    return values


def _fit_iterations(spec, size, costs, budget_s, defaults, reasons, *, cap: int | None) -> dict[str, Any]:
    """Iterations over random windows within the budget (and at most `cap`), with up to
    EVALUATIONS_PER_RUN evaluations (each with a sample) reading about the validation part
    once; evaluating and sampling take at most EVAL_SHARE of the budget (fewer batches first,
    then fewer evaluations, never fewer than two: the first point and the last)."""
    tc, ctx = spec.train, spec.model.context_length
    cover = max(MIN_OVERFIT_EVAL_BATCHES, math.ceil(size.val_tokens / (tc.batch_size * ctx)))
    batches = min(defaults["eval_iter"], cover)
    # Each evaluation's sample: its timeline frame's, through the KV cache, or the book's way.
    per_sample = tc.sample_tokens * (costs.frame_token if tc.timeline else costs.sample_token)
    share = EVAL_SHARE * budget_s

    def eval_s(n_evals: int, n_batches: int) -> float:
        return n_evals * (2 * n_batches * costs.eval_batch + per_sample)

    evals = EVALUATIONS_PER_RUN
    fewer = []
    if eval_s(evals, batches) > share:
        batches = max(min(batches, MIN_OVERFIT_EVAL_BATCHES),
                      int((share / evals - per_sample) / (2 * costs.eval_batch)))
        fewer.append("batches")
    while evals > 2 and eval_s(evals, batches) > share:
        evals -= 1
        fewer.append("evaluations")
    while batches > 1 and eval_s(evals, batches) > share:
        batches -= 1
    iterations = max(1, int((budget_s - costs.build - costs.save - eval_s(evals, batches)) / costs.train_step))
    if cap:
        iterations = min(cap, iterations)
    freq = max(1, math.ceil(iterations / max(1, evals - 1)))  # (the last iteration evaluates too)
    while iterations > 1 and _seconds(spec, size, costs, max_steps=iterations, eval_freq=freq, eval_iter=batches) > budget_s:
        iterations = max(1, int(iterations * 0.9))
        freq = max(1, math.ceil(iterations / max(1, evals - 1)))
    if batches != defaults["eval_iter"]:
        why = (tr("to keep evaluating within a third of the time budget") if fewer else
               tr("about the {tokens} tokens of the validation part once", tokens=f"{size.val_tokens:,}"))
        reasons["eval_iter"] = tr("{batches} an evaluation (the preset's {preset}): {why}", why=why,
                                  batches=counted(batches, "random batch", "random batches"),
                                  preset=f"{defaults['eval_iter']:,}")
    if cap and iterations != cap:
        reasons["iterations"] = tr("{iterations} (the preset's {preset}) to stay within the time budget of {budget}: "
                                   "a step of {windows} windows takes {ms} ms here",
                                   iterations=counted(iterations, "iteration"), preset=f"{cap:,}",
                                   budget=duration_words(budget_s), windows=f"{tc.batch_size:,}",
                                   ms=f"{costs.train_step * 1000:,.0f}")
    if freq != defaults["eval_freq"]:
        n = min(iterations, _evaluations(iterations, freq))
        sample = tr("{n} s", n=f"{per_sample:,.1f}") if per_sample >= 1 else tr("a moment")
        reasons["eval_freq"] = (tr("an evaluation every {every} (the preset's {preset}): {n} in the run, each with a "
                                   "sample ({sample} each)", every=counted(freq, "iteration"),
                                   preset=f"{defaults['eval_freq']:,}", n=n, sample=sample)
                                + (tr(", fewer to keep within a third of the time budget") if "evaluations" in fewer else ""))
    return {"iterations": iterations, "eval_freq": freq, "eval_iter": batches}


def _evaluations(iterations: int, freq: int) -> int:
    return count_evaluations(iterations, freq, at_last=True)
