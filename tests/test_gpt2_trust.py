"""Whose GPT-2 is it? An uploaded GPT-2 is its uploader's own model and nothing more; the
shared GPT-2 of a size is loaded only from files that verified (downloaded or imported by the
operator), and the download's messages are sentences, not errnos, URLs or server paths.

Handlers are driven with a `Workspace`, one case through the launched app with gradio_client.
Every download goes to a server on 127.0.0.1 that the test starts."""
from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from gpt2_fixtures import TINY_HPARAMS, FaultyServer, hf_model, random_arrays
from playground import generate_tab, gpt2_tab
from playground.common import SHARED
from playground.session import Workspace

# Vocabulary 50257 so the page's GPT-2 tokenizer can drive it; tiny otherwise.
HP = {"n_vocab": 50257, "n_ctx": 32, "n_embd": 16, "n_head": 2, "n_layer": 2}
PROMPT = "Every effort moves you"
quiet = lambda *a, **k: None  # noqa: E731 -- the progress callback


def save_upload(folder: Path, *, seed: int, hp=HP) -> tuple[list[Path], object]:
    """A transformers GPT-2 saved as a student would upload it: model.safetensors + config.json."""
    model = hf_model(random_arrays(hp, seed=seed), hp)
    model.save_pretrained(folder, safe_serialization=True)
    return [folder / "model.safetensors", folder / "config.json"], model


def greedy(model, tok, n: int = 8) -> str:
    ids = torch.tensor([tok.encode(PROMPT)])
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=0)
    return tok.decode(out[0].tolist())


def uploads_in_tmp() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("gpt2-upload-*")}


@pytest.fixture
def models(monkeypatch, tmp_path):
    folder = tmp_path / "models"
    monkeypatch.setenv("GPT2_MODELS_DIR", str(folder))
    SHARED.clear()
    yield folder
    SHARED.clear()


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --- an upload is the uploader's own model --------------------------------------------------------
def test_an_uploaded_gpt2_is_only_the_uploader_s_model(models, tmp_path):
    from gpt_core.tokenizers import GPT2Tokenizer

    (tmp_path / "up").mkdir()
    files, reference = save_upload(tmp_path / "up", seed=1)
    student, other = Workspace(files_root=tmp_path / "sessions"), Workspace(files_root=tmp_path / "sessions")
    before = uploads_in_tmp()
    try:
        status, info = gpt2_tab.import_upload(student, quiet, [str(f) for f in files])
        assert "private to you" in status and "Your model" in status
        assert student.own is not None and student.own.label == "Uploaded GPT-2"
        assert other.own is None and SHARED.keys() == [] and "No GPT-2 loaded" in info
        assert files_under(models) == []  # nothing written to the shared models folder
        assert uploads_in_tmp() == before  # the private conversion folder is gone
        text = list(generate_tab.generate_text(student, "Your model", PROMPT, 8, 0, 0, 1.0, None, False))[-1]
        assert text == greedy(reference, GPT2Tokenizer())
        with pytest.raises(Exception, match="no model of your own|No model yet"):
            list(generate_tab.generate_text(other, "Your model", PROMPT, 4, 0, 0, 1.0, None, False))
    finally:
        student.close()
        other.close()


def test_a_bad_upload_names_no_server_folder_and_changes_nothing(models, tmp_path):
    junk = tmp_path / "up" / "model.safetensors"
    junk.parent.mkdir()
    junk.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    ws = Workspace(files_root=tmp_path / "sessions")
    with pytest.raises(ValueError) as err:
        gpt2_tab.import_upload(ws, quiet, [str(junk)])
    assert str(tmp_path) not in str(err.value) and tempfile.gettempdir() not in str(err.value)
    assert ws.own is None and SHARED.keys() == [] and files_under(models) == []


# --- the shared GPT-2 of a size loads only verified files -----------------------------------------
def plant(folder: Path, tmp_path: Path, *, seed: int) -> None:
    """What the attack left in a size folder: a model.safetensors of the right shape and a cache
    of ours made from it, with its hparams.json."""
    from gpt_core.gpt2 import import_gpt2

    src = tmp_path / f"planted-{seed}"
    src.mkdir()
    files, _ = save_upload(src, seed=seed)
    made = import_gpt2(files, models_dir=tmp_path / f"elsewhere-{seed}", name="x")
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f.name).write_bytes(f.read_bytes())
    for name in ("gpt_core_weights.safetensors", "hparams.json"):
        (folder / name).write_bytes((made / name).read_bytes())


def test_a_planted_model_in_a_size_folder_is_never_loaded_as_the_shared_gpt2(models, tmp_path, monkeypatch):
    import gpt_core.gpt2.release as download
    from gpt_core.gpt2 import GPT2LoadError, load_gpt2

    plant(models / "124M", tmp_path, seed=2)
    ws = Workspace(files_root=tmp_path / "sessions")
    with pytest.raises(GPT2LoadError, match="not verified"):
        load_gpt2("124M", models_dir=models, download=False)
    with pytest.raises(GPT2LoadError, match="not verified"):  # "Import from folder" of the size folder
        gpt2_tab.import_folder(ws, quiet, "124M")
    # "Download and load": the mirror answers 404 for everything, so nothing verifies.
    with FaultyServer({}) as mirror:
        monkeypatch.setattr(download, "GPT2_BASE_URLS", (mirror.url("/gpt2"),))
        with pytest.raises(ValueError) as err:
            gpt2_tab.download(ws, quiet, "124M")
    message = str(err.value)
    assert "did not match" in message or "did not complete" in message
    for leak in ("http", "127.0.0.1", "Errno", str(models), str(tmp_path)):
        assert leak not in message, message
    assert SHARED.keys() == []


