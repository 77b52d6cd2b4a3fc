"""Train tab: presets, the estimate before a run, and the run itself drawn live.

`train` and `resume` are generators: each yields the whole right-hand side of the tab (status,
progress bar, loss chart, metrics, sample log, download button, button states) a few times a
second while the trainer's events arrive, so the chart draws itself as the model learns.
"""
from __future__ import annotations

import html
import math
import time

import gradio as gr

from gpt_core.plots import loss_figure
from gpt_core.precision import precision_for
from gpt_core.prepare import select_device
from gpt_core.train_events import (CheckpointEvent, DoneEvent, EpochEvent, ErrorEvent, EvalEvent,
                                   SampleEvent, StepEvent, StoppedEvent, format_utilisation)

from . import compare, models, replay
from .common import SETTINGS, SHARED, TRAIN_QUEUE
from .data_tab import TOKENIZER_LABELS, tokenizer_hint, tokenizer_kind
from .files import LINKS
from .formatting import format_bytes, format_count
from .i18n import tr, translate_message
from .memory import MemoryBudgetError
from .options import (MODEL_FIELDS, PRESET_LABELS, TRAIN_FIELDS, build_spec, precision_sentence,
                      preset_fields, preset_name)
from .prompts import readable_run_start
from .session import BoundedDict, Workspace, WorkspaceError
from .share import start_id
from .train_queue import Place, Turn

UPDATE_INTERVAL_S = 0.3  # chart redraws while training: often enough to look live
AUTO_MEASURE_MAX_PARAMS = 20_000_000  # models this small are timed without asking (< 1 s)
# Step times measured on this server, shared by all sessions: every page load estimates the
# default preset, and thirty students opening the page at once would otherwise time thirty
# throwaway training steps (~6 s each on a busy 2-core server) while others train.
MEASURED_STEP_SECONDS: BoundedDict = BoundedDict(64)
STOP_WAIT_S = 15.0
NOTHING_TRAINING = "Nothing is training in this session."
LEFT_QUEUE = "You left the queue; nothing was trained."


# --- presets and the estimate -----------------------------------------------------------
# What a preset fills in, in the order of apply_preset's outputs (then the two tokenizer radios).
PRESET_FILLS = (*MODEL_FIELDS, *TRAIN_FIELDS)


def apply_preset(label: str):
    """Fill the model and training fields (PRESET_FILLS) and the tokenizer radios from a preset."""
    if preset_name(label) == "custom":
        return [gr.update() for _ in range(len(PRESET_FILLS) + 2)]
    model, train, tok = preset_fields(label)
    values = {**model, **train}
    return [*(values[k] for k in PRESET_FILLS), TOKENIZER_LABELS[tok], TOKENIZER_LABELS[tok]]


def mark_custom(label: str):
    """Editing a model field turns the preset into "Custom"."""
    return PRESET_LABELS["custom"] if preset_name(label) != "custom" else gr.update()


def _spec(ws: Workspace, form: dict):
    """The Train form (options.FORM_FIELDS by name) -> a checked RunSpec."""
    kind = tokenizer_kind(form["tokenizer"])
    return build_spec(tokenizer=kind, vocab_size=ws.tokenizer(kind).n_vocab, preset_label=form["preset"],
                      **{k: form[k] for k in PRESET_FILLS})


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# Random windows seeing the training text this many times over are bound to memorise it:
# the notebook's 3,000 x 128 x 64 characters were meant for a novel; on the bundled 论语
# they are ~1,400 passes and BabyGPT's validation loss climbs from 5.4 to 10 (scripts/babygpt_vs_bigram.py).
MANY_PASSES = 50


def _passes_warning(tc, tokens: int, context_length: int) -> list[str]:
    train_tokens = max(1, int(tokens * tc.train_ratio))
    passes = tc.max_steps * tc.batch_size * context_length / train_tokens
    if passes < MANY_PASSES:
        return [f"The iterations read the training part about {passes:,.1f} times over"]
    return [f"⚠️ The iterations read the training part about **{passes:,.0f} times over**: expect the model "
            "to memorise this text (the validation loss turns up early). Fewer iterations, dropout or a "
            "longer text keep it learning."]


