"""What a hostile client can make the launched server hold or hand out (`python app.py` on
127.0.0.1, a subprocess), and what the server leaves on disk.

Request bodies over the cap are refused with 413 before anything parses them, declared or
chunked; checkpoints are served only through their session's expiring link, never through
Gradio's file route; the files root is cleaned at start and at SIGTERM, touching nothing that
is not the server's; error messages name no server folder.
"""
from __future__ import annotations

import json
import re
import signal
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
import torch

from app_server import AppServer, MemorySampler
from students import connect, still_serving

ROOT = Path(__file__).resolve().parent.parent
LINK_S = 10  # the test server's download links expire this fast
SESSION_ID = "0123456789abcdef0123456789abcdef"  # the shape of the ids the server makes
pytestmark = pytest.mark.slow


def plant_leftovers(files_root: Path) -> dict[str, list[Path]]:
    """What a crash leaves in the files root, beside things that are not the server's."""
    crashed = files_root / SESSION_ID
    crashed.mkdir(parents=True)
    (crashed / "gpt-12x768-step900.pt").write_bytes(b"\0" * 1024)
    (crashed / ".gpt-12x768-step901.pt.k3j2h1.tmp").write_bytes(b"\0" * 1024)
    stray_tmp = files_root / ".gpt-2x32-step5.pt.a1b2c3.tmp"
    stray_tmp.write_bytes(b"half a checkpoint")
    keep = [files_root / "notes.txt", files_root / "not-a-session", files_root / ("z" * 32)]
    keep[0].write_text("the operator's file")
    keep[1].mkdir()
    (keep[1] / "model.pt").write_bytes(b"keep")
    keep[2].mkdir()
    return {"gone": [crashed, stray_tmp], "kept": keep}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile-server")
    return work, plant_leftovers(work / "session-files")


