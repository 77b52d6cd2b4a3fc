"""Runs compared and kept: the labels that say how runs differ, the session's archive of runs,
and their exports (curves as CSV, settings as JSON)."""
from __future__ import annotations

import csv
import io
import json
import math

import pytest

from playground.history import RunHistory
from playground.runs import (MAX_CHANGES, Run, RunArchive, curves_csv, difference_labels, settings_json,
                             short_value)


@pytest.mark.parametrize("value, shown", [
    (0.006, "6e-3"), (0.001, "1e-3"), (0.0015, "1.5e-3"), (4e-4, "4e-4"), (0.1, "0.1"), (0.0, "0"),
    (0.25, "0.25"), (1.0, "1"), (250000.0, "2.5e5"), (123, "123"), (True, "on"), (False, "off"), (None, "none"),
    ("demo", "demo"), ("Every effort moves you", '"Every effort moves…"'),
])
def test_values_read_short(value, shown):
    assert short_value(value) == shown


def test_each_run_is_labelled_by_what_differs_from_the_first():
    runs = [dict(preset="demo", learning_rate=6e-3, drop_rate=0.1, seed=123),
            dict(preset="demo", learning_rate=1e-3, drop_rate=0.0, seed=123),
            dict(preset="demo", learning_rate=6e-3, drop_rate=0.1, seed=7)]
    assert difference_labels(runs) == [
        "run 1: lr 6e-3, drop 0.1, seed 123",  # the reference: its values of what differs anywhere
        "run 2: lr 6e-3 → 1e-3, drop 0.1 → 0",  # only what it changed
        "run 3: seed 123 → 7",
    ]


def test_labels_name_the_runs_by_their_numbers_and_say_when_nothing_differs():
    same = dict(learning_rate=4e-4, cosine=False)
    assert difference_labels([same, dict(same)], [3, 5]) == ["run 3", "run 5: same settings as run 3"]
    assert difference_labels([same], [4]) == ["run 4"]
    assert difference_labels([]) == []
    mixed = [same, dict(same, cosine=True), dict(same)]
    assert difference_labels(mixed) == ["run 1: cosine off", "run 2: cosine off → on",
                                        "run 3: same settings as run 1"]
    with pytest.raises(ValueError, match="2 runs but 1 numbers"):
        difference_labels([same, same], [1])


def test_a_label_names_at_most_a_few_changes():
    a = {f"field_{i}": i for i in range(7)}
    b = {f"field_{i}": i + 1 for i in range(7)}
    second = difference_labels([a, b])[1]
    assert second.count("→") == MAX_CHANGES - 1 and second.endswith(f"+{7 - MAX_CHANGES + 1} more")
    assert second.startswith("run 2: field_0 0 → 1, field_1 1 → 2")


def test_a_setting_only_one_run_has_counts_as_a_difference():
    assert difference_labels([dict(lr=1), dict(lr=1, stride=4)]) == ["run 1: stride none", "run 2: stride none → 4"]


def history(points: list[tuple[int, int, float, float]]) -> RunHistory:
    h = RunHistory()
    for step, tokens, train, val in points:
        h.add_eval(step, tokens, train, val)
    return h


def test_the_archive_keeps_the_last_runs_with_a_curve_and_what_is_shown():
    archive = RunArchive(max_runs=3)
    empty = archive.add({"seed": 0}, RunHistory())  # stopped before its first evaluation
    runs = [archive.add({"seed": i}, history([(0, 10, 5.0, 5.1)])) for i in range(1, 4)]
    assert empty.number == 1 and [r.number for r in runs] == [2, 3, 4]
    assert [r.number for r in archive.runs] == [2, 3, 4]  # the oldest went, the empty one with it
    archive.show([2, 4])
    assert [r.number for r in archive.shown()] == [2, 4]
    late = archive.add({"seed": 9}, history([(0, 10, 4.0, 4.1)]))
    assert [r.number for r in archive.runs] == [3, 4, 5] and late.number == 5
    assert [r.number for r in archive.shown()] == [4, 5]  # a new run is shown; 3 stays hidden
    growing = archive.runs[-1].history
    growing.add_eval(1, 20, 3.0, 3.5)  # a resumed run keeps drawing into the same history
    assert archive.shown()[-1].history.val_losses == [4.1, 3.5]
    archive.clear()
    assert archive.runs == [] and archive.shown() == []


def test_the_csv_holds_every_evaluation_of_every_run_shown():
    first = Run(1, {"learning_rate": 6e-3}, history([(0, 256, 4.1, 4.2), (10, 2816, 3.2, float("nan"))]))
    second = Run(2, {"learning_rate": 1e-3}, history([(0, 256, 4.3, 4.4)]))
    labels = difference_labels([first.settings, second.settings])
    rows = list(csv.reader(io.StringIO(curves_csv([first, second], labels))))
    assert rows == [
        ["run", "label", "step", "tokens_seen", "train_loss", "val_loss"],
        ["1", "run 1: lr 6e-3", "0", "256", "4.1", "4.2"],
        ["1", "run 1: lr 6e-3", "10", "2816", "3.2", ""],  # no validation loss: an empty cell
        ["2", "run 2: lr 6e-3 → 1e-3", "0", "256", "4.3", "4.4"],
    ]


def test_the_json_holds_each_run_s_settings_link_and_outcome():
    run = Run(4, {"preset": "demo", "learning_rate": 1e-3, "seed": None},
              history([(0, 10, 5.0, 4.0), (5, 20, 4.0, 4.5), (9, 30, 3.0, float("nan"))]))
    data = json.loads(settings_json([run], ["run 4"], ["?preset=demo&learning_rate=0.001"]))
    assert data == {"runs": [{
        "run": 4, "label": "run 4", "settings": {"preset": "demo", "learning_rate": 1e-3, "seed": None},
        "link": "?preset=demo&learning_rate=0.001", "evaluations": 3, "last_train_loss": 3.0,
        "last_val_loss": None, "best_val_loss": 4.0}]}
    assert not math.isnan(data["runs"][0]["best_val_loss"])
