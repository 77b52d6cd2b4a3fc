"""One memory budget for the whole server (DESIGN decision 9).

Everything large that a request is about to allocate is reserved here first, by what it will
cost: a session's model with its AdamW state, a run's activations (from batch x context), a
checkpoint being read, a shared GPT-2, a throwaway model timed for an estimate. A reservation
that does not fit first asks `make_room` (the registry spills idle sessions to disk) and is
then either refused with a sentence that says how much fits now, or reported as "wait": the
training queue keeps such a run waiting until running ones end.

The budget is counted against the process's resident memory: `baseline_bytes` (the server with
its imports, measured at start) plus a fixed headroom for what is not reserved (the page,
plots, tokenising, generation's small caches) plus the reservations must stay under `limit`.
"""
from __future__ import annotations

import gc
import logging
import os
import threading
from dataclasses import dataclass
from typing import Callable

from gpt_core.heap import glibc
from gpt_core.units import GB, MB, format_bytes

from .limits import env_number

log = logging.getLogger("playground.memory")

# Bytes a parameter of a trained model holds between runs: float32 weights, gradients and
# AdamW's two moments (the gradients are kept: `zero_grad` sets them to None only at the next
# step).
TRAINED_BYTES_PER_PARAMETER = 16
# What the server allocates outside any reservation while it serves: Gradio, a plot, a
# request's text, a generation's KV cache. Measured: ~250 MB above the baseline with a class.
DEFAULT_HEADROOM = 512 * MB
# Kept free below the limit when the resident memory is measured (see `try_reserve`): what a
# request allocates beside its reservation for a moment (a plot, a response, a step's loss).
MEASURED_MARGIN = 128 * MB


class MemoryBudgetError(RuntimeError):
    """This would take the server past its memory budget; the message says what fits."""


@dataclass(frozen=True)
class Reservation:
    key: str
    nbytes: int
    what: str


def machine_memory_bytes() -> int:
    """The memory this process may use: the container's limit (cgroup v2 or v1) when there is
    one, else the machine's total."""
    limits = []
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = open(path).read().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:  # "max" or a huge number: no limit
            limits.append(int(raw))
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    return min(limits) if limits else 16 * GB


