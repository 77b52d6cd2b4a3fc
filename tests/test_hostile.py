"""Hostile input against the launched app (`python app.py` on 127.0.0.1, a subprocess).

Each test plays someone who bypasses the page: a checkpoint whose pickle runs code, an upload
over the size limit, file routes asked for files outside Gradio's cache, forged file paths,
API calls with values the sliders would never send, enormous and tiny texts. Every one must be
refused (or handled) with a readable sentence, and the server keeps serving.
"""
from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import httpx
import pytest
import torch

from payloads import write_code_running_checkpoint
from students import Api, connect, still_serving

ROOT = Path(__file__).resolve().parent.parent
UPLOAD_LIMIT_MB = 8
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(launch_app):
    return launch_app("hostile-app", env={"PLAYGROUND_MAX_UPLOAD_MB": str(UPLOAD_LIMIT_MB),
                                          "GRADIO_HEARTBEAT_INTERVAL": "2"})


@pytest.fixture(scope="module")
def client(server):
    c = connect(server.url)
    yield c
    c.close()


@pytest.fixture(scope="module")
def api(client) -> Api:
    return Api.of(client)


# Gradio checks a Slider's or Number's bounds itself, before the handler, with this sentence.
GRADIO_BOUNDS = ("less than minimum value", "greater than maximum value")


def refused_for(message: str, word: str) -> bool:
    """Our message names the field; Gradio's bounds check names the bound."""
    text = message.lower()
    return word in text or any(b in text for b in GRADIO_BOUNDS)


