"""Faults while the app serves: the app is launched in this process (so the test can look at
the sessions' workspaces) and driven through gradio_client, as a browser would.

A tab closed mid-training frees its job and memory; a stop mid-epoch leaves a consistent
checkpoint that downloads, loads and resumes; a GPT-2 download cut off half-way resumes
through the app; a failure while saving keeps the previous checkpoint; a NaN loss stops the
run with a message; a damaged TensorFlow checkpoint is a message and the app keeps serving.
"""
from __future__ import annotations

import errno
import gc
import hashlib
import os
import shutil
import subprocess
import sys
import time
import weakref
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from app_server import free_port
from conftest import ASSETS
from gpt2_fixtures import TINY_HPARAMS, FaultyServer, random_arrays, wait_until
from students import Api, connect, plot_traces, still_serving

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """build_app() launched in this process on a free port, with its own session-files
    folder, models folder and Gradio cache, and a 1 s heartbeat (closed tabs noticed fast)."""
    mp = pytest.MonkeyPatch()
    work = tmp_path_factory.mktemp("faults-app")
    mp.setenv("GRADIO_HEARTBEAT_INTERVAL", "1")
    mp.setenv("GRADIO_TEMP_DIR", str(work / "gradio-cache"))
    mp.setenv("GPT2_MODELS_DIR", str(work / "models"))
    mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    import app
    from playground.common import REGISTRY

    mp.setattr(REGISTRY, "files_root", work / "session-files")
    demo = app.build_app()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_options())  # as app.main() launches it
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        mp.undo()


@pytest.fixture
def client(app_url):
    c = connect(app_url)
    yield c
    c.close()


@pytest.fixture(scope="module")
def api(app_url) -> Api:
    c = connect(app_url)
    try:
        return Api.of(c)
    finally:
        c.close()


def tiny(**options):
    """Training options for a tiny character-level model: steps of milliseconds, files of KB."""
    from playground.options import PRESET_LABELS

    base = {"Tokenizer": "Characters", "Preset": PRESET_LABELS["custom"], "context_length": 32, "emb_dim": 32,
            "n_heads": 2, "n_layers": 2, "drop_rate": 0.0, "Evaluate every": 1000, "Evaluation batches": 1}
    return {**base, **options}


def workspace_of(client):
    from playground.common import REGISTRY

    return REGISTRY._spaces.get(client.session_hash)


def verdict() -> str:
    return (ASSETS / "the-verdict.txt").read_text(encoding="utf-8")


def wait_for_step(client, step: int, timeout: float = 120.0):
    ok = wait_until(lambda: (ws := workspace_of(client)) is not None and ws.own is not None
                    and ws.own.trainer is not None and ws.own.trainer.state.step >= step, timeout)
    assert ok, f"training did not reach step {step} within {timeout} s"
    return workspace_of(client)


# --- a tab closed mid-training ----------------------------------------------------------------------
def test_closing_the_tab_mid_training_stops_the_run_and_frees_its_memory(app_url, api):
    from playground.common import REGISTRY

    client = connect(app_url)
    session = client.session_hash
    job = client.submit(*api.args_by_label("/train", tiny(Epochs=50)), api_name="/train")
    ws = wait_for_step(client, 2)
    assert wait_until(lambda: len(job.outputs()) >= 2, 60), "no chart update arrived"
    trainer, run = ws.own.trainer, ws.job
    model = weakref.ref(ws.own.model)
    optimizer = weakref.ref(trainer.optimizer)
    assert run is not None and not trainer.finished
    client.close()  # the tab closes: its heartbeat ends, the app's unload runs

    assert wait_until(lambda: session not in REGISTRY, 30), "the closed tab's session is still registered"
    assert run.stop.is_set(), "the closed tab's training job was not told to stop"
    assert wait_until(lambda w=ws: w.job is None, 60), "the closed tab's training job never ended"
    step = trainer.state.step
    time.sleep(1.0)
    assert trainer.state.step == step, "the closed tab's training kept running"
    assert ws.own is None and ws.closed
    assert not (REGISTRY.files_root / ws.id).exists(), "the closed tab's checkpoint files were kept"
    del trainer, run, ws
    assert wait_until(lambda: (gc.collect(), model() is None and optimizer() is None)[1], 20), \
        "the closed tab's model or optimizer is still in memory"