def estimate(ws: Workspace, form: dict) -> str:
    """Parameters, memory, batches and (measured) time per epoch, before anything is trained."""
    try:
        spec = _spec(ws, form)
    except ValueError as e:
        return f"⚠️ {html.escape(str(e))}"
    cfg, tc = spec.model, spec.train
    stats = ws.stats(spec.tokenizer, context_length=cfg.context_length,
                     stride=tc.stride or cfg.context_length, batch_size=tc.batch_size)
    params = cfg.num_parameters()
    lines = [
        f"**{format_count(params)} parameters** ({params:,}) · weights {format_bytes(cfg.memory_bytes())} · "
        f"training needs about {format_bytes(cfg.training_memory_bytes(tc.batch_size, cfg.context_length))}",
        f"{stats.train_batches:,} batches per epoch × {tc.num_epochs} epochs = "
        f"{stats.train_batches * tc.num_epochs:,} steps",
    ]
    random_windows = tc.batching == "random_windows"
    if random_windows:  # the BabyGPT notebook: one pass of iterations, no epochs
        lines[1] = (f"{tc.max_steps:,} iterations, each over {tc.batch_size} windows at random starts "
                    f"(80/20 split of the tokens); loss estimated every {tc.eval_freq:,} over "
                    f"{tc.eval_iter:,} random batches of each split")
    lines.append(precision_sentence(precision_for(tc.precision, select_device(tc.device))))
    key = (cfg, tc.batch_size, tc.precision)  # timed in the run's precision
    seconds = ws.step_seconds.get(key) or MEASURED_STEP_SECONDS.get(key)
    if seconds is None and params <= AUTO_MEASURE_MAX_PARAMS and params <= ws.limits.max_train_parameters:
        try:
            seconds = ws.step_seconds[key] = MEASURED_STEP_SECONDS[key] = ws.time_step(
                cfg, batch_size=tc.batch_size, steps=1, precision=tc.precision)
        except (MemoryBudgetError, WorkspaceError):
            seconds = None  # no room to time it now: the line below offers the button
    if seconds is not None and random_windows:
        lines.append(f"Measured here: {seconds * 1000:,.0f} ms a step → about "
                     f"**{_duration(seconds * tc.max_steps)}** for the iterations (plus evaluation)")
    elif seconds is not None:
        per_epoch = seconds * stats.train_batches
        lines.append(f"Measured here: {seconds * 1000:,.0f} ms a step → about **{_duration(per_epoch)} per "
                     f"epoch**, {_duration(per_epoch * tc.num_epochs)} in all (plus evaluation)")
    else:
        lines.append("Time per epoch: press *Measure speed* (times one training step here).")
    if random_windows:
        lines += _passes_warning(tc, stats.tokens, cfg.context_length)
    too_long = _too_many_steps(tc, stats.train_batches)
    if too_long:
        lines.append(f"⚠️ {too_long}")
    if params > ws.limits.max_train_parameters:
        lines.append(f"⚠️ Larger than this server trains ({format_count(ws.limits.max_train_parameters)} parameters).")
    lines += [f"⚠️ {html.escape(w)}" for w in stats.warnings]
    hint = tokenizer_hint(ws, spec.tokenizer)
    if hint:
        lines.append(f"💡 {html.escape(hint)}")
    return "  \n".join(lines)


def _too_many_steps(tc, batches_per_epoch: int) -> str | None:
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


