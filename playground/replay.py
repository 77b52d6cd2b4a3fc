"""The training replayed: a slider through the run's evaluations, under the loss curve.

Each evaluation of a run keeps a frame (gpt_core/timeline.py: the greedy sample of the start
context and the next-token candidates after it). The slider picks one; the frame shows what
the model wrote then and the curve marks where that was, so a class watches "Every effort
moves you,,,,,," turn into sentences. During a run the slider follows the newest frame until
it is moved back; moved to the end, it follows again. The frames live in the trainer's state,
so they are saved in the checkpoint and come back with it.
"""
from __future__ import annotations

import functools
import html
import inspect
import math
from types import SimpleNamespace

import gradio as gr

from gpt_core.plots import mark_evaluation, visible_token
from gpt_core.timeline import Frame

from .i18n import tr
from .session import Workspace

# Every sentence this view shows, in one place (for translation).
TEXT = {
    "slider": "Replay the run: evaluation",
    "empty": ("Each evaluation of a run keeps the model's greedy sample and its next-token candidates "
              "here. Then move the slider to replay the run; the curve marks where you are."),
    "no_run": "This model came without its run (weights only): there is nothing to replay.",
    "header": "Evaluation {i} of {n} · step {step:,} · epoch {epoch} · {tokens:,} tokens seen",
    "header_iterations": "Evaluation {i} of {n} · iteration {step:,} · {tokens:,} tokens seen",
    "losses": "training loss <b>{train}</b> · validation loss <b>{val}</b>",
    "sample": "Greedy sample from the start context",
    "candidates": "Next-token candidates after “{start}”",
    "marker": "step {step:,}",
    "marker_iteration": "iteration {step:,}",
    "no_val": "n/a",
    "bad_position": "The replay's position must be a whole number, got {value}.",
}
AT_KEY, SENT_KEY = "replay_at", "replay_sent"  # in ws.ui: the chosen frame (None: the newest); what was sent


def _trainer(ws: Workspace):
    if ws.spilled:  # drawing the chart never reads a model back from disk; its next use does
        return None
    own = ws.own
    return own.trainer if own is not None else None


def _frames(ws: Workspace) -> list[dict]:
    trainer = _trainer(ws)
    return trainer.state.timeline if trainer is not None else []


def _selected(ws: Workspace, frames: list[dict]) -> int | None:
    """Index of the frame shown: the one chosen, or the newest; None without frames."""
    if not frames:
        return None
    at = ws.ui.get(AT_KEY)
    return len(frames) - 1 if at is None else max(0, min(at, len(frames) - 1))


def _by_iteration(trainer) -> bool:
    """Random windows (BabyGPT's batching) count iterations and have no epochs to name."""
    return trainer is not None and trainer.config.batching == "random_windows"


def marked(fig, ws: Workspace):
    """The loss figure with the chosen evaluation marked on it (unchanged without frames)."""
    frames = list(_frames(ws))
    i = _selected(ws, frames)
    if i is None:
        return fig
    frame = Frame.from_dict(frames[i])
    return mark_evaluation(fig, frame.tokens_seen, [frame.train_loss, frame.val_loss],
                           label=tr(TEXT["marker_iteration" if _by_iteration(_trainer(ws)) else "marker"],
                                    step=frame.step + 1))


BAR_PX = 160  # a candidate of probability 1


def _percent(p: float) -> str:
    return f"{p * 100:.3g}%"  # 41.2%, 3.05%, 0.00213%: an untrained model's spread stays readable