# --- a stop in the middle of an epoch ----------------------------------------------------------------
def test_a_stop_mid_epoch_leaves_a_consistent_checkpoint_that_downloads_loads_and_resumes(app_url, client, api, tmp_path):
    from gradio_client import handle_file

    from gpt_core.checkpoint import load_model, read_checkpoint

    client.predict(verdict(), "Characters", 32, 2, 0, api_name="/use_text")
    job = client.submit(*api.args_by_label("/train", tiny(Epochs=1, **{"Batch size": 2})), api_name="/train")
    ws = wait_for_step(client, 2)
    trainer = ws.own.trainer
    status = client.predict(api_name="/stop")
    job.result()
    st = trainer.state
    assert f"Stopped after step {st.step + 1:,} of {trainer.total_steps:,}" in status, status
    assert 0 < st.position < trainer.batches_per_epoch, "the stop was not in the middle of the epoch"

    link, note = client.predict(api_name="/save_checkpoint")  # the session's own download link
    assert link.endswith(f"step{st.step + 1}.pt")
    response = httpx.get(app_url + link, timeout=60)
    assert response.status_code == 200, (link, note)
    local = tmp_path / "downloaded.pt"
    local.write_bytes(response.content)

    ckpt = read_checkpoint(local)
    assert ckpt.kind == "gpt_core"
    assert ckpt.trainer_state["step"] == st.step and ckpt.trainer_state["position"] == st.position
    model, _ = load_model(ckpt)
    served = ws.own.model.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, served[name]), name
    steps_taken = {int(s["step"]) for s in ckpt.optimizer_state_dict["state"].values()}
    assert steps_taken == {st.step + 1}, "the optimizer state is not that of the last whole step"

    # The downloaded file goes back into a new session and resumes to the end of the epoch.
    other = connect(app_url)
    try:
        other.predict(verdict(), "Characters", 32, 2, 0, api_name="/use_text")
        loaded = other.predict(handle_file(str(local)), api_name="/upload_checkpoint")[0]
        assert f"stopped at step {st.step + 1}" in loaded and "Resume" in loaded, loaded
        final = other.predict(api_name="/resume")
        assert final[0].startswith(f"Done: {trainer.total_steps:,} steps"), final[0]
    finally:
        other.close()


# --- a download cut off half-way ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory) -> Path:
    """OpenAI's GPT-2 release layout with tiny random weights (TensorFlow in a child process,
    so this process never imports it)."""
    folder = tmp_path_factory.mktemp("tiny-release") / "release"
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from gpt2_fixtures import write_tf_checkpoint; "
            "write_tf_checkpoint(sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(folder), str(ROOT / "tests")], check=True,
                   capture_output=True, timeout=600)
    return folder


def test_a_gpt2_download_cut_off_half_way_resumes_through_the_app(client, tiny_release, monkeypatch):
    import gpt_core.gpt2.release as download
    from playground.common import SHARED

    size = "355M"  # any size but 124M, whose exact file sizes are known and checked
    files = {f"/{size}/{name}": (tiny_release / name).read_bytes() for name in download.GPT2_FILES}
    data_path = f"/{size}/model.ckpt.data-00000-of-00001"
    key = f"GPT-2 {size}"
    with FaultyServer(files) as remote:
        remote.faults[data_path] = ["drop"]  # the connection dies after half of the weights
        monkeypatch.setattr(download, "GPT2_BASE_URLS", (remote.url(),))
        try:
            status, _ = client.predict(size, api_name="/gpt2_download")
            assert f"{key}** is loaded" in status, status
            ranges = [(rng, code) for p, rng, code in remote.requests if p == data_path]
            half = len(files[data_path]) // 2
            assert ranges[0] == (None, 200) and ranges[1] == (f"bytes={half}-", 206), ranges
            model, cfg, _ = SHARED.get(key)
            assert cfg.emb_dim == TINY_HPARAMS["n_embd"] and cfg.n_layers == TINY_HPARAMS["n_layer"]
            served = random_arrays(TINY_HPARAMS, seed=0)  # what the release fixture wrote
            assert torch.equal(model.tok_emb.weight, torch.from_numpy(served["model/wte"]))
            assert torch.equal(model.pos_emb.weight, torch.from_numpy(served["model/wpe"]))
        finally:
            with SHARED._lock:
                SHARED._models.pop(key, None)


