"""The server's training queue: turns across sessions, first come first served.

`slots` runs train at once; the others wait in order and see how many are ahead of them. A turn
at the head with a free slot starts only when `admit(turn)` agrees (the server's memory check
goes there): it answers True, False, or a sentence saying what the turn waits for. A turn whose
stop flag is raised while it waits leaves the queue. While others wait, a run may keep its slot
for `share_s` seconds; after that `turn.is_set()` (the trainer's stop signal) turns true and the
run pauses after its current step, to queue again with Resume.

`admit` is called with the queue's lock held, for the head of the line whenever a slot is free;
it must answer quickly and not raise. A turn carries what it needs: `turn.owner` (the session's
workspace) and `turn.plan` (what the run will use).

Usage, from a generator that streams the wait to the page::

    turn = queue.join(job, owner=ws, plan=spec)   # job: anything with a `stop` threading.Event
    try:
        for place in queue.wait(turn):            # until admitted or stopped
            show(place.ahead, place.reason)
        if turn.admitted:
            trainer.run(stop=turn)                # stops on Stop, or at the end of its share
    finally:
        queue.leave(turn)                         # leaves the line or frees the slot

No gradio here; thread-safe.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NamedTuple


class Place(NamedTuple):
    """Where a waiting turn stands. `ahead`: the runs training now plus the turns before it in
    the line (with one slot, "1 ahead" means next). `reason`: the admission hook's sentence
    when the hook holds this turn back, else None."""
    ahead: int
    reason: str | None = None


@dataclass(eq=False)
class Turn:
    """One training run's place in the queue. `owner` (the session's workspace) and `plan`
    (what the run will build: a `RunSpec`, or the trainer it resumes) are for `admit`."""
    job: Any
    owner: Any = None
    plan: Any = None
    joined: float = field(default_factory=time.monotonic)
    admitted: float | None = None  # when it got its slot (monotonic seconds)
    left: bool = False
    paused: bool = False  # its share of time ran out while others waited
    queue: "TrainQueue | None" = field(default=None, repr=False)

    def is_set(self) -> bool:
        """The trainer's stop signal: the job's own stop flag, or the end of its time share."""
        if self.job.stop.is_set():
            return True
        if self.queue is not None and self.queue.share_over(self):
            self.paused = True
            return True
        return False

    def trained_seconds(self) -> float:
        return 0.0 if self.admitted is None else time.monotonic() - self.admitted


def always_admit(turn: Turn) -> bool | str:
    return True


class TrainQueue:
    def __init__(self, slots: int, *, share_s: float | None = None,
                 admit: Callable[[Turn], bool | str] = always_admit):
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.slots = slots
        self.share_s = share_s
        self.admit = admit
        self._cond = threading.Condition()
        self._waiting: list[Turn] = []  # in order of arrival
        self._running: list[Turn] = []
        self._reason: dict[int, str] = {}  # id(turn) -> the hook's last sentence for it

    # --- the line -------------------------------------------------------------------------
    def join(self, job: Any, *, owner: Any = None, plan: Any = None) -> Turn:
        turn = Turn(job, owner=owner, plan=plan, queue=self)
        with self._cond:
            self._waiting.append(turn)
            self._cond.notify_all()
        return turn

    def wait(self, turn: Turn, poll_s: float = 0.5, *, heartbeat_s: float = 5.0) -> Iterator[Place]:
        """Yield the turn's place when it changes (and every `heartbeat_s`) until it is
        admitted, or it leaves because its job's stop flag was raised (then `turn.left`)."""
        last, last_at = None, 0.0
        while True:
            with self._cond:
                self._admit_locked()
                if turn.admitted is not None or turn.left:
                    return
                if turn.job.stop.is_set():
                    self._leave_locked(turn)
                    return
                place = self._place_locked(turn)
                if place == last and time.monotonic() - last_at < heartbeat_s:
                    self._cond.wait(poll_s)
                    continue
            last, last_at = place, time.monotonic()
            yield place

    def leave(self, turn: Turn) -> None:
        """Leave the line, or give the slot back. Safe to call more than once."""
        with self._cond:
            self._leave_locked(turn)

    # --- what the page and the trainer ask ----------------------------------------------------
    def place(self, turn: Turn) -> Place | None:
        """The turn's place while it waits; None once admitted or gone."""
        with self._cond:
            return self._place_locked(turn) if turn in self._waiting else None

    def withdraw(self, job: Any) -> bool:
        """Take `job`'s turn out of the line if it still waits (True); False if it runs or
        never queued. Atomic: a turn admitted meanwhile keeps its slot."""
        with self._cond:
            turn = next((t for t in self._waiting if t.job is job), None)
            if turn is not None:
                self._leave_locked(turn)
            return turn is not None

    def share_over(self, turn: Turn) -> bool:
        """Has this running turn used its share of time while someone else waits?"""
        if self.share_s is None or turn.admitted is None:
            return False
        with self._cond:
            others = any(not t.job.stop.is_set() for t in self._waiting)
        return others and turn.trained_seconds() > self.share_s

    def counts(self) -> tuple[int, int]:
        """(running, waiting)."""
        with self._cond:
            return len(self._running), len(self._waiting)

    # --- inside the lock ------------------------------------------------------------------------
    def _place_locked(self, turn: Turn) -> Place:
        return Place(len(self._running) + self._waiting.index(turn), self._reason.get(id(turn)))

    def _leave_locked(self, turn: Turn) -> None:
        for line in (self._waiting, self._running):
            if turn in line:
                line.remove(turn)
        self._reason.pop(id(turn), None)
        turn.left = True
        self._cond.notify_all()

    def _admit_locked(self) -> None:
        # Turns stopped while nobody drove their wait (a closed tab) leave first, so they never
        # hold up the line; then the head takes a free slot if the hook agrees. First come,
        # first served: nobody overtakes a head that waits for memory.
        for t in [t for t in self._waiting if t.job.stop.is_set()]:
            self._leave_locked(t)
        while self._waiting and len(self._running) < self.slots:
            head = self._waiting[0]
            verdict = self.admit(head)
            if verdict is not True:
                self._reason[id(head)] = verdict if isinstance(verdict, str) else None
                return
            self._waiting.pop(0)
            self._reason.pop(id(head), None)
            head.admitted = time.monotonic()
            self._running.append(head)
            self._cond.notify_all()
