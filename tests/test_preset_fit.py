"""Presets fitted to the text (playground/preset_fit.py) and the plan of a run (playground/run_plan.py).

The costs of a run are given here as numbers (RunCosts is a plain record of seconds), so the
fitting is checked the same on any machine; what the plan counts is checked against what the
trainer does; the values the fitting and the refusals name are checked to build a run that starts.
"""
from __future__ import annotations

import dataclasses

import pytest

from gpt_core.corpus import SAMPLE_CORPORA, load_sample
from gpt_core.prepare import prepare_training
from gpt_core.speed import RunCosts
from gpt_core.train_events import EvalEvent, SampleEvent, StepEvent
from playground import data_tab, train_estimate, train_tab
from playground.preset_fit import FITTED_FIELDS
from playground.data_tab import TOKENIZER_LABELS
from playground.options import PRESET_LABELS, START_FROM, preset_fields
from playground.preset_fit import fit_preset
from playground.run_plan import count_evaluations, plan_run, text_size, window_problems
from playground.session import Workspace
from playground.train_estimate import spec_of

FAST = RunCosts(train_step=0.05, eval_batch=0.01, sample_token=0.001, frame_token=0.0005, build=0.2, save=0.1)
SLOW = RunCosts(train_step=0.5, eval_batch=0.15, sample_token=0.01, frame_token=0.005, build=0.3, save=0.3)


def form_of(preset: str) -> dict:
    model, train, tok = preset_fields(PRESET_LABELS[preset])
    return dict(tokenizer=TOKENIZER_LABELS[tok], preset=PRESET_LABELS[preset], **model, **train)


@pytest.fixture()
def ws():
    ws = Workspace()
    yield ws
    ws.close()


def fitted(ws, preset, costs, budget):
    form = form_of(preset)

    def size_of(spec):
        return text_size(ws, spec.tokenizer, spec.model.context_length, spec.train)

    fit = fit_preset(form, lambda f: spec_of(ws, f), size_of, costs, budget)
    spec = spec_of(ws, {**form, **fit.values})
    return fit, spec, size_of(spec)


def test_a_fast_machine_keeps_the_demo_s_epochs_and_evaluates_the_whole_validation_part(ws):
    fit, spec, size = fitted(ws, "demo", FAST, 60)
    assert spec.train.num_epochs == 10 and spec.train.batching == "epochs"
    assert spec.train.eval_iter == size.val_batches == 1  # The Verdict's validation part is one batch
    assert "all the validation part has" in fit.reasons["eval_iter"] and "num_epochs" not in fit.reasons


def test_a_slow_machine_trains_fewer_epochs_within_the_budget(ws):
    fit, spec, size = fitted(ws, "demo", SLOW, 30)
    plan = plan_run(spec.train, size)
    assert 1 <= spec.train.num_epochs < 10 and plan.seconds(SLOW) <= 30
    more = plan_run(spec.train.replace(num_epochs=spec.train.num_epochs + 1), size)
    assert more.seconds(SLOW) > 30  # as many as fit
    assert fit.reasons["num_epochs"].startswith(f"{spec.train.num_epochs} epoch")


@pytest.mark.parametrize("preset", ["demo", "char"])
def test_an_epoch_far_longer_than_the_budget_becomes_iterations_over_random_windows(ws, preset):
    ws.load_sample("Tiny Shakespeare")
    fit, spec, size = fitted(ws, preset, SLOW, 60)
    plan = plan_run(spec.train, size)
    assert spec.train.batching == "random_windows" and plan.seconds(SLOW) <= 60
    assert "instead of epochs" in fit.reasons["iterations"] and plan.evaluations <= 11
    assert spec.train.warmup_steps <= plan.steps // 5


@pytest.mark.parametrize("name", list(SAMPLE_CORPORA))
def test_babygpt_fits_its_iterations_with_about_ten_evaluations(ws, name):
    ws.load_sample(name)
    fit, spec, size = fitted(ws, "babygpt", SLOW, 60)
    plan = plan_run(spec.train, size)
    assert plan.seconds(SLOW) <= 60 and 2 <= plan.evaluations <= 11 and plan.frames == plan.evaluations
    assert spec.train.max_steps < 3000 and "time budget" in fit.reasons["iterations"]


def test_the_books_124M_keeps_the_books_epochs(ws):
    fit, spec, _ = fitted(ws, "book-124M", SLOW, 60)
    assert spec.train.num_epochs == 10 and "num_epochs" not in fit.reasons and "iterations" not in fit.reasons


def test_custom_keeps_the_users_fields(ws):
    form = dict(form_of("demo"), preset=PRESET_LABELS["custom"])
    assert fit_preset(form, lambda f: spec_of(ws, f), None, FAST, 60).values == {}


def test_the_char_preset_on_a_short_gbk_text_gets_a_warmup_within_its_run(ws):
    text = load_sample("论语 (The Analects)")[:3000]
    ws.load_bytes(text.encode("gbk"), name="Uploaded: lunyu-gbk.txt")
    fit, spec, size = fitted(ws, "char", FAST, 60)
    steps = plan_run(spec.train, size).steps
    assert spec.train.warmup_steps < steps and "warmup_steps" in fit.reasons
    trainer = prepare_training(ws.text, tokenizer=ws.tokenizer("char"), model_config=spec.model, config=spec.train)
    assert trainer.total_steps == steps  # the trainer takes it (the preset's 10 warmup steps were refused)


