"""download_gpt2 against a local server on 127.0.0.1 that misbehaves on demand."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gpt2_fixtures import CHECKPOINT_TEXT, ROOT, FaultyServer, wait_until
from gpt_core.__main__ import add_gpt2_commands
from gpt_core.gpt2.download import MANIFEST, DownloadError, DownloadProgress, looks_like_markup
from gpt_core.gpt2.release import GPT2_FILES, KNOWN_SIZES, download_gpt2

SIZE = "355M"  # no built-in file sizes: checked against Content-Length
DATA = "model.ckpt.data-00000-of-00001"


def fake_release() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    files = {name: rng.integers(0, 256, 3000, dtype=np.uint8).tobytes() for name in GPT2_FILES}
    files["checkpoint"] = CHECKPOINT_TEXT.encode()
    files["hparams.json"] = json.dumps({"n_vocab": 101, "n_ctx": 32, "n_embd": 16, "n_head": 2, "n_layer": 2}).encode()
    files[DATA] = rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    return files


RELEASE = fake_release()


def serve(prefixes=("/primary", "/backup"), size: str = SIZE, files: dict[str, bytes] = RELEASE, **kw) -> FaultyServer:
    return FaultyServer({f"{p}/{size}/{n}": b for p in prefixes for n, b in files.items()}, **kw)


def bases(server: FaultyServer, *names: str) -> list[str]:
    return [server.url(n) for n in (names or ("/primary", "/backup"))]


def fetch(server, tmp_path, *names, **kw):
    events: list[DownloadProgress] = []
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 5.0)
    folder = download_gpt2(SIZE, tmp_path, progress=events.append, base_urls=bases(server, *names), **kw)
    return folder, events


def assert_release(folder: Path, files: dict[str, bytes] = RELEASE) -> None:
    for name, data in files.items():
        assert (folder / name).read_bytes() == data, name
        assert not (folder / (name + ".part")).exists()


def test_downloads_seven_files_reports_progress_and_skips_complete_files(tmp_path):
    with serve() as server:
        folder, events = fetch(server, tmp_path)
        assert folder == tmp_path / SIZE
        assert_release(folder)
        assert all(server.count(f"/primary/{SIZE}/{n}", 200) == 1 for n in GPT2_FILES)
        assert server.count(f"/backup/{SIZE}/{DATA}") == 0
        last = events[-1]
        assert last.status == "done" and last.done == last.total == sum(map(len, RELEASE.values()))
        assert last.total_exact and not events[0].total_exact  # estimated until every size is known
        assert all(e.done <= e.total for e in events)
        assert [e.done for e in events] == sorted(e.done for e in events)
        data_events = [e for e in events if e.file == DATA and e.status == "downloading"]
        assert data_events[-1].file_done == data_events[-1].file_total == len(RELEASE[DATA])
        assert json.loads((folder / MANIFEST).read_text())[DATA] == len(RELEASE[DATA])
        before = len(server.requests)
        _, again = fetch(server, tmp_path)
        assert len(server.requests) == before  # nothing fetched twice
        assert {e.status for e in again} == {"skipped"}


def test_dropped_connection_resumes_with_a_range_request(tmp_path):
    with serve() as server:
        server.faults[f"/primary/{SIZE}/{DATA}"] = ["drop", "drop"]
        folder, events = fetch(server, tmp_path, "/primary")
        assert_release(folder)
        ranges = [(r, s) for p, r, s in server.requests if p.endswith(DATA)]
        assert ranges[0] == (None, 200)
        assert ranges[1] == (f"bytes={len(RELEASE[DATA]) // 2}-", 206)
        assert ranges[2][1] == 206
        assert any(e.status == "retrying" and "closed after" in e.message for e in events)


def test_404_on_the_primary_url_falls_back_to_the_mirror(tmp_path):
    with serve(prefixes=("/backup",)) as server:
        folder, events = fetch(server, tmp_path)
        assert_release(folder)
        assert server.count(f"/primary/{SIZE}/{DATA}", 404) == 1
        assert server.count(f"/backup/{SIZE}/{DATA}", 200) == 1


@pytest.mark.parametrize("fault", ["html", "html-octet"])
def test_an_html_error_page_is_never_saved_as_a_model_file(tmp_path, fault):
    with serve() as server:
        server.always[f"/primary/{SIZE}/{DATA}"] = fault
        folder, _ = fetch(server, tmp_path)
        assert_release(folder)  # the mirror's real file, not the page
        assert server.count(f"/backup/{SIZE}/{DATA}", 200) == 1
        (folder / DATA).unlink()
        with pytest.raises(DownloadError) as err:
            fetch(server, tmp_path, "/primary")
        assert server.url(f"/primary/{SIZE}/{DATA}") in str(err.value) and "HTML" in str(err.value)
        assert not (folder / DATA).exists() and not (folder / (DATA + ".part")).exists()


def test_a_server_ignoring_range_restarts_the_file_from_zero(tmp_path):
    with serve() as server:
        server.faults[f"/primary/{SIZE}/{DATA}"] = ["drop", "no_range"]
        folder, _ = fetch(server, tmp_path, "/primary")
        assert_release(folder)  # not the first half twice
        second = [(r, s) for p, r, s in server.requests if p.endswith(DATA)][1]
        assert second[0] is not None and second[1] == 200


def test_a_stalled_response_times_out_and_is_retried(tmp_path):
    with serve(stall_seconds=10) as server:
        server.faults[f"/primary/{SIZE}/{DATA}"] = ["stall"]
        t0 = time.monotonic()
        folder, events = fetch(server, tmp_path, "/primary", timeout=0.5)
        assert time.monotonic() - t0 < 8  # one 0.5 s timeout, then a quick resume
        assert_release(folder)
        assert any(e.status == "retrying" and "stalled" in e.message for e in events)


def test_the_overall_deadline_stops_a_download_that_never_ends(tmp_path):
    with serve(stall_seconds=10) as server:
        server.always[f"/primary/{SIZE}/{DATA}"] = "stall"
        t0 = time.monotonic()
        with pytest.raises(DownloadError) as err:
            fetch(server, tmp_path, "/primary", timeout=5.0, deadline=1.0)
        assert time.monotonic() - t0 < 6  # the 1 s deadline, not the 5 s timeout or 10 s stall
        msg = str(err.value)
        assert server.url(f"/primary/{SIZE}/{DATA}") in msg and "resume" in msg
        assert (tmp_path / SIZE / (DATA + ".part")).stat().st_size == 10  # kept for resuming
        assert not (tmp_path / SIZE / DATA).exists()


def test_unreachable_servers_give_an_error_naming_urls_and_the_offline_way(tmp_path):
    with serve() as server:
        port_urls = bases(server)
    # the server is closed now: connections are refused
    with pytest.raises(DownloadError) as err:
        download_gpt2(SIZE, tmp_path, base_urls=port_urls, retries=1, backoff=0.01, timeout=2)
    msg = str(err.value)
    assert f"{port_urls[0]}/{SIZE}/checkpoint" in msg and f"{port_urls[1]}/{SIZE}/checkpoint" in msg
    assert "python -m gpt_core import" in msg


def test_124M_files_are_checked_against_the_release_sizes(tmp_path):
    assert KNOWN_SIZES["124M"][DATA] == 497_759_232
    short = {"checkpoint": CHECKPOINT_TEXT.encode()[:50]}
    with FaultyServer({"/p/124M/checkpoint": short["checkpoint"]}) as server:
        with pytest.raises(DownloadError) as err:
            download_gpt2("124M", tmp_path, base_urls=[server.url("/p")], backoff=0.01)
    assert "50 bytes" in str(err.value) and "77" in str(err.value)
    assert not (tmp_path / "124M" / "checkpoint").exists()


def test_a_truncated_file_left_by_another_downloader_is_resumed(tmp_path):
    folder = tmp_path / SIZE
    folder.mkdir()
    (folder / DATA).write_bytes(RELEASE[DATA][:1000])  # e.g. the book's script, interrupted
    with serve() as server:
        fetch(server, tmp_path, "/primary")
        assert_release(folder)
        assert [(r, s) for p, r, s in server.requests if p.endswith(DATA)] == [("bytes=1000-", 206)]


def test_a_complete_part_file_is_recognised_by_the_416_answer(tmp_path):
    folder = tmp_path / SIZE
    folder.mkdir()
    (folder / (DATA + ".part")).write_bytes(RELEASE[DATA])
    with serve() as server:
        fetch(server, tmp_path, "/primary")
        assert_release(folder)
        assert server.count(f"/primary/{SIZE}/{DATA}", 416) == 1


def test_progress_estimates_match_the_model_sizes():
    from gpt_core.config import GPT2_SIZES
    from gpt_core.gpt2.release import ESTIMATED_DATA_BYTES

    assert KNOWN_SIZES["124M"][DATA] == 4 * GPT2_SIZES["124M"].num_parameters()
    assert ESTIMATED_DATA_BYTES == {s: 4 * GPT2_SIZES[s].num_parameters() for s in ("355M", "774M", "1558M")}


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="124M"):
        download_gpt2("125M", tmp_path)
    with pytest.raises(ValueError):
        download_gpt2(SIZE, tmp_path, timeout=0)
    assert not (tmp_path / "125M").exists()
    assert looks_like_markup(b"  <!DOCTYPE html>") and not looks_like_markup(b"\x00\x01<html")


# A second process, as another student's session would be.
_CHILD = """
import sys
from gpt_core.gpt2.release import download_gpt2
def show(p):
    print(p.status, p.file, flush=True)