def test_an_unreachable_internet_is_a_sentence_with_details_in_the_log(models, tmp_path, monkeypatch, caplog):
    import gpt_core.gpt2.load as gpt2
    import gpt_core.gpt2.release as download

    with FaultyServer({}) as gone:
        closed = gone.url("/gpt2")
    monkeypatch.setattr(download, "GPT2_BASE_URLS", (closed,))
    monkeypatch.setattr(gpt2, "download_gpt2", functools.partial(download.download_gpt2, retries=0))
    ws = Workspace(files_root=tmp_path / "sessions")
    with caplog.at_level("WARNING", logger="playground"), pytest.raises(ValueError) as err:
        gpt2_tab.download(ws, quiet, "124M")
    message = str(err.value)
    assert message.startswith("This server cannot reach the internet"), message
    for leak in ("http", "127.0.0.1", "Errno", "refused", str(models)):
        assert leak not in message, message
    assert closed in caplog.text  # the details are in the server's log
    assert SHARED.keys() == []


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory):
    from gpt2_fixtures import write_tf_checkpoint

    folder = tmp_path_factory.mktemp("release") / "tiny"
    arrays = write_tf_checkpoint(folder, TINY_HPARAMS, seed=0)
    return folder, arrays


def test_a_verified_download_replaces_planted_files_and_a_changed_file_is_caught(
        models, tmp_path, monkeypatch, tiny_release):
    import gpt_core.gpt2.release as download
    from gpt_core.gpt2 import GPT2LoadError, load_gpt2

    folder, arrays = tiny_release
    size = "355M"  # sizes checked against what the server announces (124M's exact sizes are built in)
    plant(models / size, tmp_path, seed=3)
    served = {f"/gpt2/{size}/{n}": (folder / n).read_bytes() for n in download.GPT2_FILES}
    ws = Workspace(files_root=tmp_path / "sessions")
    with FaultyServer(served) as mirror:
        monkeypatch.setattr(download, "GPT2_BASE_URLS", (mirror.url("/gpt2"),))
        status, _ = gpt2_tab.download(ws, quiet, size)
        assert f"GPT-2 {size}** is loaded" in status
        model, cfg, _ = SHARED.get(f"GPT-2 {size}")
        assert cfg.emb_dim == TINY_HPARAMS["n_embd"]  # the release, not the planted model
        np.testing.assert_array_equal(model.tok_emb.weight.detach().numpy(), arrays["model/wte"])
        data = models / size / download.DATA_FILE
        assert download.release_verified(models / size, size)
        # The same size, other bytes, even with the old mtime: no longer the verified file.
        st = data.stat()
        raw = bytearray(data.read_bytes())
        raw[200:240] = bytes(40)
        data.write_bytes(bytes(raw))
        os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
        with pytest.raises(GPT2LoadError, match="not verified"):
            load_gpt2(size, models_dir=models, download=False)
        load_gpt2(size, models_dir=models)  # downloads it afresh
        assert mirror.count(f"/gpt2/{size}/{download.DATA_FILE}", 200) == 2
        assert data.read_bytes() == served[f"/gpt2/{size}/{download.DATA_FILE}"]
    from gpt_core.gpt2.download import VERIFIED

    record = json.loads((models / size / VERIFIED).read_text())
    assert set(record) >= set(download.GPT2_FILES) | {"gpt_core_weights.safetensors"}
    assert "model.safetensors" not in record


# --- through the launched app ---------------------------------------------------------------------
def test_through_the_app_an_upload_stays_with_its_student(tmp_path):
    gradio_client = pytest.importorskip("gradio_client")
    from gradio_client.exceptions import AppError

    from app_server import SMALL_SERVER, AppServer
    from gpt_core.tokenizers import GPT2Tokenizer

    (tmp_path / "up").mkdir()
    files, reference = save_upload(tmp_path / "up", seed=4)
    with AppServer(tmp_path / "app", env={**SMALL_SERVER, "PLAYGROUND_MAX_UPLOAD_MB": "16"}) as server:
        a = gradio_client.Client(server.url, verbose=False)
        b = gradio_client.Client(server.url, verbose=False)
        status, shared = a.predict([gradio_client.handle_file(str(f)) for f in files],
                                   api_name="/gpt2_import_upload")
        assert "private to you" in status and "No GPT-2 loaded" in shared
        text = a.predict("Your model", PROMPT, 8, 0, 0, 1.0, None, False, api_name="/generate")
        assert text == greedy(reference, GPT2Tokenizer())
        with pytest.raises(AppError, match="no model of your own|No model yet"):
            b.predict("Your model", PROMPT, 3, 0, 0, 1.0, None, False, api_name="/generate")
        with pytest.raises(AppError, match="not loaded"):
            b.predict("GPT-2 124M", PROMPT, 3, 0, 0, 1.0, None, False, api_name="/generate")
        assert files_under(tmp_path / "app" / "models") == []
