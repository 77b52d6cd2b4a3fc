"""Runs compared and kept: the session's runs on one chart, each labelled by what differs from
the others, with their curves as CSV and their settings as JSON for download (links of this
session only, `files.EXPORTS`), and the chart as PNG (drawn by the browser).
"""
from __future__ import annotations

import html
import weakref
from typing import Any, Callable, Mapping, Sequence

import gradio as gr

from gpt_core.plots import message_figure, runs_figure

from .files import EXPORTS
from .options import RunSpec
from .runs import RUN_ALONE, Run, curves_csv, difference_labels, settings_json
from .session import Workspace
from .share import link_query, settings_of

CSV_NAME, JSON_NAME = "runs.csv", "runs-settings.json"
NO_RUNS = "No run with an evaluation yet. Each run you train in this session is kept here, to compare."
TITLE = "Runs compared"
SUBTITLE = "solid: training loss, dotted: validation loss"
DOWNLOAD_CSV = "Download the curves (CSV)"
DOWNLOAD_JSON = "Download the settings (JSON)"
NOTHING_TO_EXPORT = "Train a run to export its curve and settings."
DOWNLOAD_PNG = "Download the chart (PNG)"
PNG_NAME = "runs"
# Installed on load: the PNG link saves the chart as the browser draws it (Plotly's own image
# export), at twice its size on screen. The link is redrawn with the chart, so the listener
# sits on the page.
SETUP_JS = f"""() => document.addEventListener('click', (event) => {{
  if (!event.target.closest('#export-png')) return;
  event.preventDefault();
  const el = document.querySelector('#compare-chart .js-plotly-plot');
  if (el && window.Plotly) window.Plotly.downloadImage(el, {{format: 'png', filename: '{PNG_NAME}', scale: 2}});
}})"""


def record(ws: Workspace, spec: RunSpec, form: Mapping[str, Any], start: str) -> Run:
    """Keep the run just built in `ws` (its settings, and the history the live chart draws)."""
    return ws.runs.add(settings_of(spec, form, start=start, text=ws.corpus_name), ws.history)


def labels_of(runs: Sequence[Run]) -> list[str]:
    return difference_labels([r.settings for r in runs], [r.number for r in runs])


def _export(ws: Workspace, render: Callable[[list[Run], list[str]], str]) -> Callable[[], bytes | None]:
    """What an export link makes when followed: `render` of the runs the session shows then.
    It holds the session weakly, so a closed session's link makes nothing (a 404)."""
    ref = weakref.ref(ws)

    def make() -> bytes | None:
        session = ref()
        if session is None or session.closed:
            return None
        runs = session.runs.shown()
        # A BOM: spreadsheets then read the labels' and texts' characters as UTF-8.
        return ("\ufeff" + render(runs, labels_of(runs))).encode("utf-8")
    return make


def _with_links(runs: list[Run], labels: list[str]) -> str:
    return settings_json(runs, labels, [link_query(r.settings) for r in runs])


def _links_html(ws: Workspace, shown: list[Run]) -> str:
    if not shown:
        return f"<span class='export-note'>{html.escape(NOTHING_TO_EXPORT)}</span>"
    csv_url = EXPORTS.url(ws, CSV_NAME, _export(ws, curves_csv))
    json_url = EXPORTS.url(ws, JSON_NAME, _export(ws, _with_links))
    return (f"<a class='download-link' id='export-csv' href='{csv_url}' download='{CSV_NAME}'>"
            f"{html.escape(DOWNLOAD_CSV)}</a>"
            f"<a class='download-link' id='export-json' href='{json_url}' download='{JSON_NAME}'>"
            f"{html.escape(DOWNLOAD_JSON)}</a>"
            f"<a class='download-link' id='export-png' href='#' role='button'>{html.escape(DOWNLOAD_PNG)}</a>")


def view(ws: Workspace):
    """(run choices, chart, export links) for the runs the session keeps and shows."""
    runs, shown = ws.runs.runs, ws.runs.shown()
    choices = [(RUN_ALONE.format(number=r.number), r.number) for r in runs]
    if not shown:
        figure = message_figure(NO_RUNS, title=TITLE)
    else:
        labels = labels_of(shown)
        figure = runs_figure([(label, r.history.tokens_seen, r.history.train_losses, r.history.val_losses)
                              for label, r in zip(labels, shown)], title=TITLE, subtitle=SUBTITLE)
    return (gr.update(choices=choices, value=[r.number for r in shown]), figure, _links_html(ws, shown))


def choose(ws: Workspace, numbers):
    """Show the runs ticked in the list (numbers, as the list sends them)."""
    if numbers is None:
        numbers = []
    if not isinstance(numbers, (list, tuple)):
        raise ValueError(f"Runs to compare must be a list of run numbers, got {numbers!r}.")
    kept = {r.number for r in ws.runs.runs}
    unknown = [n for n in numbers if isinstance(n, bool) or not isinstance(n, int) or n not in kept]
    if unknown:
        raise ValueError(f"There is no run {unknown[0]!r} in this session; choose among runs "
                         f"{', '.join(str(n) for n in sorted(kept)) or '(none yet)'}.")
    ws.runs.show(numbers)
    return view(ws)
