"""A hostile student against the launched app's sessions (`python app.py` on 127.0.0.1).

Each test plays a client that chooses its own Gradio session hash: a path (`..`, `.`, an
absolute folder), or a fresh hash per request to fill the session registry. The server must
touch no folder outside its files root, evict no student who has work, and keep serving.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from students import Api, connect, still_serving

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(launch_app):
    return launch_app("hostile-sessions", env={"PLAYGROUND_MAX_SESSIONS": "40", "GRADIO_HEARTBEAT_INTERVAL": "2"})


def tiny_training() -> dict:
    from playground.options import PRESET_LABELS

    return {"Tokenizer": "Characters", "Preset": PRESET_LABELS["custom"], "context_length": 16, "emb_dim": 16,
            "n_heads": 2, "n_layers": 1, "drop_rate": 0.0, "Epochs": 1, "Evaluate every": 1000,
            "Evaluation batches": 1}


def trained_student(server):
    client = connect(server.url)
    api = Api.of(client)
    status = client.predict(*api.args_by_label("/train", tiny_training()), api_name="/train")[0]
    assert "Done" in status, status
    client.predict(api_name="/save_checkpoint")
    return client, api


def own_checkpoints(server) -> set[Path]:
    return {p for p in server.files_dir.glob("*/*.pt")}


@pytest.mark.parametrize("hostile_hash", ["..", ".", "../victim", "VICTIM", "/", "~"])
def test_a_session_hash_that_names_a_folder_deletes_nothing(server, hostile_hash):
    victim = server.workdir / "victim"
    victim.mkdir(exist_ok=True)
    (victim / "keep.txt").write_text("another program's file")
    student, _ = trained_student(server)
    before = own_checkpoints(server)
    assert before
    attacker = connect(server.url)
    attacker.session_hash = str(victim) if hostile_hash == "VICTIM" else hostile_hash
    api = Api.of(attacker)
    status = attacker.predict(*api.args_by_label("/train", tiny_training()), api_name="/train")[0]
    assert "Done" in status  # it trains in a workspace of its own, under a server-made name
    attacker.predict(api_name="/save_checkpoint")
    attacker.close()  # the unload that used to rmtree the folder the hash named
    student.predict(api_name="/save_checkpoint")
    assert (victim / "keep.txt").read_text() == "another program's file"
    assert server.files_dir.is_dir() and server.workdir.is_dir()
    assert all(p.parent.exists() for p in before), "another student's checkpoint folder was removed"
    assert all(re.fullmatch(r"[0-9a-f]{32}", p.name) for p in server.files_dir.iterdir())
    still_serving(student)
    student.close()


def test_a_flood_of_new_sessions_keeps_the_student_who_has_a_model(server):
    from playground.models import OWN

    student, _ = trained_student(server)
    flood = connect(server.url)
    for i in range(80):  # twice the registry's 40: each request a fresh hash, as a script would send
        flood.session_hash = f"flood-{i}"
        flood.predict(1.0, 10, 1, api_name="/sampling_lab")  # needs no session
        flood.predict(api_name="/stop")  # opens a workspace
    flood.close()
    text = student.predict(OWN, "I had", 5, 0, 0, 1.0, 1, False, api_name="/generate")
    assert text.startswith("I had"), text
    still_serving(student)
    student.close()


def test_the_security_floors_hold_in_this_environment():
    import gradio
    import torch
    from packaging.version import Version

    assert Version(torch.__version__.split("+")[0]) >= Version("2.10"), torch.__version__
    assert Version(gradio.__version__) >= Version("6.20")
    floors = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch>=2\.(1\d)", floors, re.M), "requirements.txt lost torch's floor of 2.10"