def _check_steps(ws: Workspace, spec, start: str, base) -> None:
    """Refuse, before anything is built, a run longer than this server allows."""
    kind, ctx = spec.tokenizer, spec.model.context_length
    if start == "gpt2":
        kind, ctx = "gpt2", min(ctx, base[1].context_length)
    elif start == "own" and ws.own is not None:
        kind = ws.own.tokenizer.to_dict().get("type", kind)
        ctx = ws.own.config.context_length
    batches = 0 if spec.train.batching == "random_windows" else ws.stats(
        kind, context_length=ctx, stride=spec.train.stride or ctx, batch_size=spec.train.batch_size).train_batches
    refusal = _too_many_steps(spec.train, batches)
    if refusal:
        raise WorkspaceError(refusal)


def measure(ws: Workspace, form: dict) -> str:
    spec = _spec(ws, form)
    ws.step_seconds[(spec.model, spec.train.batch_size, spec.train.precision)] = ws.time_step(
        spec.model, batch_size=spec.train.batch_size, precision=spec.train.precision)
    return estimate(ws, form)


# --- the live view -------------------------------------------------------------------------
def progress_html(p: dict | None) -> str:
    """A progress bar with ETA (our own: Gradio's overlay would hide the chart)."""
    if not p:
        return ("<div class='run-progress' style='color:#6b7280;padding:8px 0'>No run yet. The demo "
                "preset trains in seconds.</div>")
    frac = max(0.0, min(1.0, p.get("fraction", 0.0)))
    color = {"waiting": "#9ca3af", "running": "#2563eb", "done": "#16a34a", "stopped": "#d97706", "error": "#dc2626"}[p.get("state", "running")]
    text = html.escape(p.get("text", ""))
    return (
        "<div class='run-progress' style='padding:4px 0'>"
        f"<div style='display:flex;justify-content:space-between;font-size:13px;margin-bottom:4px'>"
        f"<span>{text}</span><span><b>{frac:.0%}</b></span></div>"
        "<div style='background:#e5e7eb;border-radius:6px;height:12px;overflow:hidden'>"
        f"<div class='run-progress-fill' data-fraction='{frac:.4f}' style='width:{frac * 100:.1f}%;"
        f"background:{color};height:100%;transition:width .3s'></div></div></div>"
    )


def _figure(ws: Workspace):
    h = ws.history
    return replay.marked(loss_figure(h.tokens_seen, h.train_losses, h.val_losses, num_epochs=h.num_epochs,
                                     tokens_per_epoch=h.tokens_per_epoch, step_tokens=h.step_tokens,
                                     step_losses=h.step_losses, hint=h.overfitting_hint()), ws)


def loss_chart(ws: Workspace):
    """The loss chart as it stands, with the replay's marker (redrawn when the replay moves)."""
    return _figure(ws)


def _ppl(x: float) -> str:
    return f"{x:,.1f}" if x < 1e5 else f"{x:.1e}"


def _metrics(ws: Workspace, last_step: StepEvent | None, last_eval: EvalEvent | None) -> str:
    parts = []
    if last_step is not None:
        parts.append(f"batch loss **{last_step.loss:.3f}**")
        parts.append(f"{last_step.tokens_per_sec:,.0f} tokens/s")
        if format_utilisation(last_step):  # achieved FLOP/s against this server's measured peak
            parts.append(translate_message(format_utilisation(last_step)))
        parts.append(f"lr {last_step.lr:.2e}")
    if last_eval is not None:
        parts.append(f"train loss **{last_eval.train_loss:.3f}** (perplexity {_ppl(last_eval.train_ppl)})")
        val = (f"val loss **{last_eval.val_loss:.3f}** (perplexity {_ppl(last_eval.val_ppl)})"
               if math.isfinite(last_eval.val_loss) else "val loss n/a (validation text too short)")
        parts.append(val)
    hint = ws.history.overfitting_hint()
    text = " · ".join(parts) + _runs_compared(ws)
    if hint:
        text += f"\n\n⚠️ **{hint}** Stop here, or add data, dropout or weight decay."
    return text


