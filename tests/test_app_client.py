"""The app launched on 127.0.0.1 and driven through its API with gradio_client, as a script
or a second program would: live training updates, stop, generation with each sampler,
sessions kept apart, the training queue, and bad input refused with a message."""
from __future__ import annotations

import json
import os
import pickle
import time

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from app_server import SMALL_SERVER  # noqa: E402
from students import queue_place  # noqa: E402
from playground.options import DEFAULT_PRESET_LABEL, START_FROM, TRAIN_DEFAULTS  # noqa: E402

DEMO = dict(tokenizer="GPT-2 BPE", preset=DEFAULT_PRESET_LABEL, context_length=64, emb_dim=128, n_heads=4,
            n_layers=2, drop_rate=0.1, qkv_bias=False, **TRAIN_DEFAULTS["demo"], start_from=START_FROM[0])


@pytest.fixture(scope="module")
def server(launch_app):
    return launch_app("app", env=SMALL_SERVER)


def client(server) -> Client:
    return Client(server.url, verbose=False)


def train(c: Client, **changes):
    return c.submit(**{**DEMO, **changes}, api_name="/train")


def points(outputs) -> list[int]:
    """Validation points in each loss-chart update a training job sent."""
    counts = []
    for out in outputs:
        fig = json.loads(out[2]["plot"])
        val = next(t for t in fig["data"] if t.get("name") == "Validation loss")
        counts.append(len(val.get("x") or []))
    return counts


def wait_for(pred, timeout: float = 120.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def trained(server):
    """A session that trained the demo preset for a few steps, then stopped."""
    c = client(server)
    job = train(c)
    wait_for(lambda: sum(1 for n in points(job.outputs()) if n > 0) >= 3, what="three chart updates")
    assert c.predict(api_name="/stop").startswith("Stopped after step")
    wait_for(job.done, 30, "the run to end")
    return c, job


def test_training_streams_chart_updates_and_stops(trained):
    c, job = trained
    outputs = job.outputs()
    counts = points(outputs)
    assert counts == sorted(counts) and counts[-1] >= 2  # the chart gained points as it ran
    status = outputs[-1][0]
    assert "Stopped after step" in status and "Resume" in status
    # Where it stopped, without the time left of a run that no longer runs.
    assert "stopped at step" in outputs[-1][1] and "ETA" not in outputs[-1][1] and "ETA" in outputs[-2][1]


def test_generate_with_each_sampler(trained):
    c, _ = trained
    common = dict(model_choice="Your model", prompt="Every effort moves you", max_new_tokens=12, stop_at_eot=False)
    greedy = c.predict(**common, temperature=0, top_k=0, top_p=1.0, seed=None, api_name="/generate")
    assert greedy.startswith("Every effort moves you") and len(greedy) > len(common["prompt"])
    assert c.predict(**common, temperature=0, top_k=0, top_p=1.0, seed=None, api_name="/generate") == greedy
    # Keeping one candidate is greedy, whatever the temperature.
    assert c.predict(**common, temperature=1.5, top_k=1, top_p=1.0, seed=7, api_name="/generate") == greedy
    for top_k, top_p in ((0, 1.0), (50, 1.0), (0, 0.9), (50, 0.9)):  # temperature alone, +top-k, +top-p
        sampled = [c.predict(**common, temperature=1.0, top_k=top_k, top_p=top_p, seed=s, api_name="/generate")
                   for s in (1, 1, 2)]
        assert sampled[0] == sampled[1] != sampled[2]  # a seed repeats its draw, another seed differs
        assert sampled[0].startswith(common["prompt"]) and sampled[0] != greedy
    # The precision comes last, by name (float32 = Exact, when left out); Fast continues the same prompt.
    greedy_args = ("Your model", "Every effort moves you", 12, 0, 0, 1.0, None, False)
    assert c.predict(*greedy_args, "float32", api_name="/generate") == greedy
    fast = c.predict(**common, temperature=0, top_k=0, top_p=1.0, seed=None, precision="bfloat16",
                     api_name="/generate")
    assert fast.startswith(common["prompt"]) and len(fast) > len(common["prompt"])
    fig = c.predict("Your model", "Every effort moves you", 0.8, 10, 0.9, api_name="/candidates")
    names = [t["name"] for t in json.loads(fig["plot"])["data"]]
    assert names == ["Model (softmax)", "After top-k", "After temperature", "After top-p: sampled from"]


def test_sessions_are_kept_apart_and_queued_runs_see_their_place(server, tmp_path):
    a, b = client(server), client(server)
    job_a = train(a, num_epochs=100)
    wait_for(lambda: len(job_a.outputs()) >= 2, what="the first run to start")
    # Another student can neither stop this run nor use this model.
    assert b.predict(api_name="/stop") == "Nothing is training in this session."
    with pytest.raises(AppError, match="no model of your own|No model yet"):
        b.predict("Your model", "Hi", 3, 0, 0, 1.0, None, True, api_name="/generate")
    # One training slot on this server: the second run waits in the app's training queue and
    # its status says its place.
    job_b = train(b, num_epochs=1)
    wait_for(lambda: job_b.outputs(), 30, "the second run to be queued")
    assert queue_place(job_b.outputs()[0][0]) == 1, job_b.outputs()[0][0]
    assert not job_a.done()
    assert a.predict(api_name="/stop").startswith("Stopped after step")
    wait_for(lambda: any(queue_place(o[0]) is None for o in job_b.outputs()), 60,
             "the queued run to start")  # served in turn
    b.predict(api_name="/stop")
    wait_for(job_b.done, 60, "the second run to end")


def test_bad_input_gets_a_message_not_a_traceback(server, tmp_path):
    c = client(server)
    pdf = tmp_path / "notes.txt"
    pdf.write_bytes(b"%PDF-1.4\n" + b"\x00" * 100)
    with pytest.raises(AppError, match="PDF"):
        c.predict(handle_file(str(pdf)), "GPT-2 BPE", 64, 8, 0, api_name="/upload_text")
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * 300_000)  # 1.5 MB: over this server's 1 MB limit
    with pytest.raises(Exception, match="(?i)too large|exceeds|maximum|413"):
        c.predict(handle_file(str(big)), "GPT-2 BPE", 64, 8, 0, api_name="/upload_text")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "model.pth"
    evil.write_bytes(pickle.dumps({"model_state_dict": Exploit()}))
    with pytest.raises(AppError, match="refused|not a PyTorch"):
        c.predict(handle_file(str(evil)), api_name="/upload_checkpoint")
    assert not marker.exists()
    for changes, message in [(dict(learning_rate=-1e-3), "Learning rate"), (dict(batch_size=0), "Batch size"),
                             (dict(num_epochs=1_000_000), "Epochs")]:
        with pytest.raises(AppError, match=message) as err:
            train(c, **changes).result()
        assert "Traceback" not in str(err.value)
    # /generate takes plain values (the page's sliders are not in its way): the handler checks them.
    with pytest.raises(AppError, match="Top-p must be a number from 0 to 1, got 7"):
        c.predict("Your model", "Hi", 3, 1.0, 0, 7, None, True, api_name="/generate")
    with pytest.raises(AppError, match=r"Unknown precision 'half'; choose float32 \(Exact\), bfloat16 \(Fast\) or auto"):
        c.predict("Your model", "Hi", 3, 1.0, 0, 1.0, None, True, "half", api_name="/generate")
    with pytest.raises(AppError, match="not in the list of choices"):  # Gradio checks radio choices
        c.predict("7B", api_name="/gpt2_download")
    with pytest.raises(AppError, match="only from"):
        c.predict("/etc", api_name="/gpt2_import_folder")
