"""The server's training queue: first come first served across sessions, a place that falls
live, Stop while waiting leaves the line, the cap on one run's steps, and the time share that
pauses a long run when others wait. The queue alone, the Train tab's handlers with tiny models,
and the launched app through gradio_client."""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from students import queue_place as ahead
from playground import train_estimate, train_tab
from playground.limits import Limits
from playground.options import START_FROM
from playground.session import Job, Workspace, WorkspaceError
from playground.train_queue import Place, TrainQueue
from test_app_handlers import ui_form

pytestmark = pytest.mark.usefixtures("one_thread")


def job() -> Job:
    return Job(id="j", label="train", started=time.monotonic())


@pytest.fixture()
def queue(monkeypatch) -> TrainQueue:
    """One training slot for the handlers, as on a 2-core server."""
    q = TrainQueue(1)
    monkeypatch.setattr(train_tab, "TRAIN_QUEUE", q)
    return q


def settings(monkeypatch, **changes) -> None:
    monkeypatch.setattr(train_estimate, "SETTINGS", dataclasses.replace(train_estimate.SETTINGS, **changes))


@pytest.fixture()
def two(verdict_text):
    spaces = []
    for name in ("a", "b"):
        w = Workspace(limits=Limits(max_corpus_chars=100_000))
        w.set_text(verdict_text[:2000], name=f"text {name}")
        spaces.append(w)
    yield spaces
    for w in spaces:
        w.close()


def train(ws: Workspace, **overrides):
    return train_tab.train(ws, ui_form(**overrides), START_FROM[0])


# --- the queue alone ------------------------------------------------------------------------------
def test_turns_are_served_in_order_and_places_only_fall():
    q = TrainQueue(1)
    first, second, third = (q.join(job()) for _ in range(3))
    assert list(q.wait(first)) == [] and first.admitted is not None
    waits = {t: q.wait(t, poll_s=0.01) for t in (second, third)}
    assert next(waits[second]) == Place(1) and next(waits[third]) == Place(2)
    q.leave(first)  # the run ends: the next one goes, the last moves up
    assert list(waits[second]) == [] and second.admitted is not None
    assert next(waits[third]) == Place(1)
    assert q.counts() == (1, 1)


def test_a_stopped_turn_leaves_the_line_even_when_nobody_drives_its_wait():
    q = TrainQueue(1)
    running, gone, next_one = q.join(job()), q.join(job()), q.join(job())
    list(q.wait(running))
    assert next(q.wait(next_one)) == Place(2)
    gone.job.request_stop()  # a closed tab: its handler is not waiting on it
    assert next(q.wait(next_one)) == Place(1) and gone.left
    assert q.withdraw(next_one.job) and next_one.left and not q.withdraw(running.job)


def test_the_admission_hook_holds_the_head_back_with_its_reason():
    answers = ["the server's memory is full: 2.0 GB in use of 2.0 GB"]
    q = TrainQueue(2, admit=lambda turn: answers[0])
    turn, behind = q.join(job()), q.join(job())
    assert next(q.wait(turn, poll_s=0.01)) == Place(0, answers[0])
    assert next(q.wait(behind, poll_s=0.01)) == Place(1)  # nobody overtakes the head
    answers[0] = True
    assert list(q.wait(turn)) == [] and list(q.wait(behind)) == []


# --- the Train tab's handlers ----------------------------------------------------------------------
def test_a_second_session_waits_with_its_place_then_trains_after_the_first(two, queue):
    a, b = two
    run_a = train(a, num_epochs=2)
    status_a = next(run_a)[0]
    assert status_a.startswith("Preparing")
    run_b = train(b, num_epochs=1)
    status, progress, _chart, _metrics, _samples, download, train_btn, resume_btn, stop_btn = next(run_b)
    assert ahead(status) == 1 and "trains 1 at a time" in status, status
    assert "1 ahead of you" in progress and "Waiting… (1 ahead)" == train_btn["value"]
    assert train_btn["interactive"] is False and resume_btn["interactive"] is False
    assert stop_btn["interactive"] is True  # Stop leaves the queue
    assert b.own is None  # nothing is built while it waits
    assert list(run_a)[-1][0].startswith("Done")
    rest = list(run_b)
    assert rest[0][0].startswith("Preparing") and rest[-1][0].startswith("Done")
    assert rest[-1][6] == {"__type__": "update", "value": "Train", "interactive": True}
    assert rest[-1][8]["interactive"] is False
    assert queue.counts() == (0, 0) and a.job is None and b.job is None