def _record_run(ws: Workspace, own, trainer) -> None:
    """Keep each run's last losses, so runs on the same text read side by side (the bigram
    baseline beside BabyGPT: how much attention buys over a lookup table)."""
    st = trainer.state
    if not st.val_losses:
        return
    runs = ws.ui.setdefault("finished_runs", {})
    runs[id(trainer)] = (own.label, own.corpus_name, st.step + 1, st.val_losses[-1], st.best_val_loss, st.best_step + 1)
    for key in list(runs)[:-6]:  # a few recent runs are enough to compare
        del runs[key]


def _runs_compared(ws: Workspace) -> str:
    runs = [r for r in ws.ui.get("finished_runs", {}).values() if r[1] == ws.corpus_name]
    if len(runs) < 2:
        return ""
    # The best beside the last: on a small text both models overfit, and the best loss is
    # what each could learn before memorising it.
    return "\n\nRuns on this text, last validation loss (best): " + " · ".join(
        f"{html.escape(label)} **{val:.3f}** ({best:.3f} at step {best_step:,} of {steps:,})"
        for label, _, steps, val, best, best_step in runs)


class _View:
    """What the right-hand side of the tab shows; rendered into Gradio outputs."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.status = "Starting..."
        self.progress: dict = {"fraction": 0.0, "text": "preparing data and model", "state": "running"}
        self.last_step: StepEvent | None = None
        self.last_eval: EvalEvent | None = None
        self.note = ""  # what was changed for the run (a start context the model cannot read)

    def preparing(self, what: str):
        """Before the trainer exists: an empty chart, buttons disabled, what is happening."""
        self.status = what
        return (self.status, progress_html(self.progress), loss_figure(), "", "",
                gr.update(interactive=False), gr.update(interactive=False), gr.update(interactive=False))

    def waiting(self, place: Place):
        """In the training queue: the place, falling live, and the Train button saying so."""
        slots = TRAIN_QUEUE.slots
        if place.reason:
            self.status = f"Waiting for memory: {place.reason}"
        else:
            trainings = "training" if place.ahead == 1 else "trainings"
            self.status = (f"Waiting: **{place.ahead}** {trainings} ahead of you (the server trains "
                           f"{slots} at a time). Press **Stop** to leave the queue.")
        self.progress = {"fraction": 0.0, "state": "waiting",
                         "text": f"waiting for a training slot: {place.ahead} ahead of you"}
        return (self.status, progress_html(self.progress), _figure(self.ws), "", self.ws.history.sample_log(),
                gr.update(interactive=False), gr.update(value=f"Waiting… ({place.ahead} ahead)", interactive=False),
                gr.update(interactive=False))

    def left_queue(self):
        self.status = LEFT_QUEUE
        self.progress = {"fraction": 0.0, "state": "stopped", "text": "left the queue"}
        return self.outputs(running=False)

    def outputs(self, *, running: bool, download: str | None = None):
        own = self.ws.own
        resumable = bool(own is not None and own.resumable)
        download_update = (gr.update(value=LINKS.url(self.ws, download)) if download
                           else gr.update(value="") if running else gr.update())
        status = self.status + (f"  \n{self.note}" if self.note else "")
        return (status, progress_html(self.progress), _figure(self.ws),
                _metrics(self.ws, self.last_step, self.last_eval), self.ws.history.sample_log(),
                download_update, gr.update(value="Train", interactive=not running),
                gr.update(interactive=(not running) and resumable))


def _take_turn(ws: Workspace, turn: Turn, view: _View):
    """Wait in the server's training queue, yielding the view each time the place changes.
    Afterwards `turn.admitted` says whether the run may start (else Stop took it out)."""
    ws.ui["view"], ws.ui["turn"] = view, turn
    for place in TRAIN_QUEUE.wait(turn):
        yield view.waiting(place)
    if not turn.admitted:
        yield view.left_queue()


def _drive(ws: Workspace, turn: Turn, view: _View):
    """Run the session's trainer, yielding the view a few times a second and at every
    evaluation and sample. Stops between steps when the job's stop flag is set, or when its
    share of time is over while others wait (`turn.paused`)."""
    ws.ui["view"] = view
    own = ws.own
    trainer = own.trainer
    total = trainer.total_steps
    last_yield = 0.0
    outcome, error = "done", None
    started = time.monotonic()
    view.status = (f"Training **{own.label}** on *{own.corpus_name}*: {total:,} steps. "
                   f"{precision_sentence(trainer.precision)}")
    yield view.outputs(running=True)
    for ev in trainer.run(stop=turn):
        force = False
        if isinstance(ev, StepEvent):
            ws.history.add_step(ev.tokens_seen, ev.loss)
            force = view.last_step is None  # the first point as soon as it exists
            view.last_step = ev
            view.progress = {
                "fraction": (ev.step + 1) / max(1, ev.total_steps), "state": "running",
                "text": (f"epoch {ev.epoch}/{trainer.schedule.num_epochs} · step {ev.step + 1:,}/"
                         f"{ev.total_steps:,} · {ev.tokens_seen:,} tokens · ETA {_duration(ev.eta_seconds)}"),
            }
        elif isinstance(ev, EvalEvent):
            ws.history.add_eval(ev.step, ev.tokens_seen, ev.train_loss, ev.val_loss)
            ws.history.flagged = ws.history.flagged or ev.overfitting
            view.last_eval = ev
            force = True
        elif isinstance(ev, SampleEvent):
            ws.history.add_sample(f"epoch {ev.epoch}, step {ev.step + 1}", ev.text)
            force = True
        elif isinstance(ev, (EpochEvent, CheckpointEvent)):
            pass
        elif isinstance(ev, DoneEvent):
            outcome = "done"
        elif isinstance(ev, StoppedEvent) and turn.paused:
            outcome = "stopped"
            view.status = (f"Paused after step {ev.step + 1:,} to give the next student a turn after "
                           f"{_share(TRAIN_QUEUE.share_s)}; press **Resume** to queue again.")
        elif isinstance(ev, StoppedEvent):
            outcome = "stopped"
            view.status = f"Stopped after step {ev.step + 1:,}: {ev.reason}. Press **Resume** to continue."
        elif isinstance(ev, ErrorEvent):
            outcome, error = "error", ev.message
        now = time.monotonic()
        if force or now - last_yield >= UPDATE_INTERVAL_S:
            last_yield = now
            yield view.outputs(running=True)
    elapsed = time.monotonic() - started
    view.progress = dict(view.progress, state=outcome)
    if outcome == "done":
        view.progress["fraction"] = 1.0
        view.status = (f"Done: {trainer.state.step + 1:,} steps, {trainer.state.tokens_seen:,} tokens in "
                       f"{_duration(elapsed)}. Try your model in **Generate**.")
    elif outcome != "stopped":
        view.status = f"Training failed: {error}"
    _record_run(ws, own, trainer)
    download = ws.save_checkpoint() if _small_enough_to_autosave(own) else None
    ws.ui["view"] = view
    yield view.outputs(running=False, download=download)
    if error:
        raise WorkspaceError(f"Training stopped with an error: {error}")


def _share(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} s"


def _small_enough_to_autosave(own) -> bool:
    # A checkpoint with AdamW state is ~12 bytes a parameter: save small ones right away,
    # larger ones when the user asks (Download after the run, from the checkpoint box).
    return own.config.num_parameters() <= 30_000_000


def train(ws: Workspace, form: dict, start_label: str):
    """Start a new run from the Train form and "Start from"."""
    spec = _spec(ws, form)
    start = start_id(start_label)
    base, label = None, {"scratch": f"a new {spec.preset} model", "own": "your model"}.get(start)
    if start == "gpt2":
        loaded = SHARED.keys()
        base = SHARED.get(loaded[0]) if loaded else None
        if base is None:
            raise WorkspaceError("No GPT-2 is loaded yet: load one in the GPT-2 tab, then train.")
        label = f"a copy of {loaded[0]}"
    _check_steps(ws, spec, start, base)
    spec, start_note = readable_run_start(ws, spec, start)
    job = ws.begin_job("train")
    turn = TRAIN_QUEUE.join(job, owner=ws, plan=spec)
    try:
        view = _View(ws)
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
        yield from _drive(ws, turn, view)
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
        view = _View(ws)
        yield from _take_turn(ws, turn, view)
        if turn.admitted:
            yield from _drive(ws, turn, view)
    finally:
        TRAIN_QUEUE.leave(turn)
        ws.end_job(job)


def request_stop(ws: Workspace) -> str:
    """The Stop button, at once: leave the training queue, or raise the stop flag (the trainer
    stops after its step)."""
    job = ws.job
    if job is not None and TRAIN_QUEUE.withdraw(job):
        job.request_stop()  # the waiting handler ends
        return LEFT_QUEUE
    if ws.request_stop():
        return "Stopping after the current step..."
    return NOTHING_TRAINING


def after_stop(ws: Workspace):
    """Once the run has stopped: the whole view as it ended, with a checkpoint to download."""
    finished = ws.wait_idle(STOP_WAIT_S)
    view = ws.ui.get("view") or _View(ws)
    own = ws.own
    if not finished:
        view.status = "Stopping: the current step is still running; the run ends right after it."
        return view.outputs(running=True)
    turn = ws.ui.get("turn")
    if turn is not None and turn.left and turn.admitted is None:  # Stop took it out of the queue
        del ws.ui["turn"]
        return view.left_queue()
    if own is None or own.trainer is None:
        return (gr.update(),) * 5 + (gr.update(), gr.update(interactive=True), gr.update())
    st = own.trainer.state
    _record_run(ws, own, own.trainer)
    if own.trainer.finished:
        view.status = f"Done: {st.step + 1:,} steps. Try your model in **Generate**."
        view.progress = dict(view.progress, fraction=1.0, state="done")
    else:
        view.status = (f"Stopped after step {st.step + 1:,} of {own.trainer.total_steps:,}. "
                       "Press **Resume** to continue.")
        view.progress = dict(view.progress, state="stopped")
    download = own.checkpoint_path or (ws.save_checkpoint() if _small_enough_to_autosave(own) else None)
    return view.outputs(running=False, download=download)


def stop(ws: Workspace) -> str:
    """Stop this session's run (the API route): raise the flag, wait for the run to end, and
    say where it stopped."""
    if request_stop(ws) == NOTHING_TRAINING:
        return NOTHING_TRAINING
    return after_stop(ws)[0]


def prepare_download(ws: Workspace):
    path = ws.save_checkpoint()
    return LINKS.url(ws, path), f"Saved `{path.rsplit('/', 1)[-1]}`: press Download."


def upload_checkpoint(ws: Workspace, path):
    if not path:
        raise ValueError("No file arrived. Choose a .pt or .pth checkpoint to upload.")
    ws.require_idle("load a checkpoint")
    own, note = ws.load_checkpoint(str(path))
    cfg = own.config
    shape = f"{cfg.n_layers} layers × {cfg.emb_dim}" if hasattr(cfg, "n_layers") else cfg.describe()
    status = (f"Loaded **{own.label}**: {shape}, context "
              f"{cfg.context_length}, vocabulary {cfg.vocab_size:,} ({format_count(cfg.num_parameters())} "
              f"parameters). {note}")
    return status, status, _figure(ws), gr.update(value=None, interactive=False), \
        gr.update(interactive=True), gr.update(interactive=own.resumable)


def model_unchanged(ws: Workspace) -> str:
    """After a refused checkpoint: what the session's model still is."""
    own = ws.own
    return (tr("Your model is unchanged ({label}).", label=own.label) if own is not None
            else tr("You still have no model of your own."))


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
