"""Checkpoints whose pickle runs code when loaded the unsafe way (`torch.load(weights_only=
False)`, `pickle.load`): what an attacker would upload. The engine's loader is checked with
them (test_checkpoint_limits.py) and so is the launched app (test_hostile.py)."""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

KINDS = ("torch-zip", "legacy-pickle", "plain-pickle")


class RunsCode:
    """Unpickling this calls exec(): it writes `marker` (what an attacker's payload would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def write_code_running_checkpoint(path: Path, marker: Path, kind: str) -> Path:
    """A file at `path` that writes `marker` when unpickled, in one of KINDS of container."""
    if kind == "torch-zip":  # torch.save's zip format, a real state dict beside the payload
        torch.save({"model_state_dict": {"tok_emb.weight": torch.zeros(4, 2)}, "extra": RunsCode(marker)}, path)
    elif kind == "legacy-pickle":  # torch's legacy (pre-1.6) format: a bare pickle stream after a magic number
        torch.save({"model_state_dict": RunsCode(marker)}, path, _use_new_zipfile_serialization=False)
    elif kind == "plain-pickle":
        with open(path, "wb") as f:
            pickle.dump({"model_state_dict": RunsCode(marker)}, f)
    else:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return path