def test_the_plan_counts_what_the_trainer_does(ws):
    ws.load_sample("论语 (The Analects)")
    form = dict(form_of("babygpt"), iterations=8, eval_freq=3, eval_iter=2, batch_size=4, context_length=16,
                emb_dim=16, n_layers=1, n_heads=2)
    spec = spec_of(ws, form)
    plan = plan_run(spec.train, text_size(ws, "char", 16, spec.train))
    trainer = prepare_training(ws.text, tokenizer=ws.tokenizer("char"), model_config=spec.model, config=spec.train)
    events = list(trainer.run())
    assert plan.steps == sum(isinstance(e, StepEvent) for e in events) == 8
    assert plan.evaluations == sum(isinstance(e, EvalEvent) for e in events) == count_evaluations(8, 3, at_last=True) == 4  # 0, 3, 6 and the last
    # A sample at each evaluation: the timeline frame's greedy text, not generated twice.
    assert plan.frames == sum(isinstance(e, SampleEvent) for e in events) == plan.evaluations and plan.samples == 0


def test_a_text_too_short_names_the_values_that_would_work(ws):
    ws.set_text("A short text, repeated. " * 60, name="short")
    form = dict(form_of("char"), tokenizer="Characters")
    spec = spec_of(ws, form)
    size = text_size(ws, "char", 128, spec.train)
    problems = window_problems(size, context_length=128, batch_size=16, stride=None, random_windows=False)
    assert problems and "choose a batch size of at most" in problems[0]
    batch = int(problems[0].split("at most ")[1].split(",")[0].rstrip("."))
    ctx = int(problems[0].split("context length of at most ")[1].rstrip("."))
    fixed_batch = text_size(ws, "char", 128, spec.train.replace(batch_size=batch))
    assert not window_problems(fixed_batch, context_length=128, batch_size=batch, stride=None, random_windows=False)
    fixed_ctx = text_size(ws, "char", ctx, spec.train)
    assert not window_problems(fixed_ctx, context_length=ctx, batch_size=16, stride=None, random_windows=False)
    # Random windows draw with replacement: the same text needs one window in each part only.
    windows = text_size(ws, "char", 128, spec.train.replace(batching="random_windows", max_steps=5, train_ratio=0.8))
    assert not window_problems(windows, context_length=128, batch_size=16, stride=None, random_windows=True)


def test_random_windows_warn_of_no_missing_batch_and_train_fine(ws):
    ws.set_text("A short text, repeated. " * 30, name="short")  # 720 characters
    form = dict(form_of("bigram"), tokenizer="Characters", iterations=3, eval_freq=2, eval_iter=1)
    _, warned, _, _ = data_tab.view(ws, "Characters", 64, 128, 0)  # epochs: 9 windows, not a batch of 128
    assert "fewer than one batch of 128" in warned
    _, warnings, _, _ = data_tab.view(ws, "Characters", 64, 128, 0, 3)  # random windows: nothing wrong
    estimate = train_tab.estimate(ws, form)
    assert warnings == "" and "fewer than" not in estimate and "choose" not in estimate, (warnings, estimate)
    assert list(train_tab.train(ws, form, START_FROM[0]))[-1][0].startswith("Done: 3 steps")


VERY_SLOW = RunCosts(train_step=2.0, eval_batch=0.5, sample_token=0.02, frame_token=0.01, build=0.3, save=0.3)


def test_what_the_user_types_while_the_preset_is_being_fitted_stays_as_typed(ws, monkeypatch):
    """The fitting times the model here (seconds): the epochs typed meanwhile are not
    overwritten by what it worked out from the form as it was when it began."""
    monkeypatch.setattr(train_estimate, "SETTINGS", dataclasses.replace(train_estimate.SETTINGS, time_budget_s=60))
    form = form_of("demo")

    def measured_while_typing(ws_, config, tc):
        train_tab.note_typed(ws_, "num_epochs", 5)  # a keystroke, during the measurement
        return VERY_SLOW
    monkeypatch.setattr(train_estimate, "costs_for", measured_while_typing)
    *updates, text = train_tab.fit(ws, form)
    fitted = dict(zip(FITTED_FIELDS, updates))
    assert fitted["num_epochs"] == {"__type__": "update"}  # left as typed
    assert fitted["eval_iter"] == 1  # the rest is fitted
    assert "× 5 epochs" in text and "2 epochs" not in text  # the estimate is of what the page holds

    # The next fitting (another text, say) sees 5 in the form: set by hand, so it stays.
    monkeypatch.setattr(train_estimate, "costs_for", lambda *a: VERY_SLOW)
    *updates, text = train_tab.fit(ws, {**form, **fitted, "num_epochs": 5})
    assert all(u == {"__type__": "update"} for u in updates) and "× 5 epochs" in text


def test_choosing_a_preset_forgets_what_was_typed_before_so_its_fitting_applies(ws, monkeypatch):
    monkeypatch.setattr(train_estimate, "SETTINGS", dataclasses.replace(train_estimate.SETTINGS, time_budget_s=60))
    monkeypatch.setattr(train_estimate, "costs_for", lambda *a: VERY_SLOW)
    train_tab.note_typed(ws, "num_epochs", 5)  # typed, then the demo preset chosen again
    values = train_tab.choose_preset(ws, PRESET_LABELS["demo"])
    assert values == train_tab.apply_preset(PRESET_LABELS["demo"])
    *updates, text = train_tab.fit(ws, form_of("demo"))
    assert dict(zip(FITTED_FIELDS, updates))["num_epochs"] == 2 and "× 2 epochs" in text
