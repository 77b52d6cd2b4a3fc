"""Runs compared and kept: the session's runs on one chart, each labelled by what differs from
the others, with their curves as CSV and their settings as JSON for download (links of this
session only, `files.EXPORTS`), and the chart as PNG (drawn by the browser).
"""
from __future__ import annotations

import html
import weakref
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Sequence

import gradio as gr

from gpt_core.plots import message_figure, runs_figure

from .files import EXPORTS
from .i18n import DEFAULT_LANGUAGE, speaking, tr
from .options import RunSpec
from .runs import Run, curves_csv, difference_labels, run_name, settings_json
from .session import Workspace
from .share import link_query, settings_of

CSV_NAME, JSON_NAME, PNG_NAME = "runs.csv", "runs-settings.json", "runs"
# Every sentence this view shows, in one place (for translation).
TEXT = {
    "box": "Compare runs and export",
    "runs": "Runs on the chart",
    "title": "Runs compared",
    "subtitle": "solid: training loss, dotted: validation loss",
    "no_runs": "No run with an evaluation yet. Each run you train in this session is kept here, to compare.",
    "csv": "Download the curves (CSV)",
    "json": "Download the settings (JSON)",
    "png": "Download the chart (PNG)",
    "nothing": "Train a run to export its curve and settings.",
    "not_a_list": "The runs to compare must be a list of run numbers, got {value}.",
    "no_such_run": "There is no run {value} in this session; choose among runs {kept}.",
    "none_yet": "(none yet)",
}
CSS = """
#compare-links .html-container > div {display: flex; flex-wrap: wrap; gap: 8px}
#compare-links .download-link {display: inline-flex; height: auto; padding: var(--size-2) var(--size-3)}
"""
# The PNG link saves the chart as the browser draws it (Plotly's own image export) at twice its
# size on screen. The link is redrawn with the chart, so the listener sits on the page, once.
SETUP_JS = f"""() => {{
  if (window.comparePngHooked) return;
  window.comparePngHooked = true;
  document.addEventListener('click', (event) => {{
    if (!event.target.closest('#export-png')) return;
    event.preventDefault();
    const el = document.querySelector('#compare-chart .js-plotly-plot');
    if (el && window.Plotly) window.Plotly.downloadImage(el, {{format: 'png', filename: '{PNG_NAME}', scale: 2}});
  }});
}}"""


def record(ws: Workspace, spec: RunSpec, form: Mapping[str, Any], start: str) -> Run:
    """Keep the run just built in `ws` (its settings, and the history the live chart draws)."""
    return ws.runs.add(settings_of(spec, form, start=start, text=ws.corpus_name), ws.history)


def labels_of(runs: Sequence[Run]) -> list[str]:
    return difference_labels([r.settings for r in runs], [r.number for r in runs])


def _export(ws: Workspace, render: Callable[[list[Run], list[str]], str]) -> Callable[[], bytes | None]:
    """What an export link makes when followed: `render` of the runs the session shows then,
    in the session's language. It holds the session weakly, so a closed session's link makes
    nothing (a 404)."""
    ref = weakref.ref(ws)

    def make() -> bytes | None:
        session = ref()
        if session is None or session.closed:
            return None
        with speaking(getattr(session, "lang", DEFAULT_LANGUAGE)):
            runs = session.runs.shown()
            text = render(runs, labels_of(runs))
        # A BOM: spreadsheets then read the labels' and texts' characters as UTF-8.
        return ("\ufeff" + text).encode("utf-8")
    return make


def _with_links(runs: list[Run], labels: list[str]) -> str:
    return settings_json(runs, labels, [link_query(r.settings) for r in runs])


def _links_html(ws: Workspace, shown: list[Run]) -> str:
    if not shown:
        return f"<span class='export-note'>{html.escape(tr(TEXT['nothing']))}</span>"
    csv_url = EXPORTS.url(ws, CSV_NAME, _export(ws, curves_csv))
    json_url = EXPORTS.url(ws, JSON_NAME, _export(ws, _with_links))
    return (f"<a class='download-link' id='export-csv' href='{csv_url}' download='{CSV_NAME}'>"
            f"{html.escape(tr(TEXT['csv']))}</a>"
            f"<a class='download-link' id='export-json' href='{json_url}' download='{JSON_NAME}'>"
            f"{html.escape(tr(TEXT['json']))}</a>"
            f"<a class='download-link' id='export-png' href='#' role='button'>{html.escape(tr(TEXT['png']))}</a>")


def view(ws: Workspace):
    """(run choices, chart, export links) for the runs the session keeps and shows."""
    runs, shown = ws.runs.runs, ws.runs.shown()
    choices = [(run_name(r.number), r.number) for r in runs]
    if not shown:
        figure = message_figure(tr(TEXT["no_runs"]), title=tr(TEXT["title"]))
    else:
        figure = runs_figure([(label, r.history.tokens_seen, r.history.train_losses, r.history.val_losses)
                              for label, r in zip(labels_of(shown), shown)],
                             title=tr(TEXT["title"]), subtitle=tr(TEXT["subtitle"]))
    return gr.update(choices=choices, value=[r.number for r in shown]), figure, _links_html(ws, shown)


def choose(ws: Workspace, numbers):
    """Show the runs ticked in the list (numbers, as the list sends them)."""
    if numbers is None:
        numbers = []
    if not isinstance(numbers, (list, tuple)):
        raise ValueError(tr(TEXT["not_a_list"], value=repr(numbers)[:40]))
    kept = {r.number for r in ws.runs.runs}
    for n in numbers:
        if isinstance(n, bool) or not isinstance(n, int) or n not in kept:
            raise ValueError(tr(TEXT["no_such_run"], value=repr(n)[:40],
                                kept=", ".join(str(k) for k in sorted(kept)) or tr(TEXT["none_yet"])))
    ws.runs.show(numbers)
    return view(ws)


def layout() -> SimpleNamespace:
    """The comparison, made where it is called (under the Train tab's sample log)."""
    with gr.Accordion(TEXT["box"], open=False, elem_id="compare-box") as box:
        runs = gr.CheckboxGroup([], label=TEXT["runs"], elem_id="compare-runs")
        chart = gr.Plot(label=TEXT["title"], show_label=False, elem_id="compare-chart")
        links = gr.HTML(elem_id="compare-links")
    return SimpleNamespace(box=box, runs=runs, chart=chart, links=links, outputs=[runs, chart, links])


def wire(ui: SimpleNamespace, run_events, bind) -> None:
    """Redrawn when a run ends (each of `run_events`), when the box opens, when runs are ticked."""
    for event in run_events:
        event.then(bind(view), None, ui.outputs, api_name=False, show_progress="hidden")
    ui.box.expand(bind(view), None, ui.outputs, api_name=False, show_progress="hidden")
    ui.box.expand(None, js=SETUP_JS)
    ui.runs.input(bind(choose), ui.runs, ui.outputs, api_name="compare_runs")
