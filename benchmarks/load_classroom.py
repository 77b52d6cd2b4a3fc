"""A classroom at once: N simulated students drive the launched app through gradio_client.

Each student is its own client (its own Gradio session, heartbeat included, as a browser
tab): uploads a different text, trains the fast demo preset for one short epoch, generates
with their model while the others still train, scores their validation text, and leaves
(closes the client, which fires the app's unload). Meanwhile a thread samples the server's
resident memory (VmRSS in /proc/PID/status).

Checked, and printed as a table:
  * every student saw their own text (name, size, first characters) and the curve of their
    own text: the first batch loss and the first evaluation equal a run of the same options
    on that student's text computed here with gpt_core (no dropout, so runs are exact);
  * queued students saw their place in the queue fall, and trainings started in the order
    they were queued; no request failed or was lost;
  * generation latency (p50 / p95) while trainings run;
  * memory: baseline (after one warm-up session), peak, and final once everyone left; the
    sessions' checkpoint folders are removed.

    python benchmarks/load_classroom.py                  # 20 students, launches app.py
    python benchmarks/load_classroom.py --students 30 --env PLAYGROUND_TRAIN_CONCURRENCY=2
    python benchmarks/load_classroom.py --url http://127.0.0.1:7860   # a running server

The students, the launcher and the checks are test support (tests/classroom.py,
tests/classroom_checks.py, tests/app_server.py): tests/test_classroom.py runs the same code
with 5 students.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The classroom is test support, shared with tests/test_classroom.py; it lives in tests/ so
# that tests import nothing from benchmarks/.
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app_server import AppServer  # noqa: E402
from classroom import percentile, run_classroom  # noqa: E402
from classroom_checks import check, format_table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=20)
    p.add_argument("--chars", type=int, default=9_000, help="characters of each student's text")
    p.add_argument("--url", help="drive a server already running (memory needs --pid)")
    p.add_argument("--pid", type=int, help="process id of the server given by --url")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="environment of the launched app (e.g. PLAYGROUND_TRAIN_CONCURRENCY=2)")
    p.add_argument("--no-reference", action="store_true", help="skip recomputing each first step here")
    args = p.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="classroom-") as tmp:
        if args.url:
            if not args.pid:
                p.error("--url needs --pid (the server's process id, for its memory)")
            server, url, pid, files_dir = None, args.url, args.pid, None
        else:
            server = AppServer(tmp, env=env)
            url, pid, files_dir = server.url, server.pid, server.files_dir
            print(f"app.py served {url} after {server.startup_seconds:.1f} s (pid {pid})", flush=True)
        try:
            report = run_classroom(url, pid, args.students, workdir=Path(tmp), chars=args.chars,
                                   files_dir=files_dir, compute_references=not args.no_reference,
                                   cache_dir=server.gradio_dir if server is not None else None)
        finally:
            if server is not None:
                server.stop()
                if "Traceback" in server.log():
                    print("server log:\n" + server.log()[-4000:])
    import torch

    settings = {"cores": os.cpu_count(), "torch": torch.__version__, **env}
    print(format_table(report, settings))
    print()
    print("| student | queue places seen | waited s | trained s | steps | first val loss | gen p50 s | eval loss |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in report.students:
        ranks = ",".join(str(rank) for _, rank in r.ranks) or "-"
        gens = [s for _, s, _, _ in r.generations]
        print(f"| {r.name} | {ranks[:40]} | {r.started - r.submitted:.1f} | {r.finished - r.started:.1f} | "
              f"{r.steps_done} | {(r.eval_val or [math.nan])[0]:.4f} | {percentile(gens, 50):.2f} | "
              f"{r.eval_loss if r.eval_loss is not None else math.nan:.3f} |")
    failures = check(report)
    print()
    if failures:
        print("FAILED:")
        for f in failures:
            print(" -", f)
        return 1
    print("All checks passed: own texts and curves, queue order and places, no lost request, "
          "memory back near the baseline, no session files left.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
