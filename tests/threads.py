"""torch's thread count, set for a while and put back, even when what runs in between fails.

Tiny models are a stream of microsecond ops: on a busy 2-core machine a second spinning
OpenMP thread makes each op wait for it, and tests run many times slower. The numbers do not
change with the count (each comparison runs both sides under the same setting). Used by the
fixtures in conftest.py and by code that runs beside a launched server (tests/classroom.py),
which must not import conftest (it sets the thread count when imported).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Run the block with `n` threads (None: leave the count, only put it back afterwards)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
