"""Students past the server's memory budget: nothing lost, resident memory within the budget.

    python benchmarks/load_budget.py [--budget-mb 4000] [--max-params 40000000] [--students 7]

Launches `python app.py` on 127.0.0.1 with PLAYGROUND_MEMORY_BUDGET_MB and
PLAYGROUND_MAX_TRAIN_PARAMETERS set, then opens sessions one after another (each its own
gradio_client session with a heartbeat, as a browser tab) that each train the largest model
the server allows (character tokens, 768 wide, as many layers as fit) for a few iterations
and save a checkpoint, until their models together are well past the budget. It prints the
server's resident memory after each session and what each student saw. Then every student
comes back and saves again: a session whose model was spilled to disk is read back, and its
weights and AdamW state must equal, bit for bit, what it saved before it was spilled.

Checked: no request failed, every student's model survived, every spilled session came back
bit-exact, and the server's peak resident memory (VmRSS, sampled every 0.2 s) stayed within
the budget. The run is test support (tests/over_budget.py); `tests/test_memory_budget.py` runs
the same with a small budget.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The run is test support, shared with tests/test_memory_budget.py; it lives in tests/ so
# that tests import nothing from benchmarks/.
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from over_budget import problems, run, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-mb", type=int, default=4000)
    parser.add_argument("--max-params", type=int, default=40_000_000)
    parser.add_argument("--students", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=2)
    args = parser.parse_args()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        people, report = run(budget_mb=args.budget_mb, max_params=args.max_params, students=args.students,
                             workdir=Path(tmp), iterations=args.iterations)
    print()
    print(table(people, report))
    print(f"\nwall {time.monotonic() - t0:.0f} s")
    bad = problems(people, report)
    print("\n".join(["", "PROBLEMS:", *bad]) if bad else "\nOK: nothing lost, all spilled sessions bit-exact, "
          "peak within the budget")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
