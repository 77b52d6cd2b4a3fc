"""What a classroom run must show, as sentences, and its table (see classroom.py).

Each student saw their own text and the curve of their own text (the first batch loss and
evaluation equal a run of the same options on that text computed here); queued students saw
their place fall and were served in order; nothing failed; the server's memory came back near
its baseline and the sessions' files were removed.
"""
from __future__ import annotations

import math
from typing import Any

from classroom import GEN_TOKENS, PROMPT, ClassroomReport


def check(report: ClassroomReport, *, memory_per_student_mb: float = 400.0,
          return_fraction: float = 0.25, tol: float = 1e-4) -> list[str]:
    """Everything the issue asks of a classroom; returns the failures as sentences."""
    bad: list[str] = []
    students = report.students
    for r in students:
        who = f"student {r.index + 1} ({r.name})"
        if r.errors:
            bad.append(f"{who}: {r.errors}")
            continue
        # Their own text, as they uploaded it.
        if f"Uploaded: {r.name}" not in r.summary:
            bad.append(f"{who}: the data summary names another text: {r.summary[:120]!r}")
        if f"| Characters | {len(r.text):,} " not in r.summary:
            bad.append(f"{who}: the summary does not count their {len(r.text):,} characters")
        if not r.preview.startswith(r.text[:2_000]):
            bad.append(f"{who}: the preview shows another text")
        if not r.train_status.startswith("Done"):
            bad.append(f"{who}: training ended with {r.train_status[:160]!r}")
        if not any(f"Uploaded: {r.name}" in s for s in r.run_statuses):
            bad.append(f"{who}: the run never said it trains on their text")
        others = {o.name for o in students} - {r.name}
        if any(f"Uploaded: {o}" in s for s in r.run_statuses for o in others):
            bad.append(f"{who}: the run's status names another student's text")
        ref = report.references.get(r.index)
        if ref is not None:
            if r.steps_done != ref["total_steps"]:
                bad.append(f"{who}: trained {r.steps_done} steps, their text gives {ref['total_steps']}")
            if not r.step_losses or abs(r.step_losses[0] - ref["step_loss"]) > tol:
                bad.append(f"{who}: first batch loss {r.step_losses[:1]} is not their text's {ref['step_loss']:.6f}")
            if not r.eval_val or abs(r.eval_val[0] - ref["val_loss"]) > tol or \
                    abs(r.eval_train[0] - ref["train_loss"]) > tol:
                bad.append(f"{who}: first evaluation {r.eval_train[:1]}/{r.eval_val[:1]} is not their "
                           f"text's {ref['train_loss']:.6f}/{ref['val_loss']:.6f}")
        if r.n_updates < 2:
            bad.append(f"{who}: only {r.n_updates} chart update(s) while training")
        if not r.generations or not all(text.startswith(PROMPT) and len(text) > len(PROMPT)
                                        for _, _, _, text in r.generations):
            bad.append(f"{who}: generation returned nothing new")
        if r.eval_loss is None or not math.isfinite(r.eval_loss):
            bad.append(f"{who}: evaluation gave no finite loss")
        # Place in the queue: it only falls while waiting.
        ranks = [rank for _, rank in r.ranks]
        if any(b > a for a, b in zip(ranks, ranks[1:])):
            bad.append(f"{who}: place in the queue went up: {ranks}")
    if report.references:
        firsts = sorted(ref["val_loss"] for ref in report.references.values())
        if len(firsts) > 1 and min(b - a for a, b in zip(firsts, firsts[1:])) <= tol:
            bad.append("two students' texts give the same first evaluation: the curve check cannot tell them apart")
    # Served in turn: trainings start in the order they were submitted.
    ok = [r for r in students if not r.errors]
    by_submit = sorted(ok, key=lambda r: r.submitted)
    starts = [r.started for r in by_submit]
    late = [(a.index + 1, b.index + 1) for a, b in zip(by_submit, by_submit[1:])
            if b.started < a.started - 0.5]
    if late:
        bad.append(f"trainings did not start in queue order (student pairs {late}); starts {starts}")
    if len(students) > 2 and not any(r.queued for r in students):
        bad.append("no student ever waited in the queue: the load did not exercise it")
    # Memory.
    growth = report.peak_mb - report.baseline_mb
    if growth > memory_per_student_mb * len(students):
        bad.append(f"memory grew by {growth:.0f} MB, more than {memory_per_student_mb:.0f} MB a student")
    kept = report.final_mb - report.baseline_mb
    if growth > 0 and kept > max(return_fraction * growth, 150.0):
        bad.append(f"memory did not return after the sessions ended: {kept:.0f} MB above the baseline "
                   f"(peak {growth:.0f} MB above)")
    if report.session_files_left:
        bad.append(f"{report.session_files_left} session checkpoint file(s) left after everyone left")
    return bad


def format_table(report: ClassroomReport, settings: dict[str, Any]) -> str:
    row = report.row()
    la = report.load_average
    lines = [
        "| students | trainings queued | completed | errors | page ready p50/p95 s | generations | gen p50 s "
        "| gen p95 s | baseline MB | peak MB | final MB | wall s | load avg (1/5/15 min) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {row['students']} | {row['queued']} | {row['completed']} | {row['errors']} | "
        f"{row['page_p50']:.1f} / {row['page_p95']:.1f} | {row['gen_n']} | "
        f"{row['gen_p50']:.2f} | {row['gen_p95']:.2f} | {row['baseline_mb']:.0f} | {row['peak_mb']:.0f} | "
        f"{row['final_mb']:.0f} | {row['seconds']:.0f} | {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} |",
        "",
        "settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
        f"generation latency = one /generate call of {GEN_TOKENS} tokens while other students' trainings "
        f"were queued or running (p95 over all generations: {row['gen_all_p95']:.2f} s)",
        "phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report.phases.items()),
        f"Gradio's file cache on disk afterwards (checkpoints offered for download): {report.cache_mb:.0f} MB",
    ]
    return "\n".join(lines)