download_gpt2(sys.argv[1], sys.argv[2], progress=show, base_urls=[sys.argv[3]], backoff=0.01)
print("finished", flush=True)
"""


def test_two_processes_fetching_the_same_model_share_one_download(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with serve() as server:
        server.faults[f"/primary/{SIZE}/{DATA}"] = ["hold"]  # the first download waits mid-file
        args = [sys.executable, "-c", _CHILD, SIZE, str(tmp_path), server.url("/primary")]
        a = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
        assert wait_until(lambda: server.count(f"/primary/{SIZE}/{DATA}") == 1, timeout=60)
        b = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
        first_line = b.stdout.readline()
        assert first_line.startswith("waiting"), first_line  # b found a's lock
        server.release.set()
        out_a, _ = a.communicate(timeout=60)
        out_b, _ = b.communicate(timeout=60)
        assert a.returncode == b.returncode == 0 and "finished" in out_a and "finished" in out_b
        assert set(out_b.split()) >= {"skipped"} and "downloading" not in out_b
        assert all(server.count(f"/primary/{SIZE}/{n}") == 1 for n in GPT2_FILES)
        assert_release(tmp_path / SIZE)


def test_cli_download_command_uses_a_mirror_and_prints_the_folder(tmp_path, capsys):
    from gpt_core.__main__ import main

    with serve() as server:
        code = main(["download", SIZE, "--models-dir", str(tmp_path), "--no-cache",
                     "--base-url", server.url("/backup")])
    assert code == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / SIZE) and DATA in err
    assert_release(tmp_path / SIZE)
    code = main(["download", SIZE, "--models-dir", str(tmp_path / "x"), "--no-cache",
                 "--base-url", "http://127.0.0.1:9/none", "--retries", "0"])
    assert code == 1
    assert "error: could not download" in capsys.readouterr().err
    parser = argparse.ArgumentParser()  # the same commands on a plain argparse parser
    add_gpt2_commands(parser.add_subparsers())
    args = parser.parse_args(["import", str(tmp_path / "missing")])
    assert args.func(args) == 2
