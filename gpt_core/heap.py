"""Freed memory kept for the next step while a run trains (glibc's malloc).

Each training step allocates and frees the same large buffers: activations, gradients, the
bfloat16 casts of the weights, the head's blocks. glibc hands blocks above its mmap threshold
(at most 32 MB) back to the kernel as soon as they are freed, and gives back the free top of
its heap past a trim threshold, so every step faults the same pages in again: 110,000-150,000
page faults a step for the book's 124M model, and 10-15% of a bfloat16 step on this project's
CPUs (measured with `benchmarks/bench_precision.py`, and by counting `ru_minflt` per step).

While at least one run trains, `training_heap()` takes every block from the heap and trims
none (mallopt M_MMAP_MAX=0, M_TRIM_THRESHOLD at its largest), so the pages freed by one step
serve the next. When the last run ends it restores glibc's defaults and gives every free page
back (`malloc_trim(0)`), so the server's resident memory falls as it did before: the pages
kept were the run's own, already counted by its reservation in the app's memory budget.

Elsewhere (another C library, `GPT_CORE_KEEP_HEAP=0`) it does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import threading
from typing import Iterator

# mallopt's parameters (malloc.h) and glibc's documented defaults, restored after a run.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
LARGEST_INT = 2**31 - 1  # mallopt takes a C int

_lock = threading.Lock()
_runs = 0


def _libc() -> ctypes.CDLL | None:
    if os.environ.get("GPT_CORE_KEEP_HEAP", "1") == "0" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes, libc.malloc_trim.argtypes = [ctypes.c_int, ctypes.c_int], [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


def runs_keeping_heap() -> int:
    """How many runs hold the heap now (tests)."""
    return _runs


@contextlib.contextmanager
def training_heap() -> Iterator[None]:
    """Keep freed memory in the heap while the block runs; nested and concurrent runs share it."""
    global _runs
    libc = _libc()
    if libc is None:
        yield
        return
    with _lock:
        _runs += 1
        if _runs == 1:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, LARGEST_INT)
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)