def test_stop_while_waiting_leaves_the_queue_and_says_nothing_was_trained(two, queue):
    a, b = two
    run_a = train(a, num_epochs=50)
    next(run_a)
    run_b = train(b)
    assert ahead(next(run_b)[0]) == 1
    assert train_tab.request_stop(b) == train_tab.LEFT_QUEUE
    last = list(run_b)[-1]
    assert last[0] == train_tab.LEFT_QUEUE and last[6]["value"] == "Train" and last[6]["interactive"]
    assert b.job is None and b.own is None and queue.counts() == (1, 0)
    assert list(train_tab.after_stop(b))[-1][0] == train_tab.LEFT_QUEUE
    assert train_tab.stop(b) == train_tab.NOTHING_TRAINING
    # The API route does the same in one call (from another thread, as the server calls it);
    # the running session is untouched.
    run_b = train(b)
    next(run_b)
    said = []
    stopper = threading.Thread(target=lambda: said.append(train_tab.stop(b)))
    stopper.start()
    assert list(run_b)[-1][0] == train_tab.LEFT_QUEUE
    stopper.join()
    assert said == [train_tab.LEFT_QUEUE] and b.job is None
    assert a.job is not None and not a.job.stop.is_set()
    assert train_tab.request_stop(a).startswith("Stopping after the current step")
    assert list(run_a)[-1][0].startswith("Stopped after step")


def test_a_run_longer_than_the_server_allows_is_refused_before_anything_is_built(two, queue, monkeypatch):
    a, _ = two
    settings(monkeypatch, max_run_steps=40)
    with pytest.raises(WorkspaceError, match="choose at most 40 iterations"):
        next(train(a, iterations=1_000_000))
    batches = a.stats("char", context_length=16, stride=16, batch_size=8).train_batches
    with pytest.raises(WorkspaceError, match=f"plans {batches * 50:,} optimizer steps.*at most {40 // batches} epochs"):
        next(train(a, num_epochs=50))
    assert a.own is None and a.job is None and queue.counts() == (0, 0)
    assert f"at most {40 // batches} epochs" in train_tab.estimate(a, ui_form(num_epochs=50))
    assert list(train(a, iterations=40))[-1][0].startswith("Done")  # the largest value that fits runs


def test_a_long_run_pauses_for_a_waiting_student_and_resumes_after_queueing_again(two, monkeypatch):
    a, b = two
    q = TrainQueue(1, share_s=0.5)
    monkeypatch.setattr(train_tab, "TRAIN_QUEUE", q)
    run_a = train(a, num_epochs=500)
    next(run_a)
    while a.own is None or a.own.trainer.state.step < 2:  # A trains alone: no pause yet
        next(run_a)
    time.sleep(0.6)
    assert not q.share_over(a.ui["turn"])  # nobody waits: the run keeps its slot
    run_b = train(b, num_epochs=1)
    assert ahead(next(run_b)[0]) == 1
    last = list(run_a)[-1]
    step = a.own.trainer.state.step
    assert last[0] == (f"Paused after step {step + 1:,} to give the next student a turn after 0.5 s; "
                       "press **Resume** to queue again."), last[0]
    assert last[7]["interactive"] is True and not a.own.trainer.finished and a.job is None
    resumed = train_tab.resume(a)  # queues again, behind B
    assert ahead(next(resumed)[0]) == 1
    q.share_s = 60.0  # B, now with A waiting, would be paused in turn after its share
    assert list(run_b)[-1][0].startswith("Done")
    for update in resumed:
        if a.own.trainer.state.step > step + 2:
            break
    assert a.own.trainer.state.step > step + 2  # continued where it paused
    resumed.close()
    assert q.counts() == (0, 0)


# --- the launched app ------------------------------------------------------------------------------
@pytest.mark.slow
def test_through_the_api_a_queued_client_sees_its_place_and_leaves_with_stop(tmp_path):
    from gradio_client import Client

    from app_server import SMALL_SERVER, AppServer
    from test_app_client import DEMO, wait_for

    with AppServer(tmp_path, env=SMALL_SERVER) as server:
        a, b = Client(server.url, verbose=False), Client(server.url, verbose=False)
        job_a = a.submit(**{**DEMO, "num_epochs": 100}, api_name="/train")
        wait_for(lambda: any(o[0].startswith("Training") for o in job_a.outputs()), 120, "the first run to start")
        job_b = b.submit(**{**DEMO, "num_epochs": 1}, api_name="/train")
        wait_for(lambda: job_b.outputs(), 60, "the second run to answer")
        assert ahead(job_b.outputs()[0][0]) == 1, job_b.outputs()[0][0]
        assert b.predict(api_name="/stop") == train_tab.LEFT_QUEUE
        wait_for(job_b.done, 30, "the second run to end")
        assert job_b.outputs()[-1][0] == train_tab.LEFT_QUEUE
        assert not job_a.done() and a.predict(api_name="/stop").startswith("Stopped after step")
