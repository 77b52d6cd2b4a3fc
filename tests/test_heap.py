"""While a run trains, freed memory stays in the heap for the next step; when a run ends its
free pages go back to the kernel, and when the last run ends glibc's defaults come back."""
from __future__ import annotations

import platform
import resource
import threading

import pytest
import torch

from gpt_core import heap
from gpt_core.config import TrainConfig
from gpt_core.model import GPTModel
from gpt_core.prepare import make_optimizer
from gpt_core.schedule import EpochLoaderSchedule
from gpt_core.train import Trainer
from gpt_core.train_events import StepEvent

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc")


class Calls:
    """Stands in for libc: records mallopt and malloc_trim."""
    def __init__(self):
        self.log = []

    def mallopt(self, param, value):
        self.log.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.log.append(("malloc_trim", pad))
        return 1


def test_nested_and_concurrent_runs_share_one_setting_and_the_last_restores_it(monkeypatch):
    calls = Calls()
    monkeypatch.setattr(heap, "glibc", lambda: calls)
    kept = [("mallopt", heap.M_MMAP_MAX, 0), ("mallopt", heap.M_TRIM_THRESHOLD, heap.NEVER)]
    restored = [("mallopt", heap.M_MMAP_MAX, heap.DEFAULT_MMAP_MAX),
                ("mallopt", heap.M_TRIM_THRESHOLD, heap.DEFAULT_TRIM_THRESHOLD), ("malloc_trim", 0)]
    inside, release = threading.Event(), threading.Event()

    def other_run():
        with heap.training_heap():
            inside.set()
            release.wait(10)

    with heap.training_heap():
        assert calls.log == kept and heap.runs_keeping_heap() == 1
        worker = threading.Thread(target=other_run)
        worker.start()
        assert inside.wait(10)
        assert heap.runs_keeping_heap() == 2 and calls.log == kept
    # The other run still trains: the setting stays, what this run freed goes back now.
    assert heap.runs_keeping_heap() == 1 and calls.log == kept + [("malloc_trim", 0)]
    release.set()
    worker.join(10)
    assert heap.runs_keeping_heap() == 0 and calls.log == kept + [("malloc_trim", 0)] + restored


def test_an_error_inside_still_restores(monkeypatch):
    calls = Calls()
    monkeypatch.setattr(heap, "glibc", lambda: calls)
    with pytest.raises(RuntimeError):
        with heap.training_heap():
            raise RuntimeError("a step failed")
    assert heap.runs_keeping_heap() == 0 and calls.log[-1] == ("malloc_trim", 0)


def test_with_another_c_library_it_does_nothing(monkeypatch):
    monkeypatch.setattr(heap.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert heap.glibc() is None
    with heap.training_heap():
        assert heap.runs_keeping_heap() == 0
    assert heap.share_one_heap() is False


def test_one_heap_is_asked_for_unless_the_environment_chose(monkeypatch):
    calls = Calls()
    monkeypatch.setattr(heap, "glibc", lambda: calls)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert heap.share_one_heap() is True and calls.log == [("mallopt", heap.M_ARENA_MAX, 1)]
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # glibc read it at start; it is the operator's
    assert heap.share_one_heap() is False and calls.log == [("mallopt", heap.M_ARENA_MAX, 1)]


def _faults_per_step(steps: int = 6) -> tuple[list[int], list[int]]:
    """A run of `steps` steps of a model with a 50,257-token embedding (its gradients, 51 MB each,
    are above glibc's largest mmap threshold): the page faults of each step, and how many runs
    held the heap at each event."""
    torch.manual_seed(0)
    model = GPTModel({"vocab_size": 50257, "context_length": 32, "emb_dim": 256, "n_heads": 4, "n_layers": 1,
                      "drop_rate": 0.0, "qkv_bias": False})
    batches = [(torch.randint(0, 50257, (2, 32)), torch.randint(0, 50257, (2, 32))) for _ in range(steps)]
    config = TrainConfig(num_epochs=1, eval_freq=10**9, eval_iter=1, sample_tokens=0)
    trainer = Trainer(model, make_optimizer(model, config), EpochLoaderSchedule(batches, batches[:1], 1),
                      config=config, device="cpu")
    faults, held, last = [], [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for event in trainer.run():
        held.append(heap.runs_keeping_heap())
        if isinstance(event, StepEvent):
            now = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            faults.append(now - last)
            last = now
    return faults, held


def test_the_trainers_run_holds_the_heap_while_it_trains():
    _, held = _faults_per_step(2)
    assert all(n == 1 for n in held) and heap.runs_keeping_heap() == 0


FAULTS_PER_STEP = """
import sys, threading
sys.path.insert(0, "tests")
from gpt_core import heap
if sys.argv[2] == "plain":
    heap.glibc = lambda: None  # glibc's defaults throughout
if sys.argv[1] == "worker thread":
    heap.share_one_heap()  # as app.py does, before the server's threads start
import test_heap
out = []
train = lambda: out.append(test_heap._faults_per_step(10)[0])
if sys.argv[1] == "worker thread":
    worker = threading.Thread(target=train)
    worker.start()
    worker.join()
else:
    train()
print(*out[0])
"""
GRADIENT_PAGES = 50257 * 256 * 4 // 4096  # one embedding-sized gradient: 12,564 pages


def _faults_in_a_fresh_process(where: str, keep_heap: bool) -> list[int]:
    """Each in a process of its own: what glibc's heap holds depends on what ran before."""
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, where, "kept" if keep_heap else "plain"],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return [int(n) for n in done.stdout.split()]


@glibc
def test_a_training_run_faults_its_pages_in_once():
    """Its later steps reuse the first steps' pages; with the setting off, every step faults
    its large buffers in again."""
    import statistics

    kept = _faults_in_a_fresh_process("main thread", keep_heap=True)
    assert statistics.median(kept[-5:]) < GRADIENT_PAGES // 4, kept
    plain = _faults_in_a_fresh_process("main thread", keep_heap=False)
    assert statistics.median(plain[-5:]) > GRADIENT_PAGES, plain  # the check above can fail


@glibc
def test_a_run_in_a_servers_worker_thread_reuses_its_pages_with_one_heap():
    """The app trains in worker threads. Each would get a heap of its own from glibc, whose
    large blocks are mmapped whatever training_heap sets; with share_one_heap, as app.py calls
    it, the worker draws from the main heap, and once it has grown its steps fault almost none."""
    import statistics

    faults = _faults_in_a_fresh_process("worker thread", keep_heap=True)
    assert statistics.median(faults[-5:]) < GRADIENT_PAGES // 4, faults
