"""torchrun with 2 CPU processes (gloo on 127.0.0.1) against one process on the same global
batch: the same losses, evaluations and weights; only rank 0 prints and writes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from app_server import free_port
from gpt_core.__main__ import main
from gpt_core.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("restore_threads")


def test_two_gloo_processes_equal_one_process(tmp_path, verdict_text, capsys):
    # 3000 characters, context 16: 168 training windows = 21 batches of 8, or of 4 on each of
    # 2 ranks. No shuffle and no dropout, so both runs see the same global batches.
    text_file = tmp_path / "verdict.txt"
    text_file.write_text(verdict_text[:3000], encoding="utf-8")
    common = ["train", "--text", str(text_file), "--tokenizer", "char", "--context-length", "16",
              "--emb-dim", "32", "--n-layers", "2", "--n-heads", "4", "--drop-rate", "0", "--no-shuffle",
              "--epochs", "1", "--eval-freq", "5", "--eval-iter", "2", "--threads", "1", "--lr", "1e-3"]

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={free_port()}", "-m", "gpt_core", *common, "--batch-size", "4",
         "--out", str(tmp_path / "ddp")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("training 29,") == 1 and "2 processes" in proc.stdout  # rank 0 alone prints
    assert proc.stdout.count("done: 21 steps") == 1
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["checkpoint.pt"]

    assert main([*common, "--batch-size", "8", "--out", str(tmp_path / "single")]) == 0
    capsys.readouterr()

    ddp, single = read_checkpoint(tmp_path / "ddp" / "checkpoint.pt"), read_checkpoint(tmp_path / "single" / "checkpoint.pt")
    a, b = ddp.trainer_state, single.trainer_state
    assert a["tokens_seen"] == b["tokens_seen"] == 21 * 8 * 16
    torch.testing.assert_close(torch.tensor(a["step_losses"]), torch.tensor(b["step_losses"]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.tensor(a["train_losses"] + a["val_losses"]),
                               torch.tensor(b["train_losses"] + b["val_losses"]), atol=1e-5, rtol=1e-5)
    for name, tensor in single.model_state_dict.items():
        torch.testing.assert_close(ddp.model_state_dict[name], tensor, atol=1e-5, rtol=1e-4, msg=name)
    assert len(ddp.rng_per_rank) == 2  # each rank's generators, for an exact resume on 2 ranks