def resident_bytes() -> int:
    """This process's resident memory now (VmRSS), or 0 where /proc is not there."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class MemoryBudget:
    """Reservations by key against one limit. Thread-safe.

    `make_room(nbytes, exclude)` is called when a reservation does not fit: it frees what it
    can (spilling idle sessions other than `exclude`) and returns how many bytes it freed.

    `measure` (the server passes `resident_bytes`) reads the memory the process holds now.
    Reservations count what is about to be allocated, but not what the allocator keeps after a
    free (fragmented heaps, per-thread arenas): on a busy server that drift grew ~150 MB past
    the headroom. So a reservation that would take the measured memory past the limit makes
    room too. The measure only ever spills idle sessions (which loses nothing); refusals are
    decided by the reservations alone, which do not depend on the allocator's mood.
    """

    def __init__(self, limit_bytes: int, *, baseline_bytes: int = 0, headroom_bytes: int = DEFAULT_HEADROOM,
                 measure: Callable[[], int] | None = None):
        if limit_bytes <= 0:
            raise ValueError(f"a memory budget must be positive, got {limit_bytes}")
        self.limit = int(limit_bytes)
        self.baseline = int(baseline_bytes)
        self.headroom = int(headroom_bytes)
        self.measure = measure
        self.make_room: Callable[[int, str | None], int] | None = None
        self._lock = threading.RLock()
        self._held: dict[str, Reservation] = {}

    # --- what is held ------------------------------------------------------------------
    @property
    def reserved(self) -> int:
        with self._lock:
            return sum(r.nbytes for r in self._held.values())

    @property
    def capacity(self) -> int:
        """What reservations may add up to in all."""
        return max(0, self.limit - self.baseline - self.headroom)

    @property
    def available(self) -> int:
        return max(0, self.capacity - self.reserved)

    def held(self, key: str) -> int:
        with self._lock:
            r = self._held.get(key)
            return r.nbytes if r else 0

    def held_by(self, prefix: str) -> int:
        with self._lock:
            return sum(r.nbytes for k, r in self._held.items() if k.startswith(prefix))

    def summary(self) -> str:
        return (f"{format_bytes(self.reserved)} reserved of {format_bytes(self.capacity)} "
                f"(limit {format_bytes(self.limit)}, server {format_bytes(self.baseline)}, "
                f"headroom {format_bytes(self.headroom)})")

    # --- reserving ---------------------------------------------------------------------
    def fits(self, nbytes: int, *, key: str | None = None) -> bool:
        """Whether `nbytes` under `key` fits now (what `key` holds already counts as free)."""
        with self._lock:
            return nbytes - (self.held(key) if key else 0) <= self.available

    def could_ever_fit(self, nbytes: int, *, pinned: int = 0) -> bool:
        """Whether `nbytes` would fit once everything but `pinned` bytes were freed."""
        return nbytes <= self.capacity - pinned

    def try_reserve(self, key: str, nbytes: int, *, what: str, owner: str | None = None) -> bool:
        """Reserve `nbytes` under `key` (replacing what `key` held) if it fits, making room by
        spilling idle sessions other than `owner` if needed. False if it still does not fit."""
        nbytes = max(0, int(nbytes))
        with self._lock:
            if self.fits(nbytes, key=key) and not self.over_measured(nbytes - self.held(key)):
                self._held[key] = Reservation(key, nbytes, what)
                return True
        if self.make_room is not None:
            # Outside the lock: spilling writes files and releases other keys. A spill gives
            # back less than it held when the heap stays fragmented, so the measure is read
            # again after each (a few rounds at most).
            for _ in range(3):
                adding = nbytes - self.held(key)
                need = max(adding - self.available, self.over_measured(adding))
                if need <= 0 or not (freed := self.make_room(need, owner)):
                    break
                log.info("spilled %s to make room for %s", format_bytes(freed), what)
        with self._lock:
            if self.fits(nbytes, key=key):
                self._held[key] = Reservation(key, nbytes, what)
                return True
        return False

    def over_measured(self, adding: int) -> int:
        """By how many bytes the measured resident memory plus `adding` new bytes would pass
        the limit less MEASURED_MARGIN (0: it would not, or nothing is measured)."""
        if self.measure is None or adding <= 0:
            return 0
        return max(0, self.measure() + adding - (self.limit - MEASURED_MARGIN))

    def reserve(self, key: str, nbytes: int, *, what: str, owner: str | None = None) -> None:
        """`try_reserve`, or MemoryBudgetError with a sentence that says what fits now."""
        if not self.try_reserve(key, nbytes, what=what, owner=owner):
            raise MemoryBudgetError(self.refusal(nbytes, what=what, key=key))

    def refusal(self, nbytes: int, *, what: str, key: str | None = None) -> str:
        free = self.available + (self.held(key) if key else 0)
        return (f"The server has no memory left for {what}: it needs about {format_bytes(nbytes)} and "
                f"{format_bytes(free)} is free now ({format_bytes(self.capacity)} in all for everyone's "
                f"models). Choose a smaller model, batch size or context length, or try again when "
                f"other runs have finished.")

    def release(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)

    def release_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._held if k.startswith(prefix)]:
                del self._held[key]


def budget_from_env(environ: dict[str, str] | None = None) -> MemoryBudget:
    """The server's budget: PLAYGROUND_MEMORY_BUDGET_MB, or 80% of the machine's (or the
    container's) memory; the baseline is this process's resident memory now, and its resident
    memory is measured at each reservation."""
    budget_mb = env_number("PLAYGROUND_MEMORY_BUDGET_MB", whole=False, unit="MB", environ=environ)
    headroom_mb = env_number("PLAYGROUND_MEMORY_HEADROOM_MB", whole=False, unit="MB", environ=environ)
    limit = int(budget_mb * MB) if budget_mb is not None else int(machine_memory_bytes() * 0.8)
    headroom = int(headroom_mb * MB) if headroom_mb is not None else DEFAULT_HEADROOM
    return MemoryBudget(limit, baseline_bytes=resident_bytes(), headroom_bytes=headroom, measure=resident_bytes)


# --- giving freed memory back to the system ------------------------------------------------
def return_freed_memory_promptly(threshold_bytes: int = 4 << 20) -> bool:
    """Have glibc's malloc serve blocks of `threshold_bytes` and more with their own mmap.

    A session's weights and AdamW state are tensors of a few MB to a few hundred MB. glibc
    raises its mmap threshold (up to 32 MB) after the first such block is freed, and the
    next ones then come from per-thread heaps that are rarely given back: with 4 students
    the server kept ~590 MB after they left. With a fixed 4 MB threshold it kept ~70 MB
    (benchmarks/load_classroom.py). Smaller blocks (a step's activations) are unaffected.
    Returns False where it does not apply (not glibc) or MALLOC_MMAP_THRESHOLD_ is set.
    """
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    libc = glibc()
    try:
        return libc is not None and bool(libc.mallopt(-3, int(threshold_bytes)))  # -3: M_MMAP_THRESHOLD
    except AttributeError:
        return False


def release_freed_memory() -> bool:
    """Collect, then give the heap's free pages back to the system now (glibc's malloc_trim).

    A refused upload's pickle leaves many small freed blocks that would stay in this process
    until other requests reuse them: three refused checkpoints once held 6.5 GB. Returns False
    where it does not apply (not glibc)."""
    gc.collect()
    libc = glibc()
    try:
        return libc is not None and bool(libc.malloc_trim(0))
    except AttributeError:
        return False