def app_error(fn, *args, **kwargs) -> str:
    """Call the API expecting a refusal; return its message after checking it reads as a
    sentence (no traceback, no Python internals)."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert message.strip(), "the refusal has no message"
    assert "Traceback" not in message and 'File "' not in message, message
    return message


# --- 1. a checkpoint whose pickle runs code -------------------------------------------------------
@pytest.mark.parametrize("kind", ["torch-zip", "legacy-pickle"])
def test_a_checkpoint_whose_pickle_runs_code_is_refused_and_the_code_never_runs(client, server, tmp_path, kind):
    from gradio_client import handle_file

    # The payload is live: loading it the unsafe way does run the code.
    probe_marker = tmp_path / "probe-ran"
    probe = tmp_path / "probe.pth"
    write_code_running_checkpoint(probe, probe_marker, kind)
    torch.load(probe, weights_only=False)
    assert probe_marker.exists()

    marker = tmp_path / "server-ran"
    path = tmp_path / "model.pth"
    write_code_running_checkpoint(path, marker, kind)
    message = app_error(client.predict, handle_file(str(path)), api_name="/upload_checkpoint")
    assert "refused" in message or "not a PyTorch checkpoint" in message or "pickled" in message, message
    time.sleep(0.2)
    assert not marker.exists(), "the uploaded pickle ran code on the server"
    still_serving(client)


# --- 2. an upload over the size limit -------------------------------------------------------------
def test_an_upload_over_the_size_limit_is_refused_before_any_handler_runs(server, client, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "big.txt"
    big.write_bytes(b"All work and no play makes Jack a dull boy.\n" * (UPLOAD_LIMIT_MB * 1024 * 1024 // 44 + 2000))
    assert big.stat().st_size > UPLOAD_LIMIT_MB * 1024 * 1024
    before = {p for p in server.gradio_dir.rglob("*") if p.is_file()}
    with big.open("rb") as f:
        r = httpx.post(server.url + "gradio_api/upload", files={"files": ("big.txt", f, "text/plain")}, timeout=60)
    assert r.status_code == 413, (r.status_code, r.text[:200])
    assert "big.txt" not in r.text or "size" in r.text.lower()
    after = {p for p in server.gradio_dir.rglob("*") if p.is_file()}
    assert not [p for p in after - before if p.stat().st_size >= UPLOAD_LIMIT_MB * 1024 * 1024], \
        "the refused upload was stored"
    # Through the client, as a student's upload: refused at the upload, no event runs.
    with pytest.raises(Exception) as info:
        client.predict(handle_file(str(big)), api_name="/upload_text")
    assert "413" in str(info.value) or "size" in str(info.value).lower() or "large" in str(info.value).lower()
    # Under the limit passes (the limit is the app's setting, not a broken upload route).
    small = tmp_path / "small.txt"
    small.write_bytes(big.read_bytes()[: 1024 * 1024])
    summary = client.predict(handle_file(str(small)), api_name="/upload_text")[0]
    assert "Uploaded: small.txt" in summary


# --- 3. file routes -------------------------------------------------------------------------------
def _forbidden_paths(server) -> list[str]:
    secret = server.files_dir / "another-session" / "their-model.pt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_bytes(b"SESSION-SECRET")
    cache = server.gradio_dir
    return [
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=%2Fetc%2Fpasswd",
        "/gradio_api/file//etc/passwd",
        "/gradio_api/file=/proc/self/environ",
        f"/gradio_api/file={ROOT}/app.py",
        "/gradio_api/file=app.py",
        "/gradio_api/file=./app.py",
        f"/gradio_api/file={ROOT}/gpt_core/workspace.py",
        f"/gradio_api/file={ROOT}/.git/config",
        f"/gradio_api/file={cache}/../../../../../etc/passwd",
        f"/gradio_api/file={cache}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        f"/gradio_api/file={cache}/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        f"/gradio_api/file={secret}",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/gradio_api/file=~/.bashrc",
    ]


SECRETS = (b"root:x:0:0", b"import gradio", b"SESSION-SECRET", b"[core]", b"PATH=", b"class Workspace")


def _raw_get(url: str, path: str) -> httpx.Response:
    # Sent as written: no client-side normalisation of "..", so the server sees the attack.
    base = httpx.URL(url)
    with httpx.Client(timeout=60) as c:
        req = c.build_request("GET", base.copy_with(raw_path=path.encode()))
        return c.send(req)


def test_file_routes_serve_nothing_outside_gradio_s_cache(server, client, tmp_path):
    # A file that is in the cache is served: the refusals below are not a broken route.
    mine = tmp_path / "mine.txt"
    mine.write_text("my own upload")
    with mine.open("rb") as f:
        uploaded = httpx.post(server.url + "gradio_api/upload", files={"files": ("mine.txt", f, "text/plain")}, timeout=60).json()[0]
    ok = _raw_get(server.url, f"/gradio_api/file={uploaded}")
    assert ok.status_code == 200 and ok.content == b"my own upload"

    served = []
    for path in _forbidden_paths(server):
        r = _raw_get(server.url, path)
        leaked = [s for s in SECRETS if s in r.content]
        if r.status_code < 400 or leaked:
            served.append((path, r.status_code, leaked))
    assert not served, f"file routes served: {served}"


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/config", "http://localhost:{port}/gradio_api/info",
                                    "http://169.254.169.254/latest/meta-data/", "http://[::1]:{port}/config",
                                    "file:///etc/passwd"])
def test_file_and_proxy_routes_do_not_fetch_private_urls(server, target):
    url = target.format(port=server.port)
    for route in ("/gradio_api/file=", "/gradio_api/proxy="):
        r = _raw_get(server.url, route + url)
        assert r.status_code >= 400, (route + url, r.status_code, r.content[:200])
        assert b"named_endpoints" not in r.content and b'"components"' not in r.content


def _call(server, api_name: str, data: list, session_hash: str | None = None) -> str:
    """POST /gradio_api/call/<api_name> with raw JSON (as a script bypassing the client
    would), then read the event stream; returns it as text."""
    body = json.dumps({"data": data, **({"session_hash": session_hash} if session_hash else {})})  # NaN goes out as the bare NaN token, as a script can send it
    r = httpx.post(server.url + f"gradio_api/call/{api_name}", content=body,
                   headers={"Content-Type": "application/json"}, timeout=60)
    if r.status_code >= 400:
        return f"event: error\nHTTP {r.status_code}: {r.text}"
    event_id = r.json()["event_id"]
    with httpx.stream("GET", server.url + f"gradio_api/call/{api_name}/{event_id}", timeout=60) as s:
        return "".join(s.iter_text())


def _file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": Path(path).name}


@pytest.mark.parametrize("api_name,data", [
    ("upload_text", [_file_data("/etc/passwd"), "GPT-2 BPE", 64, 8, 0]),
    ("upload_text", [_file_data(str(ROOT / "app.py")), "GPT-2 BPE", 64, 8, 0]),
    ("upload_checkpoint", [_file_data(str(ROOT / "app.py"))]),
    ("gpt2_import_upload", [[_file_data("/etc/passwd")]]),
])
def test_forged_file_paths_in_api_calls_are_refused(server, api_name, data):
    stream = _call(server, api_name, data)
    assert "event: error" in stream, stream[:500]
    assert "root:x:0:0" not in stream and "import gradio" not in stream and "build_app" not in stream


@pytest.mark.parametrize("folder", ["/etc", "../../../../etc", str(ROOT), "~/.ssh"])
def test_import_from_a_folder_outside_the_models_folder_is_refused(client, folder):
    message = app_error(client.predict, folder, api_name="/gpt2_import_folder")
    assert "only from" in message or "does not exist" in message, message


# --- 4. out-of-range values sent around the UI --------------------------------------------------------
TRAIN_CASES = {
    "negative learning rate": ({"Learning rate": -0.001}, "learning rate"),
    "batch size 0": ({"Batch size": 0}, "batch"),
    "a million epochs": ({"Epochs": 1_000_000}, "epoch"),
    "a million iterations": ({"Iterations": 1_000_000}, "at most 20,000 iterations"),
    "emb_dim a million": ({"emb_dim": 1_000_000}, "emb"),
    "heads not dividing the width": ({"n_heads": 3}, "divisible"),
    "context of a billion": ({"context_length": 10**9}, "context"),
    "dropout 5": ({"drop_rate": 5}, "drop"),
    "unknown preset": ({"Preset": "GPT-5 (trust me)"}, "gpt-5"),
    "unknown tokenizer": ({"Tokenizer": "bytes"}, "bytes"),
    "start from another's model": ({"Start from": "Someone else's model"}, "someone else"),
    "empty start context": ({"Start context": "   "}, "start context"),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_training_options_out_of_range_are_refused_on_the_server(client, api, case):
    values, word = TRAIN_CASES[case]
    args = api.args_by_label("/train", {"Epochs": 1, **values})
    message = app_error(client.predict, *args, api_name="/train")
    assert refused_for(message, word), message


@pytest.fixture(scope="module")
def own_model(client, tmp_path_factory) -> str:
    """A tiny model of the session's own (an uploaded checkpoint), so generation requests get
    past "which model" to the sampling options."""
    from gradio_client import handle_file

    from gpt_core.checkpoint import save_checkpoint
    from gpt_core.config import GPTConfig
    from gpt_core.model import GPTModel
    from gpt_core.tokenizers import GPT2Tokenizer

    cfg = GPTConfig(vocab_size=50257, context_length=32, emb_dim=16, n_heads=2, n_layers=1, drop_rate=0.0)
    path = tmp_path_factory.mktemp("own") / "tiny.pt"
    torch.manual_seed(0)
    save_checkpoint(path, model=GPTModel(cfg), model_config=cfg, tokenizer=GPT2Tokenizer())
    status = client.predict(handle_file(str(path)), api_name="/upload_checkpoint")[0]
    assert "Loaded" in status, status
    return "Your model"


GEN_CASES = {
    "top_p 7": ({"top_p": 7}, "top-p"),
    "temperature -1": ({"temperature": -1}, "temperature"),
    "a million new tokens": ({"max_new": 1_000_000}, "token"),
    "negative top-k": ({"top_k": -5}, "top-k"),
    "top-k of a billion": ({"top_k": 10**9}, "top-k"),
    "a model that does not exist": ({"model": "GPT-2 9000M"}, "9000m"),
    "an empty prompt": ({"prompt": ""}, "prompt"),
    "a prompt of a megabyte": ({"prompt": "x" * 1_000_000}, "prompt"),
    # The precision comes last (an older client leaves it out): a value the page never sends.
    "precision half": ({"precision": "half"}, "unknown precision 'half'"),
    "precision a number": ({"precision": 3}, "unknown precision 3"),
    "precision null": ({"precision": None}, "unknown precision none"),
    "precision a list": ({"precision": ["bfloat16"]}, "unknown precision ["),
    "precision the label shown": ({"precision": "Fast (bfloat16)"}, "unknown precision 'fast (bfloat16)'"),
}


def _gen_args(**values) -> list:
    args = {"model": "Your model", "prompt": "Every effort", "max_new": 5, "temperature": 1.0, "top_k": 0,
            "top_p": 1.0, "seed": 1, "eot": True}
    args.update(values)
    return list(args.values())


@pytest.mark.parametrize("case", list(GEN_CASES))
def test_generation_values_out_of_range_are_refused_on_the_server(client, own_model, case):
    values, word = GEN_CASES[case]
    message = app_error(client.predict, *_gen_args(**values), api_name="/generate")
    assert refused_for(message, word), message
    assert client.predict(*_gen_args(), api_name="/generate").startswith("Every effort")  # the model still works


def test_a_session_cannot_use_a_model_it_does_not_have(server, own_model):
    other = connect(server.url)  # another student: no model of their own, whatever others have
    try:
        message = app_error(other.predict, *_gen_args(), api_name="/generate")
        assert "no model" in message.lower(), message
    finally:
        other.close()


def test_nan_sent_as_raw_json_is_refused_with_the_field_named(server, client, api, own_model):
    # gradio_client will not send NaN; a script writing JSON by hand can (in the session
    # that has a model, so the request gets as far as the options).
    session = client.session_hash
    stream = _call(server, "train", api.args_by_label("/train", {"Learning rate": float("nan")}), session)
    assert "event: error" in stream and "Learning rate" in stream, stream[-400:]
    for position, field in ((3, "Temperature"), (5, "Top-p")):
        # Raw JSON sends every value, the last one (the precision) too: only gradio_client fills defaults.
        args = _gen_args(precision="float32")
        args[position] = float("nan")
        stream = _call(server, "generate", args, session)
        assert "event: error" in stream and field in stream, stream[-400:]
        assert "Traceback" not in stream


@pytest.mark.parametrize("size", ["9000M", "124M; rm -rf /", "../124M"])
def test_a_gpt2_size_that_does_not_exist_is_refused(client, size):
    message = app_error(client.predict, size, api_name="/gpt2_download")
    assert size.split(";")[0] in message or "choose" in message.lower() or "choices" in message.lower(), message


def test_other_endpoints_refuse_absurd_sizes(client):
    assert refused_for(app_error(client.predict, 1.0, 10**9, 1, api_name="/sampling_lab"), "draws")
    assert refused_for(app_error(client.predict, 0, 100, 1, api_name="/sampling_lab"), "temperature")
    message = app_error(client.predict, "x" * 100_000, "GPT-2 124M", "", api_name="/evaluate")
    assert "20,000" in message or "characters" in message, message
    still_serving(client)


# --- 5. enormous and tiny texts ----------------------------------------------------------------------
def test_an_enormous_single_line_text_is_handled(client):
    words = ("Whan that Aprille with his shoures soote the droghte of March hath perced to the roote ")
    line = (words * (4_900_000 // len(words) + 1))[:4_900_000]
    assert "\n" not in line
    t = time.monotonic()
    summary = client.predict(line, "GPT-2 BPE", 64, 8, 0, api_name="/use_text")[0]
    assert "| Characters | 4,900,000 " in summary, summary[:400]
    assert time.monotonic() - t < 120
    # One character over the limit: refused with the limit named, not a hang or a crash.
    message = app_error(client.predict, line + "x" * 200_000, "GPT-2 BPE", 64, 8, 0, api_name="/use_text")
    assert "5,000,000" in message, message
    # A line with no spaces at all (a base64 blob) is the worst case for BPE: still handled.
    blob = base64.b64encode(os.urandom(750_000)).decode()
    summary = client.predict(blob, "GPT-2 BPE", 64, 8, 0, api_name="/use_text")[0]
    assert f"| Characters | {len(blob):,} " in summary
    still_serving(client)


def test_a_corpus_of_one_character_gets_a_clear_message(client, api, tmp_path):
    from gradio_client import handle_file

    message = app_error(client.predict, "a", "GPT-2 BPE", 64, 8, 0, api_name="/use_text")
    assert "two characters" in message, message
    one = tmp_path / "one.txt"
    one.write_text("a")
    message = app_error(client.predict, handle_file(str(one)), "GPT-2 BPE", 64, 8, 0, api_name="/upload_text")
    assert "two characters" in message, message
    for blank in ("   \n\t ", ""):
        message = app_error(client.predict, blank, "GPT-2 BPE", 64, 8, 0, api_name="/use_text")
        assert "empty" in message.lower(), message
    # Two characters are a corpus, but not one a model can train on: said before any step runs.
    client.predict("ab", "GPT-2 BPE", 64, 8, 0, api_name="/use_text")
    message = app_error(client.predict, *api.args_by_label("/train", {"Epochs": 1}), api_name="/train")
    assert "text" in message.lower() and ("shorter" in message or "no batch" in message or "longer" in message), message
    still_serving(client)


def test_binary_garbage_uploaded_as_text_gets_a_clear_message(client, tmp_path):
    from gradio_client import handle_file

    junk = tmp_path / "photo.txt"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(20_000))
    message = app_error(client.predict, handle_file(str(junk)), "GPT-2 BPE", 64, 8, 0, api_name="/upload_text")
    assert "text" in message.lower(), message
    still_serving(client)
