"""Train tab: presets, the run itself drawn live, Stop and Resume, checkpoints.

`train` and `resume` are generators: each yields the whole right-hand side of the tab (train_view.View:
status, progress bar, loss chart, metrics, sample log, download link, button states) a few times
a second while the trainer's events arrive, so the chart draws itself as the model learns. What
the tab shows before a run (the preset fitted to the text, the estimate) is train_estimate.py.
"""
from __future__ import annotations

import time

import gradio as gr

from gpt_core.train_events import (CheckpointEvent, DoneEvent, EpochEvent, ErrorEvent, EvalEvent,
                                   SampleEvent, StepEvent, StoppedEvent)

from . import compare, models
from .common import TRAIN_QUEUE
from .data_tab import TOKENIZER_LABELS
from .files import LINKS
from .formatting import format_count
from .i18n import tr, translate_message
from .options import PRESET_FILLS, PRESET_LABELS, precision_kind, precision_sentence, preset_fields, preset_name
from .prompts import readable_run_start
from .run_plan import AUTOSAVE_MAX_PARAMETERS
from .session import Workspace, WorkspaceError
from .share import start_id
from .train_estimate import check_startable, estimate, fit, forget_typed, gpt2_base, measure, note_typed, spec_of
from .train_queue import Turn
from .train_view import METRICS_KEY, View, duration, figure, metrics, progress_html, record_run, where_the_run_is

__all__ = ["PRESET_FILLS", "apply_preset", "choose_preset", "estimate", "fit", "mark_custom", "measure", "note_typed", "progress_html", "train",
           "resume", "request_stop", "after_stop", "stop", "prepare_download", "upload_checkpoint", "model_dropdowns",
           "model_unchanged", "loss_chart"]

UPDATE_INTERVAL_S = 0.3  # chart redraws while training: often enough to look live...
VIEW_SHARE = 0.2  # ...and at most about this share of the time, so the estimate stays true
STOP_POLL_S = 3.0  # while a run stops, the page hears from it this often
NOTHING_TRAINING = "Nothing is training in this session."
LEFT_QUEUE = "You left the queue; nothing was trained."
_spec = spec_of  # the form -> RunSpec, as the tests call it


def apply_preset(label: str):
    """Fill the model and training fields (PRESET_FILLS) and the tokenizer radios from a preset."""
    if preset_name(label) == "custom":
        return [gr.update() for _ in range(len(PRESET_FILLS) + 2)]
    model, train, tok = preset_fields(label)
    values = {**model, **train}
    return [*(values[k] for k in PRESET_FILLS), TOKENIZER_LABELS[tok], TOKENIZER_LABELS[tok]]


def choose_preset(ws: Workspace, label: str):
    """The preset radio: its fields filled (apply_preset); what was typed into them before is
    the preset's now, so a fitting that follows may change it (train_estimate.fit)."""
    forget_typed(ws)
    return apply_preset(label)


def mark_custom(label: str):
    """Editing a model field turns the preset into "Custom"."""
    return PRESET_LABELS["custom"] if preset_name(label) != "custom" else gr.update()


def _take_turn(ws: Workspace, turn: Turn, view: View):
    """Wait in the server's training queue, yielding the view each time the place changes.
    Afterwards `turn.admitted` says whether the run may start (else Stop took it out)."""
    ws.ui["view"], ws.ui["turn"] = view, turn
    for place in TRAIN_QUEUE.wait(turn):
        yield view.waiting(place)
    if not turn.admitted:
        yield view.left_queue(tr(LEFT_QUEUE))


def _progress(trainer, ev: StepEvent) -> dict:
    where = (f"iteration {ev.step + 1:,}/{ev.total_steps:,}" if trainer.config.batching == "random_windows"
             else f"epoch {ev.epoch}/{trainer.schedule.num_epochs} · step {ev.step + 1:,}/{ev.total_steps:,}")
    return {"fraction": (ev.step + 1) / max(1, ev.total_steps), "state": "running",
            "text": f"{where} · {ev.tokens_seen:,} tokens · ETA {duration(ev.eta_seconds)}"}


