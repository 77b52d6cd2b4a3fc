"""Runs compared in a session (the handlers called directly, tiny models): the runs trained here
on one chart with their labels, the choice of runs shown, and the exports served through the
session's own links."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from playground import compare, train_tab
from playground.files import EXPORTS, LINKS, ExportLinks
from playground.limits import Limits
from playground.options import START_FROM
from playground.session import Workspace
from test_app_handlers import ui_form
from threads import torch_threads


@pytest.fixture(scope="module")
def ws(verdict_text):
    """A session that trained two tiny runs: learning rate 6e-3 with dropout 0.1, then 1e-3 without."""
    w = Workspace(limits=Limits(max_corpus_chars=100_000))
    w.set_text(verdict_text[:2000], name="verdict excerpt")
    with torch_threads(1):  # tiny models gain nothing from a second thread
        for lr, drop in ((6e-3, 0.1), (1e-3, 0.0)):
            list(train_tab.train(w, ui_form(num_epochs=1, learning_rate=lr, drop_rate=drop), START_FROM[0]))
    yield w
    w.close()


def links(html: str) -> dict[str, tuple[str, str]]:
    """The export links of the view's HTML: name -> (token, file name)."""
    out = {}
    for part in html.split("href='")[1:]:
        url = part.split("'")[0]
        if url.startswith("gradio_api/export/"):
            token, name = url.split("/")[-2:]
            out[name] = (token, name)
    return out


def rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_two_runs_on_one_chart_labelled_by_what_differs(ws):
    choices, figure, html = compare.view(ws)
    assert choices["choices"] == [("run 1", 1), ("run 2", 2)] and choices["value"] == [1, 2]
    labels = ["run 1: lr 6e-3, drop 0.1", "run 2: lr 6e-3 → 1e-3, drop 0.1 → 0"]
    legend = [t.name for t in figure.data if t.showlegend is not False]
    assert legend == labels
    for run, (train, val) in zip(ws.runs.runs, zip(figure.data[::2], figure.data[1::2])):
        assert list(train.y) == run.history.train_losses and list(val.y) == run.history.val_losses
        assert list(train.x) == run.history.tokens_seen and val.line.dash == "dot"
    assert ws.runs.runs[1].history is ws.history  # the latest run is the one the live chart draws


def test_a_chinese_session_reads_the_chart_and_its_labels_in_chinese(ws):
    from playground.i18n import speaking

    with speaking("zh-CN"):
        choices, figure, html = compare.view(ws)
    assert choices["choices"][0] == ("第 1 次运行", 1)
    assert [t.name for t in figure.data if t.showlegend is not False] == [
        "第 1 次运行：学习率 6e-3，dropout 0.1", "第 2 次运行：学习率 6e-3 → 1e-3，dropout 0.1 → 0"]
    assert figure.layout.title.text == "各次运行的比较" and "下载曲线（CSV）" in html


def test_the_csv_and_json_links_serve_the_runs_shown(ws):
    *_, html = compare.view(ws)
    found = links(html)
    assert set(found) == {compare.CSV_NAME, compare.JSON_NAME} and "export-png" in html
    table = rows(EXPORTS.content(*found[compare.CSV_NAME]))
    assert table[0] == ["run", "label", "step", "tokens_seen", "train_loss", "val_loss"]
    for run in ws.runs.runs:
        mine = [r for r in table[1:] if r[0] == str(run.number)]
        h = run.history
        assert [int(r[2]) for r in mine] == h.eval_steps and [int(r[3]) for r in mine] == h.tokens_seen
        assert [float(r[4]) for r in mine] == h.train_losses and [float(r[5]) for r in mine] == h.val_losses
    settings = json.loads(EXPORTS.content(*found[compare.JSON_NAME]).decode("utf-8-sig"))["runs"]
    assert [s["settings"]["learning_rate"] for s in settings] == [6e-3, 1e-3]
    assert [s["settings"]["drop_rate"] for s in settings] == [0.1, 0.0]
    assert settings[1]["label"] == "run 2: lr 6e-3 → 1e-3, drop 0.1 → 0"
    assert settings[1]["link"].startswith("?preset=custom&tokenizer=char&num_epochs=1&learning_rate=0.001")
    assert settings[1]["last_val_loss"] == ws.runs.runs[1].history.val_losses[-1]


def test_choosing_runs_changes_the_chart_and_what_the_links_serve(ws):
    *_, html = compare.view(ws)
    csv_link = links(html)[compare.CSV_NAME]
    try:
        ws.runs.show([1])
        assert {r[0] for r in rows(EXPORTS.content(*csv_link))[1:]} == {"1"}  # made when followed
        choices, figure, html = compare.choose(ws, [2])
        assert choices["value"] == [2] and [t.name for t in figure.data] == ["run 2", "run 2"]
        assert links(html)[compare.CSV_NAME] == csv_link  # the link on the page stays good
        assert {r[0] for r in rows(EXPORTS.content(*csv_link))[1:]} == {"2"}
        _, empty, html = compare.choose(ws, [])
        assert "No run with an evaluation yet" in empty.layout.annotations[0].text and "export-csv" not in html
        for bad in (["1"], [True], [7], "1", 3):
            with pytest.raises(ValueError, match="run|list of run numbers"):
                compare.choose(ws, bad)
    finally:
        compare.choose(ws, [1, 2])


def test_export_links_are_the_session_s_own_and_leave_its_checkpoint_link_alone(ws, verdict_text):
    checkpoint = ws.own.checkpoint_path
    token, name = LINKS.url(ws, checkpoint).split("/")[-2:]
    *_, html = compare.view(ws)
    csv_token, csv_name = links(html)[compare.CSV_NAME]
    other = Workspace(limits=ws.limits)
    try:
        other.set_text(verdict_text[:2000], name="verdict excerpt")
        with torch_threads(1):
            list(train_tab.train(other, ui_form(num_epochs=1), START_FROM[0]))
        *_, their_html = compare.view(other)
        their_token, _ = links(their_html)[compare.CSV_NAME]
        assert their_token != csv_token
        assert rows(EXPORTS.content(their_token, csv_name)) != rows(EXPORTS.content(csv_token, csv_name))
        assert LINKS.resolve(token, name) == Path(checkpoint)  # one link per kind: all still valid
        assert EXPORTS.content(csv_token, compare.JSON_NAME) is None  # a token serves its own name only
        assert EXPORTS.content(csv_token[:-4] + "AAAA", csv_name) is None
        other.close()
        assert EXPORTS.content(their_token, csv_name) is None  # a closed session's links make nothing
    finally:
        other.close()
    *_, again = compare.view(ws)  # drawn again: the same link, renewed
    assert links(again)[compare.CSV_NAME] == (csv_token, csv_name) and EXPORTS.content(csv_token, csv_name)


def test_export_links_expire():
    now = [0.0]
    links_ = ExportLinks(60, clock=lambda: now[0])

    class Session:
        id = "a" * 32

    url = links_.url(Session(), "runs.csv", lambda: b"x")
    token, name = url.split("/")[-2:]
    assert url.startswith("gradio_api/export/") and links_.content(token, name) == b"x"
    now[0] = 50.0
    assert links_.url(Session(), "runs.csv", lambda: b"y") == url  # redrawn: renewed, serving the new maker
    now[0] = 100.0
    assert links_.content(token, name) == b"y"
    now[0] = 111.0
    assert links_.content(token, name) is None
    assert links_.url(Session(), "runs.csv", lambda: b"z") != url  # past its life a new token is made
