"""Freed memory kept for the next step while a run trains (glibc's malloc).

Each training step allocates and frees the same large buffers: activations, gradients, the
bfloat16 casts of the weights, the head's blocks. glibc hands blocks above its mmap threshold
(at most 32 MB; the app sets 4 MB) back to the kernel as soon as they are freed, and gives back
the free top of its heap past a trim threshold, so every step faults the same pages in again:
120,000-170,000 page faults a step for the book's 124M model. In bfloat16 those faults are a
fifth of the step: 190-200 tokens/s with them, 240 without (`benchmarks/bench_precision.py`,
and `ru_minflt` counted per step).

While at least one run trains, `training_heap()` takes every block from the heap and trims
none (mallopt M_MMAP_MAX=0, M_TRIM_THRESHOLD past any size), so the pages freed by one step
serve the next. When a run ends it gives every free page back (`malloc_trim(0)`), so what that
run freed leaves the process at once even while another student's run trains (that run faults
its step's pages in once more); when the last run ends glibc's defaults come back. The pages
kept while training are the runs' own, already counted by their reservations in the app's
memory budget.

A thread other than the main one gets a heap of its own from glibc (an arena of at most 64 MB),
whose large blocks are mmapped whatever the setting; a server that trains in worker threads
calls `share_one_heap()` before it starts them, so every thread draws from the main heap, which
the setting covers (and which `malloc_trim` gives back from as well).

With another C library it does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import threading
from typing import Iterator

# mallopt's parameters (malloc.h) and glibc's documented defaults, restored after a run.
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
# mallopt takes a C int, which glibc reads as a size_t here: -1 is the largest, never trim. (Its
# largest int, 2 GB, is less than the 124M model's step frees at once: the heap trimmed each step.)
NEVER = -1

_lock = threading.Lock()
_runs = 0


def glibc() -> ctypes.CDLL | None:
    """glibc's malloc controls (mallopt, malloc_trim) through ctypes; None with another C library."""
    return _loaded_glibc() if platform.libc_ver()[0] == "glibc" else None


@functools.lru_cache(maxsize=1)
def _loaded_glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes, libc.malloc_trim.argtypes = [ctypes.c_int, ctypes.c_int], [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


def share_one_heap() -> bool:
    """Have every thread started from now on allocate from the main heap (M_ARENA_MAX=1).
    False where it does not apply (not glibc, or MALLOC_ARENA_MAX chose for the process)."""
    libc = glibc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, 1))


def runs_keeping_heap() -> int:
    """How many runs hold the heap now (tests)."""
    return _runs


@contextlib.contextmanager
def training_heap() -> Iterator[None]:
    """Keep freed memory in the heap while the block runs; nested and concurrent runs share it."""
    global _runs
    libc = glibc()
    if libc is None:
        yield
        return
    with _lock:
        _runs += 1
        if _runs == 1:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, NEVER)
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
            libc.malloc_trim(0)