def _drive(ws: Workspace, turn: Turn, view: View, headline: str):
    """Run the session's trainer, yielding the view a few times a second and at every
    evaluation and sample. Stops between steps when the job's stop flag is set, or when its
    share of time is over while others wait (`turn.paused`)."""
    ws.ui["view"] = view
    own = ws.own
    trainer = own.trainer
    random_windows = trainer.config.batching == "random_windows"
    last_yield = render_s = 0.0
    outcome, error, stopped = "done", None, ""
    started = time.monotonic()
    view.status = (f"{headline} on *{own.corpus_name}*: {trainer.total_steps:,} steps. "
                   f"{precision_sentence(trainer.precision)}")
    yield view.outputs(running=True)
    for ev in trainer.run(stop=turn):
        force = False
        if isinstance(ev, StepEvent):
            ws.history.add_step(ev.tokens_seen, ev.loss)
            force = view.last_step is None  # the first point as soon as it exists
            view.last_step = ev
            view.progress = _progress(trainer, ev)
        elif isinstance(ev, EvalEvent):
            ws.history.add_eval(ev.step, ev.tokens_seen, ev.train_loss, ev.val_loss)
            ws.history.overfitting = ev.overfitting
            view.last_eval = ev
            force = True
        elif isinstance(ev, SampleEvent):
            where = f"step {ev.step + 1:,}" if random_windows else f"epoch {ev.epoch}, step {ev.step + 1:,}"
            ws.history.add_sample(where, ev.text)
            force = True
        elif isinstance(ev, (EpochEvent, CheckpointEvent)):
            pass
        elif isinstance(ev, DoneEvent):
            outcome = "done"
        elif isinstance(ev, StoppedEvent) and turn.paused:
            outcome = "stopped"
            stopped = tr("Paused after step {step} to give the next student a turn after {share}; press "
                         "**Resume** to queue again.", step=f"{ev.step + 1:,}", share=_share(TRAIN_QUEUE.share_s))
        elif isinstance(ev, StoppedEvent):
            outcome = "stopped"
            stopped = tr("Stopped after step {step}: {reason}. Press **Resume** to continue.", step=f"{ev.step + 1:,}",
                         reason=translate_message(ev.reason))
        elif isinstance(ev, ErrorEvent):
            outcome, error = "error", ev.message
        now = time.monotonic()
        if force or now - last_yield >= max(UPDATE_INTERVAL_S, render_s / VIEW_SHARE):
            outputs = view.outputs(running=True)
            last_yield, render_s = time.monotonic(), time.monotonic() - now
            yield outputs
    elapsed = time.monotonic() - started
    if outcome == "done":
        # The precision stays said once the run is over: the radio above may have moved since.
        status = tr("Done: {steps} steps, {tokens} tokens in {time}, in {kind}. Try your model in **Generate**.",
                    steps=f"{trainer.state.step + 1:,}", tokens=f"{trainer.state.tokens_seen:,}", time=duration(elapsed),
                    kind=precision_kind(trainer.precision))
    else:
        status = stopped if outcome == "stopped" else tr("Training failed: {error}", error=translate_message(error))
    record_run(ws, own, trainer)
    download = ws.save_checkpoint() if _small_enough_to_autosave(own) else None
    ws.ui["view"] = view
    yield view.ended(trainer, outcome, status, download)
    if error:
        raise WorkspaceError(f"Training stopped with an error: {error}")


def _share(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} s"


def _small_enough_to_autosave(own) -> bool:
    return own.config.num_parameters() <= AUTOSAVE_MAX_PARAMETERS


def train(ws: Workspace, form: dict, start_label: str):
    """Start a new run from the Train form and "Start from"."""
    spec = spec_of(ws, form)
    start = start_id(start_label)
    base = None
    if start == "scratch":
        label, headline = f"{spec.preset} model", f"Training a new **{spec.preset} model**"
    elif start == "gpt2":
        name, base = gpt2_base() or (None, None)
        if base is None:
            raise WorkspaceError("No GPT-2 is loaded yet: load one in the GPT-2 tab, then train.")
        label, headline = f"{name}, trained further", f"Training a copy of **{name}**"
    else:
        own = ws.own
        label = own.label if own is not None else "your model"
        headline = f"Training **{label}** further"
    check_startable(ws, spec, start)
    spec, start_note = readable_run_start(ws, spec, start)
    job = ws.begin_job("train")
    turn = TRAIN_QUEUE.join(job, owner=ws, plan=spec)
    try:
        view = View(ws)
        view.note = start_note or ""
        yield from _take_turn(ws, turn, view)
        if not turn.admitted:
            return
        yield view.preparing("Preparing the data and building the model...")
        try:
            ws.new_run(spec.model, spec.train, tokenizer_kind=spec.tokenizer, start_from=start, base=base,
                       label=label)
        except Exception as exc:  # give the buttons back before the message pops up
            view.status = f"Could not start: {exc}"
            view.progress = {"fraction": 0.0, "text": "not started", "state": "error"}
            yield view.outputs(running=False)
            raise
        compare.record(ws, spec, form, start)
        yield from _drive(ws, turn, view, headline)
    finally:
        TRAIN_QUEUE.leave(turn)
        ws.end_job(job)


def resume(ws: Workspace):
    """Continue the stopped run exactly where it stopped."""
    own = ws.own
    if own is None or own.trainer is None:
        raise WorkspaceError("There is no run to resume: press Train to start one.")
    if own.trainer.finished:
        raise WorkspaceError("This run has finished all its epochs. Press Train for a new run, or choose "
                             "Start from: your model to train it further.")
    job = ws.begin_job("resume")
    turn = TRAIN_QUEUE.join(job, owner=ws, plan=own)
    try:
        view = View(ws)
        yield from _take_turn(ws, turn, view)
        if turn.admitted:
            headline = f"Resuming **{own.label}** at step {own.trainer.state.step + 2:,}"
            yield from _drive(ws, turn, view, headline)
    finally:
        TRAIN_QUEUE.leave(turn)
        ws.end_job(job)