# --- a failure while saving -----------------------------------------------------------------------------
def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("fault", ["disk full in torch.save", "rename fails"])
def test_a_failure_while_saving_keeps_the_previous_checkpoint(client, api, monkeypatch, fault):
    from gpt_core.checkpoint import read_checkpoint

    client.predict(verdict(), "Characters", 32, 8, 0, api_name="/use_text")
    client.predict(*api.args_by_label("/train", tiny(Epochs=1)), api_name="/train")
    ws = workspace_of(client)
    previous = Path(ws.own.checkpoint_path)
    digest = _digest(previous)

    if fault == "disk full in torch.save":
        def save(obj, f, *args, **kwargs):
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(torch, "save", save)
    else:
        def replace(src, dst):
            raise OSError(errno.EIO, "Input/output error")
        monkeypatch.setattr(os, "replace", replace)
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict(api_name="/save_checkpoint")
    monkeypatch.undo()
    assert "Traceback" not in str(info.value)
    assert previous.exists() and _digest(previous) == digest, "the previous checkpoint was damaged or removed"
    assert [p.name for p in previous.parent.iterdir()] == [previous.name], "a partial file was left behind"
    assert read_checkpoint(previous).trainer_state["step"] == ws.own.trainer.state.step
    saved, _ = client.predict(api_name="/save_checkpoint")  # and saving works again
    assert saved


# --- a NaN loss ----------------------------------------------------------------------------------------
def test_a_nan_loss_stops_the_run_with_a_message_and_keeps_the_last_good_weights(client, api, monkeypatch):
    import gpt_core.losses as losses

    real = losses.calc_loss_batch
    calls = {"train": 0}

    def poisoned(*args, **kwargs):
        loss = real(*args, **kwargs)
        if torch.is_grad_enabled():
            calls["train"] += 1
            if calls["train"] >= 4:
                return loss * float("nan")
        return loss
    monkeypatch.setattr(losses, "calc_loss_batch", poisoned)
    client.predict(verdict(), "Characters", 32, 8, 0, api_name="/use_text")
    final = client.predict(*api.args_by_label("/train", tiny(Epochs=3)), api_name="/train")
    monkeypatch.undo()
    status = final[0]
    assert "Stopped after step 3" in status and "nan" in status.lower(), status
    ws = workspace_of(client)
    assert ws.own.trainer.state.step + 1 == 3
    assert all(torch.isfinite(p).all() for p in ws.own.model.parameters()), "NaN reached the weights"
    losses_drawn = plot_traces(final[2])["Batch loss"][1]
    assert len(losses_drawn) == 3 and all(np.isfinite(losses_drawn))
    text = client.predict("Your model", "Every effort", 5, 0, 0, 1, 1, True, api_name="/generate")
    assert text.startswith("Every effort")


# --- a damaged TensorFlow checkpoint ------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["garbage bytes", "cut in half"])
def test_a_damaged_tensorflow_checkpoint_is_a_message_and_the_app_keeps_serving(client, tiny_release, damage):
    from gradio_client.exceptions import AppError

    from gpt_core.gpt2 import default_models_dir
    from playground.common import SHARED

    folder = default_models_dir() / f"damaged-{damage.replace(' ', '-')}"
    shutil.copytree(tiny_release, folder)
    data = folder / "model.ckpt.data-00000-of-00001"
    size = data.stat().st_size
    if damage == "garbage bytes":
        data.write_bytes(np.random.default_rng(0).bytes(size))
    else:
        data.write_bytes(data.read_bytes()[: size // 2])
    before = SHARED.keys()
    with pytest.raises(AppError) as info:
        client.predict(str(folder), api_name="/gpt2_import_folder")
    message = str(info.value)
    assert "Traceback" not in message and ("damaged" in message or "download" in message), message
    assert SHARED.keys() == before
    still_serving(client)
