"""The server's shared parts: session identity, the registry, session folders."""
from __future__ import annotations

import pytest

from playground.limits import Limits, session_folder
from playground.server import WorkspaceRegistry
from playground.session import WorkspaceError

# What a client may send as its session hash: each once emptied or removed a server folder.
HOSTILE_HASHES = ["..", ".", "../victim", "/", "/tmp", "a/../../b", "~", "\x00", "%2e%2e", "a" * 32]


@pytest.mark.parametrize("client_hash", HOSTILE_HASHES)
def test_a_client_chosen_session_hash_never_names_a_folder(tmp_path, client_hash):
    root = tmp_path / "sessions"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    registry = WorkspaceRegistry(Limits(), files_root=root)
    ws = registry.get(client_hash)
    folder = ws.files_dir()
    assert folder.parent == root.resolve() and folder.name == ws.id and ws.id != client_hash
    (folder / "model.pt").write_bytes(b"x")
    registry.release(client_hash)
    assert not folder.exists()
    assert (victim / "keep.txt").read_text() == "mine" and root.is_dir()


@pytest.mark.parametrize("bad", ["x" * 129, "", None, 7])
def test_a_session_hash_that_is_not_one_is_refused(tmp_path, bad):
    with pytest.raises(WorkspaceError, match="session"):
        WorkspaceRegistry(Limits(), files_root=tmp_path).get(bad)


@pytest.mark.parametrize("bad", ["..", ".", "../" + "a" * 32, "/" + "a" * 31, "A" * 32, "a" * 31])
def test_session_folders_are_made_only_for_server_made_ids(tmp_path, bad):
    with pytest.raises(ValueError):
        session_folder(tmp_path, bad)


def test_session_folders_do_not_follow_a_link_out_of_the_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / ("a" * 32)).symlink_to(tmp_path)
    with pytest.raises(ValueError, match="not directly inside"):
        session_folder(root, "a" * 32)