def request_stop(ws: Workspace) -> str:
    """The Stop button, at once: leave the training queue, or raise the stop flag (the trainer
    stops after its step)."""
    job = ws.job
    if job is not None and TRAIN_QUEUE.withdraw(job):
        job.request_stop()  # the waiting handler ends
        return tr(LEFT_QUEUE)
    if ws.request_stop():
        return tr("Stopping after the current step...")
    return tr(NOTHING_TRAINING)


def after_stop(ws: Workspace):
    """Once the run has stopped: the whole view as it ended, with a checkpoint to download.
    Until then (a step of a large model on a CPU takes many seconds) it says it is stopping,
    every few seconds, so the page never keeps a run's last state as if it still ran."""
    view = ws.ui.get("view") or View(ws)
    while not ws.wait_idle(STOP_POLL_S):
        view.status = tr("Stopping: the current step is still running; the run ends right after it.")
        view.progress = dict(view.progress, text=tr("stopping after the current step"))
        yield view.outputs(running=True)
    own = ws.own
    turn = ws.ui.get("turn")
    if turn is not None and turn.left and turn.admitted is None:  # Stop took it out of the queue
        del ws.ui["turn"]
        yield view.left_queue(tr(LEFT_QUEUE))
        return
    if own is None or own.trainer is None:
        view.status = tr(NOTHING_TRAINING)
        yield view.outputs(running=False)
        return
    st = own.trainer.state
    record_run(ws, own, own.trainer)
    download = own.checkpoint_path or (ws.save_checkpoint() if _small_enough_to_autosave(own) else None)
    if own.trainer.finished:
        yield view.ended(own.trainer, "done", tr("Done: {steps} steps. Try your model in **Generate**.",
                                                 steps=f"{st.step + 1:,}"), download)
    else:
        yield view.ended(own.trainer, "stopped", tr("Stopped after step {step} of {total}. Press **Resume** to continue.",
                                                    step=f"{st.step + 1:,}", total=f"{own.trainer.total_steps:,}"),
                         download)


def stop(ws: Workspace) -> str:
    """Stop this session's run (the API route): raise the flag, wait for the run to end, and
    say where it stopped."""
    said = request_stop(ws)
    if said == tr(NOTHING_TRAINING):
        return said
    *_, last = after_stop(ws)
    return last[0]


def prepare_download(ws: Workspace):
    path = ws.save_checkpoint()
    return LINKS.url(ws, path), f"Saved `{path.rsplit('/', 1)[-1]}`: press Download."


def upload_checkpoint(ws: Workspace, path):
    """An uploaded checkpoint becomes the session's model: (checkpoint note, then the whole
    right-hand side of the tab, showing the loaded model and where its run stands)."""
    if not path:
        raise ValueError("No file arrived. Choose a .pt or .pth checkpoint to upload.")
    ws.require_idle("load a checkpoint")
    own, note = ws.load_checkpoint(str(path))
    cfg = own.config
    shape = f"{cfg.n_layers} layers × {cfg.emb_dim}" if hasattr(cfg, "n_layers") else cfg.describe()
    status = (f"Loaded **{own.label}**: {shape}, context "
              f"{cfg.context_length}, vocabulary {cfg.vocab_size:,} ({format_count(cfg.num_parameters())} "
              f"parameters). {note}")
    view = View(ws)
    ws.ui["view"] = view
    return (status, *view.loaded(status))


def model_unchanged(ws: Workspace) -> str:
    """After a refused checkpoint: what the session's model still is."""
    own = ws.own
    return (tr("Your model is unchanged ({label}).", label=own.label) if own is not None
            else tr("You still have no model of your own."))


def loss_chart(ws: Workspace):
    """The loss chart as it stands, with the replay's marker (redrawn when the replay moves)."""
    return figure(ws)


def redraw(ws: Workspace):
    """(progress, chart, metrics, Train button) in the session's language, on load and on a
    language switch; a run going on keeps its own progress and button (its next view redraws them)."""
    shown = ws.ui.get(METRICS_KEY)
    said = metrics(ws, *shown) if shown else gr.update()
    if ws.busy:
        return gr.update(), figure(ws), said, gr.update()
    trainer = ws.own.trainer if ws.own is not None else None
    progress = (progress_html(None) if ws.own is None else gr.update() if trainer is None else
                progress_html(where_the_run_is(trainer, "done" if trainer.finished else "stopped")))
    return progress, figure(ws), said, gr.update(value=tr("Train"))


def model_dropdowns(ws: Workspace, gen_choice, a_choice, b_choice):
    """Refresh the model lists of Generate and Evaluate, keeping choices that still exist."""
    choices = models.model_choices(ws)

    def keep(value, fallback):
        return value if value in choices else fallback

    own_first = choices[0] if choices else None
    gpt2_first = next((c for c in choices if c != models.OWN), None)
    b_default = gpt2_first if own_first == models.OWN else None
    return (gr.update(choices=choices, value=keep(gen_choice, own_first)),
            gr.update(choices=choices, value=keep(a_choice, own_first)),
            gr.update(choices=[(tr(models.NO_MODEL), models.NO_MODEL), *((c, c) for c in choices)],
                      value=keep(b_choice, b_default) or models.NO_MODEL))