def _loss(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else tr(TEXT["no_val"])


def _shown(text: str) -> str:
    # Newlines as ↵, as the book prints samples on one line: a sample of blank lines stays visible.
    return html.escape(text).replace("\n", "↵")


def _note(text: str) -> str:
    return f"<div class='replay-frame replay-empty' style='color:#6b7280;padding:6px 0'>{html.escape(text)}</div>"


def frame_html(ws: Workspace) -> str:
    """The chosen frame: where the run was, the sample it wrote, the candidates after the start."""
    trainer = _trainer(ws)
    if trainer is None:
        return _note(tr(TEXT["no_run"] if ws.own is not None else TEXT["empty"]))
    frames = list(trainer.state.timeline)
    i = _selected(ws, frames)
    if i is None:
        return _note(tr(TEXT["empty"]))
    frame = Frame.from_dict(frames[i])
    start = trainer.config.start_context
    head = tr(TEXT["header_iterations" if _by_iteration(trainer) else "header"],
              i=i + 1, n=len(frames), step=frame.step + 1, epoch=frame.epoch, tokens=frame.tokens_seen)
    losses = tr(TEXT["losses"], train=_loss(frame.train_loss), val=_loss(frame.val_loss))
    # Bars on one absolute scale: an untrained model's 0.002% shows as nothing, as it should.
    rows = "".join(
        "<div style='display:flex;align-items:center;gap:6px;font-size:13px;margin:1px 0'>"
        f"<code style='min-width:84px;white-space:pre'>{html.escape(visible_token(token))}</code>"
        f"<span style='display:inline-block;height:10px;width:{max(1.0, BAR_PX * p):.0f}px;"
        f"background:#1f77b4;border-radius:2px'></span><span>{_percent(p)}</span></div>"
        for token, p in frame.candidates)
    return (
        f"<div class='replay-frame' data-frame='{i}' style='padding:4px 0'>"
        f"<div class='replay-head' style='font-size:13px;color:#374151'>{html.escape(head)} · {losses}</div>"
        "<div style='display:flex;flex-wrap:wrap;gap:12px;margin-top:6px'>"
        f"<div style='flex:3 1 260px;min-width:0'><div style='font-size:12px;color:#6b7280'>{html.escape(tr(TEXT['sample']))}</div>"
        # A fixed height: scrubbing through samples of any length never moves the page.
        "<div id='replay-text' style='white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace;"
        "font-size:14px;padding:6px;border:1px solid #e5e7eb;border-radius:6px;background:#f9fafb;"
        "height:7.5em;overflow-y:auto'>"
        f"<b>{_shown(start)}</b>{_shown(frame.text)}</div></div>"
        f"<div class='replay-candidates' style='flex:2 1 200px;min-width:0'><div style='font-size:12px;color:#6b7280'>"
        f"{html.escape(tr(TEXT['candidates'], start=start))}</div>{rows}</div>"
        "</div></div>")


def outputs(ws: Workspace, *, force: bool = False) -> tuple:
    """(slider, frame) updates; unchanged since the last ones sent (a run between evaluations)
    they are left alone, so the page does not redraw them a few times a second."""
    trainer = _trainer(ws)
    frames = _frames(ws)
    i = _selected(ws, frames)
    state = (id(trainer), len(frames), i)
    if not force and ws.ui.get(SENT_KEY) == state:
        return gr.update(), gr.update()
    ws.ui[SENT_KEY] = state
    n = len(frames)
    # A slider needs two ends: with one frame it stands at 1 of 2, still.
    slider = gr.update(minimum=1, maximum=max(2, n), value=(i or 0) + 1, interactive=n > 1)
    return slider, frame_html(ws)


def redraw(ws: Workspace) -> tuple:
    """(slider, frame) as they stand, in the session's language (on load and on a language switch)."""
    return outputs(ws, force=True)


def scrub(ws: Workspace, value) -> str:
    """The slider moved to evaluation `value` (1-based): show that frame; the last one follows
    the run again."""
    frames = _frames(ws)
    try:
        position = int(round(float(value)))
    except (TypeError, ValueError):
        raise ValueError(tr(TEXT["bad_position"], value=repr(value)[:40])) from None
    ws.ui[AT_KEY] = None if position >= len(frames) else max(0, position - 1)
    ws.ui[SENT_KEY] = None
    return frame_html(ws)


def with_replay(fn, *, follow: bool = False):
    """`fn`'s outputs (a tuple, or each tuple a generator yields) followed by the replay's
    slider and frame. `follow`: the slider goes back to following the newest frame first."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def run(ws: Workspace, *args):
            if follow:
                ws.ui[AT_KEY] = None
            force = True
            for out in fn(ws, *args):
                yield (*out, *outputs(ws, force=force))
                force = False
        return run

    @functools.wraps(fn)
    def call(ws: Workspace, *args):
        if follow:
            ws.ui[AT_KEY] = None
        return (*fn(ws, *args), *outputs(ws, force=True))
    return call


def wire(ui: SimpleNamespace, chart, redraw_chart, bind) -> None:
    """Scrubbing redraws the frame, then the curve's marker (`redraw_chart`, the Train tab's
    chart handler); rendering only, so it never waits behind training or generation."""
    ui.slider.input(bind(scrub), ui.slider, ui.frame, api_name=False, trigger_mode="always_last",
                    show_progress="hidden", concurrency_limit=None).then(
        redraw_chart, None, chart, api_name=False, show_progress="hidden", concurrency_limit=None)


def layout() -> SimpleNamespace:
    """The slider and the frame, made where they are called (under the loss chart)."""
    with gr.Group(elem_id="replay"):
        slider = gr.Slider(1, 2, value=1, step=1, label=TEXT["slider"], interactive=False, elem_id="replay-slider")
        frame = gr.HTML("", elem_id="replay-frame", padding=True)  # filled on load, in the page's language
    return SimpleNamespace(slider=slider, frame=frame, outputs=[slider, frame])
