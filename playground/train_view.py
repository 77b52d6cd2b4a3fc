"""Train tab, what its right-hand side shows: status, progress bar, loss chart, metrics, the
sample log, the checkpoint link and the buttons, always saying what is true now (running,
waiting, stopped, done, loaded). `View.outputs()` renders it into the tab's Gradio outputs.
"""
from __future__ import annotations

import html
import math

import gradio as gr

from gpt_core.plots import loss_figure
from gpt_core.train_events import EvalEvent, StepEvent, format_utilisation

from . import replay
from .common import TRAIN_QUEUE, stop_button
from .files import LINKS
from .i18n import tr, translate_message
from .session import Workspace
from .train_queue import Place

METRICS_KEY = "train_metrics"  # in ws.ui: the last step and evaluation the metrics line showed
PROGRESS_COLORS = {"waiting": "#9ca3af", "running": "#2563eb", "done": "#16a34a", "stopped": "#d97706",
                   "error": "#dc2626", "loaded": "#6b7280"}


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return tr("{n} s", n=seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_html(p: dict | None) -> str:
    """A progress bar with ETA (our own: Gradio's overlay would hide the chart)."""
    if not p:
        return ("<div class='run-progress' style='color:#6b7280;padding:8px 0'>"
                + tr("No run yet. The demo preset trains in seconds.") + "</div>")
    frac = max(0.0, min(1.0, p.get("fraction", 0.0)))
    color = PROGRESS_COLORS[p.get("state", "running")]
    text = html.escape(p.get("text", ""))
    return (
        "<div class='run-progress' style='padding:4px 0'>"
        f"<div style='display:flex;justify-content:space-between;font-size:13px;margin-bottom:4px'>"
        f"<span>{text}</span><span><b>{frac:.0%}</b></span></div>"
        "<div style='background:#e5e7eb;border-radius:6px;height:12px;overflow:hidden'>"
        f"<div class='run-progress-fill' data-fraction='{frac:.4f}' style='width:{frac * 100:.1f}%;"
        f"background:{color};height:100%;transition:width .3s'></div></div></div>"
    )


def where_the_run_is(trainer, state: str) -> dict:
    """The progress bar of a run that is not training now: where it stands, no time left."""
    st, total = trainer.state, trainer.total_steps
    done = st.step + 1
    word = {"done": "done", "stopped": "stopped at", "error": "failed after", "loaded": "loaded at"}[state]
    unit = "iteration" if trainer.config.batching == "random_windows" else "step"
    return {"fraction": done / max(1, total), "state": state,
            "text": tr(word + " " + unit + " {done}/{total} · {tokens} tokens", done=f"{done:,}", total=f"{total:,}",
                       tokens=f"{st.tokens_seen:,}")}


def figure(ws: Workspace):
    h = ws.history
    return replay.marked(loss_figure(h.tokens_seen, h.train_losses, h.val_losses, num_epochs=h.num_epochs,
                                     tokens_per_epoch=h.tokens_per_epoch, step_tokens=h.step_tokens,
                                     step_losses=h.step_losses, hint=h.overfitting_hint(), uirevision=h.revision),
                         ws)


def _ppl(x: float) -> str:
    return f"{x:,.1f}" if x < 1e5 else f"{x:.1e}"


def metrics(ws: Workspace, last_step: StepEvent | None, last_eval: EvalEvent | None) -> str:
    parts = []
    if last_step is not None:
        parts.append(tr("batch loss **{loss}**", loss=f"{last_step.loss:.3f}"))
        parts.append(tr("{rate} tokens/s", rate=f"{last_step.tokens_per_sec:,.0f}"))
        if format_utilisation(last_step):  # achieved FLOP/s against this server's measured peak
            parts.append(translate_message(format_utilisation(last_step)))
        parts.append(tr("lr {lr}", lr=f"{last_step.lr:.2e}"))
    if last_eval is not None:
        parts.append(tr("train loss **{loss}** (perplexity {ppl})", loss=f"{last_eval.train_loss:.3f}",
                        ppl=_ppl(last_eval.train_ppl)))
        val = (tr("val loss **{loss}** (perplexity {ppl})", loss=f"{last_eval.val_loss:.3f}", ppl=_ppl(last_eval.val_ppl))
               if math.isfinite(last_eval.val_loss) else tr("val loss n/a (validation text too short)"))
        parts.append(val)
    hint = ws.history.overfitting_hint()
    text = " · ".join(parts) + _runs_compared(ws)
    if hint:
        text += "\n\n⚠️ " + tr("**{hint}** Stop here, or add data, dropout or weight decay.", hint=hint)
    return text


def record_run(ws: Workspace, own, trainer) -> None:
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
    return "\n\n" + tr("Runs on this text, last validation loss (best): ") + " · ".join(
        tr("{label} **{val}** ({best} at step {best_step} of {steps})", label=html.escape(tr(label)), val=f"{val:.3f}",
           best=f"{best:.3f}", best_step=f"{best_step:,}", steps=f"{steps:,}")
        for label, _, steps, val, best, best_step in runs)


def _buttons(*, train: str | None = None, idle: bool, resumable: bool = False):
    """Train, Resume, Stop: Stop is live (and red) only while there is something to stop."""
    return (gr.update(value=train or tr("Train"), interactive=idle), gr.update(interactive=idle and resumable),
            stop_button(live=not idle))


class View:
    """What the right-hand side of the tab shows; rendered into Gradio outputs."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.status = tr("Starting...")
        self.progress: dict = {"fraction": 0.0, "text": tr("preparing data and model"), "state": "running"}
        self.last_step: StepEvent | None = None
        self.last_eval: EvalEvent | None = None
        self.note = ""  # what was changed for the run (a start context the model cannot read)

    def preparing(self, what: str):
        """Before the trainer exists: an empty chart, Train and Resume disabled, Stop live."""
        self.status = tr(what)
        self.progress = {"fraction": 0.0, "text": tr("preparing data and model"), "state": "running"}
        return (self.status, progress_html(self.progress), loss_figure(), "", "", gr.update(value=""),
                *_buttons(idle=False))

    def waiting(self, place: Place):
        """In the training queue: the place, falling live, and the Train button saying so."""
        if place.reason:
            self.status = tr("Waiting for memory: {reason} Press **Stop** to leave the queue.", reason=place.reason)
        else:
            self.status = tr("Waiting: **{ahead}** training ahead of you (the server trains {slots} at a time). "
                             "Press **Stop** to leave the queue." if place.ahead == 1 else
                             "Waiting: **{ahead}** trainings ahead of you (the server trains {slots} at a time). "
                             "Press **Stop** to leave the queue.", ahead=place.ahead, slots=TRAIN_QUEUE.slots)
        self.progress = {"fraction": 0.0, "state": "waiting",
                         "text": tr("waiting for a training slot: {ahead} ahead of you", ahead=place.ahead)}
        return (self.status, progress_html(self.progress), figure(self.ws), "", self.ws.history.sample_log(),
                gr.update(), *_buttons(train=tr("Waiting… ({ahead} ahead)", ahead=place.ahead), idle=False))

    def left_queue(self, sentence: str):
        self.status = sentence
        self.progress = {"fraction": 0.0, "state": "stopped", "text": tr("left the queue: nothing was trained")}
        return self.outputs(running=False)

    def ended(self, trainer, state: str, status: str, download: str | None = None):
        """The run is over for now (done, stopped, failed): where it stands, nothing left to stop."""
        self.status = status
        self.progress = where_the_run_is(trainer, state)
        return self.outputs(running=False, download=download)

    def loaded(self, status: str):
        """A checkpoint was uploaded: its run (if it has one) where it stopped."""
        self.status = status
        own = self.ws.own
        if own.trainer is not None:
            self.progress = where_the_run_is(own.trainer, "loaded")
        else:
            self.progress = {"fraction": 0.0, "state": "loaded",
                             "text": tr("an uploaded model, no run of its own: train it further with Start from: your model")}
        return self.outputs(running=False)

    def outputs(self, *, running: bool, download: str | None = None):
        own = self.ws.own
        resumable = bool(own is not None and own.resumable)
        download_update = (gr.update(value=LINKS.url(self.ws, download)) if download
                           else gr.update(value="") if running else gr.update())
        status = self.status + (f"  \n{self.note}" if self.note else "")
        self.ws.ui[METRICS_KEY] = (self.last_step, self.last_eval)  # said again on a language switch
        return (status, progress_html(self.progress), figure(self.ws),
                metrics(self.ws, self.last_step, self.last_eval), self.ws.history.sample_log(),
                download_update, *_buttons(idle=not running, resumable=resumable))