@pytest.fixture(scope="module")
def server(planted):
    work, _ = planted
    with AppServer(work, env={"PLAYGROUND_DOWNLOAD_LINK_S": str(LINK_S), "GRADIO_HEARTBEAT_INTERVAL": "2"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with closing(connect(server.url)) as c:
        yield c


def cap_bytes() -> int:
    from playground.common import SETTINGS

    return SETTINGS.max_request_mb * 2**20


def _body(size: int, chunk: int = 1 << 20):
    sent = 0
    while sent < size:
        n = min(chunk, size - sent)
        sent += n
        yield b" " * n


# --- request bodies ---------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["content-length", "chunked"])
def test_a_body_over_the_cap_gets_413_and_costs_the_server_no_memory(server, client, how):
    size = 5 * cap_bytes()  # the finding's 400 MB, scaled to the default 32 MB cap
    headers = {"content-type": "application/json"}
    if how == "content-length":
        headers["content-length"] = str(size)  # streamed from a generator: never in the test's memory either
    before = server.rss_mb()
    sampler = MemorySampler(server.pid, interval=0.05)
    sampler.start()
    try:
        r = httpx.post(server.url + "gradio_api/call/use_text", content=_body(size), headers=headers, timeout=120)
    finally:
        sampler.stop()
    assert r.status_code == 413, (r.status_code, r.text[:300])
    assert "larger than the server accepts" in r.text and f"{cap_bytes() // 2**20} MB" in r.text, r.text
    assert ("chunked" in r.request.headers.get("transfer-encoding", "")) == (how == "chunked")
    grew = max(sampler.peak(), server.rss_mb()) - before
    assert grew < size / 2**20 / 3, f"the server's memory grew by {grew:.0f} MB for a {size / 2**20:.0f} MB body"
    still_serving(client)


def test_the_largest_legitimate_text_gets_past_the_cap_to_the_character_limit(server, client):
    # 5,000,001 CJK characters, every one \\uXXXX-escaped: the most JSON a pasted corpus can be.
    text = "字" * 5_000_001
    body = json.dumps({"data": [text, "Characters", 32, 2, 0, 0]}, ensure_ascii=True).encode()
    assert len(body) > 28 * 2**20
    r = httpx.post(server.url + "gradio_api/call/use_text", content=body,
                   headers={"content-type": "application/json"}, timeout=120)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    stream = httpx.get(server.url + f"gradio_api/call/use_text/{r.json()['event_id']}", timeout=120).text
    assert "event: error" in stream and "5,000,000" in stream, stream[:500]
    # And a text under the limit is used as before.
    summary = client.predict("Every effort moves you. " * 400, "Characters", 32, 2, 0, api_name="/use_text")[0]
    assert "| Characters | 9,600 " in summary, summary[:300]


# --- checkpoint downloads ------------------------------------------------------------------------------
def _own_checkpoint(client, tmp_path, emb_dim: int = 8) -> tuple[str, str]:
    """Upload a tiny model into the client's session, save it; (link, saved file's name)."""
    from gradio_client import handle_file

    from gpt_core.checkpoint import save_checkpoint
    from gpt_core.config import GPTConfig
    from gpt_core.model import GPTModel
    from gpt_core.tokenizers import GPT2Tokenizer

    cfg = GPTConfig(vocab_size=50257, context_length=16, emb_dim=emb_dim, n_heads=2, n_layers=1, drop_rate=0.0)
    path = tmp_path / f"tiny-{emb_dim}.pt"
    torch.manual_seed(0)
    save_checkpoint(path, model=GPTModel(cfg), model_config=cfg, tokenizer=GPT2Tokenizer())
    assert "Loaded" in client.predict(handle_file(str(path)), api_name="/upload_checkpoint")[0]
    link, note = client.predict(api_name="/save_checkpoint")
    name = re.search(r"`([^`]+\.pt)`", note).group(1)
    assert link.startswith("gradio_api/checkpoint/") and link.endswith("/" + name), link
    return link, name


def _get(server, path: str) -> httpx.Response:
    return httpx.get(server.url + path.lstrip("/"), timeout=60)


def test_a_checkpoint_is_served_only_through_its_session_s_expiring_link(server, tmp_path):
    from gpt_core.checkpoint import read_checkpoint

    mine, theirs = connect(server.url), connect(server.url)
    try:
        link, name = _own_checkpoint(mine, tmp_path)
        r = _get(server, link)
        assert r.status_code == 200 and r.headers["content-disposition"].endswith(f'"{name}"'), r.headers
        local = tmp_path / "downloaded.pt"
        local.write_bytes(r.content)
        assert read_checkpoint(local).kind == "gpt_core"

        token = link.split("/")[2]
        other_link, other_name = _own_checkpoint(theirs, tmp_path, emb_dim=16)
        other_token = other_link.split("/")[2]
        assert other_name != name
        on_disk = [p for p in server.files_dir.glob(f"*/{name}")]
        assert len(on_disk) == 1 and on_disk[0].parent.name != SESSION_ID
        ours = {  # our route: 404, whatever is wrong
            "no token": f"gradio_api/checkpoint//{name}",
            "no name": f"gradio_api/checkpoint/{token}",
            "a wrong token": f"gradio_api/checkpoint/{token[:-4]}AAAA/{name}",
            "a made-up token": f"gradio_api/checkpoint/{'A' * len(token)}/{name}",
            "a name the token was not issued for": f"gradio_api/checkpoint/{token}/{other_name}x",
            "another session's token": f"gradio_api/checkpoint/{other_token}/{name}",
            "a path for a name": f"gradio_api/checkpoint/{token}/..%2F{on_disk[0].parent.name}%2F{name}",
        }
        gradio_s = [f"gradio_api/file={on_disk[0]}", f"gradio_api/file/{on_disk[0]}"]
        for what, path in [*ours.items(), *(("Gradio's file route", p) for p in gradio_s)]:
            r = _get(server, path)
            assert r.status_code >= 400 and r.content != local.read_bytes(), (what, r.status_code)
            assert what not in ours or r.status_code == 404, (what, r.status_code)
        # Nothing of the session's reached Gradio's cache, where /file= serves from.
        assert not [p for p in server.gradio_dir.rglob("*.pt") if p.name in (name, other_name)]
        assert _get(server, other_link).status_code == 200  # their own link still works for them

        # A new save replaces the session's link; the old one dies with it.
        newer, _ = mine.predict(api_name="/save_checkpoint")
        issued = time.monotonic()
        assert _get(server, link).status_code == 404 and _get(server, newer).status_code == 200
        # Past its lifetime the link is refused.
        time.sleep(max(0.0, issued + LINK_S + 1 - time.monotonic()))
        assert _get(server, newer).status_code == 404
    finally:
        mine.close()
        theirs.close()


# --- messages -----------------------------------------------------------------------------------------
def _upload(server, path: Path) -> str:
    with path.open("rb") as f:
        return httpx.post(server.url + "gradio_api/upload", files={"files": (path.name, f)}, timeout=60).json()[0]


def _call_error(server, api_name: str, data: list) -> str:
    r = httpx.post(server.url + f"gradio_api/call/{api_name}", json={"data": data}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    stream = httpx.get(server.url + f"gradio_api/call/{api_name}/{r.json()['event_id']}", timeout=120).text
    assert "event: error" in stream, stream[:300]
    return stream.split("event: error", 1)[1]


def test_upload_errors_name_no_server_folder(server, client, tmp_path):
    garbage = tmp_path / "my notes.txt"
    garbage.write_bytes(bytes(range(256)) * 64)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 500)
    uploaded = _upload(server, garbage)
    messages = {
        "binary text": _call_error(server, "upload_text", [{"path": uploaded, "meta": {"_type": "gradio.FileData"}},
                                                           "Characters", 32, 2, 0, 0]),
        "a broken checkpoint": _call_error(server, "upload_checkpoint",
                                           [{"path": _upload(server, broken), "meta": {"_type": "gradio.FileData"}}]),
    }
    for what, message in messages.items():
        for place in (str(server.gradio_dir), str(server.workdir), "/tmp/", str(ROOT)):
            assert place not in message, (what, message[:400])
    still_serving(client)


def test_the_message_of_any_error_keeps_only_a_file_s_base_name():
    import gradio as gr
    from gradio.utils import get_upload_folder

    from playground.common import REGISTRY, to_gr_error

    upload = Path(get_upload_folder()) / "3f9a0c" / "my notes.txt"
    cases = [FileNotFoundError(2, "No such file or directory", str(upload)),
             IsADirectoryError(21, "Is a directory", str(upload.parent)),
             KeyError(f"{REGISTRY.files_root}/{SESSION_ID}/gpt-2x32-step5.pt"),
             ValueError(f"{upload} is not a text (its folder {upload.parent}/ holds it)"),
             gr.Error(f"Could not read '{upload}'")]
    for exc in cases:
        message = to_gr_error(exc).message
        assert str(upload.parent) not in message and str(REGISTRY.files_root) not in message, message
        assert "my notes.txt" in message or "3f9a0c" in message or "gpt-2x32-step5.pt" in message, message
    # A web address is cut to its host (the log keeps the whole address).
    url = "https://openaipublic.blob.core.windows.net/gpt-2/models/124M/hparams.json"
    assert to_gr_error(ConnectionError(f"No answer from {url}")).message == \
        "No answer from openaipublic.blob.core.windows.net"


# --- the files root at start and at shutdown -----------------------------------------------------------
def test_start_up_removed_what_a_crash_left_and_nothing_else(server, planted):
    _, things = planted
    assert server.proc.poll() is None
    assert not [p for p in things["gone"] if p.exists()], "leftover session files survived the start"
    assert all(p.exists() for p in things["kept"]), "the start removed something that is not the server's"
    assert (things["kept"][1] / "model.pt").read_bytes() == b"keep"


def test_sigterm_removes_the_session_folders(server, planted, tmp_path):
    """Runs last: it stops the module's server."""
    _, things = planted
    c = connect(server.url)
    try:
        _own_checkpoint(c, tmp_path)
        sessions = [p for p in server.files_dir.iterdir() if re.fullmatch(r"[0-9a-f]{32}", p.name)]
        assert sessions and any(p.glob("*.pt") for p in sessions)
    finally:
        c.close()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(60) == 0, server.log()[-2000:]
    left = [p for p in server.files_dir.iterdir() if re.fullmatch(r"[0-9a-f]{32}", p.name)]
    assert not left, f"session folders left after SIGTERM: {left}"
    assert all(p.exists() for p in things["kept"])
