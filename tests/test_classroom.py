"""A small class at once: 5 simulated students against the launched app (`python app.py`).

The same code as benchmarks/load_classroom.py (20 students; the code is in tests/classroom.py) with fewer students and shorter
texts: each student, in their own gradio_client session, uploads a different text, trains the
demo preset for one short epoch, generates while the others train, scores their validation
text and closes the tab. Checked: each student's summary and curve are those of their own
text (the first batch loss and evaluation equal a run on that text computed here), queued
students see their place fall and are served in order, nothing fails, memory returns near
its baseline and the sessions' files are removed when the tabs close.
"""
from __future__ import annotations

import pytest

from app_server import AppServer
from classroom import run_classroom
from classroom_checks import check, format_table

pytestmark = pytest.mark.slow
STUDENTS = 5


def test_a_class_of_five_trains_generates_and_leaves_without_interfering(tmp_path):
    # A short heartbeat: closed tabs are noticed in 2 s instead of 15 s (Gradio's default).
    env = {"GRADIO_HEARTBEAT_INTERVAL": "2"}
    with AppServer(tmp_path / "app", env=env) as server:
        report = run_classroom(server.url, server.pid, STUDENTS, workdir=tmp_path, chars=5_000,
                               stagger_seconds=0.2, files_dir=server.files_dir, settle_seconds=30,
                               max_generations=6, think_seconds=1.0)
        startup = server.startup_seconds
        log = server.log()
    print(format_table(report, env), f"\napp.py served after {startup:.1f} s")
    failures = check(report)
    assert not failures, "\n".join(failures) + "\n\nserver log:\n" + log[-3000:]
    # Everyone trained; with one training at a time most waited in the queue.
    assert sum(r.queued for r in report.students) >= STUDENTS - 2
    assert all(r.generations for r in report.students)
    assert "Traceback" not in log, log[-3000:]
