"""`python -m gpt_core train / eval / inspect`: help, bad input (exit 2 before any work),
a short run with checkpoints, resume, evaluation, JSON events."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gpt_core.__main__ import main
from gpt_core.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("restore_threads")


@pytest.fixture(scope="module")
def text_file(tmp_path_factory, verdict_text) -> Path:
    path = tmp_path_factory.mktemp("cli") / "verdict.txt"
    path.write_text(verdict_text[:3000], encoding="utf-8")
    return path


TINY = ["--tokenizer", "char", "--context-length", "16", "--emb-dim", "32", "--n-layers", "2", "--n-heads", "4",
        "--batch-size", "4", "--threads", "1"]


def test_help_lists_commands_and_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("train", "eval", "inspect"))
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--text", "--preset", "--resume", "--gpt2", "--out", "--epochs", "--lr", "--lr-schedule",
                 "--warmup-steps", "--grad-clip", "--label-smoothing", "--grad-accum", "--drop-rate", "--seed",
                 "--device", "--threads", "--early-stopping", "--no-shuffle", "--json"):
        assert flag in out, flag
    assert "[default: 0.0004]" in out.replace("\n", " ").replace("  ", " ") or "0.0004" in out
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "--checkpoint" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--lr", "0"], "--lr: learning_rate must be"),
    (["--lr", "-0.1"], "--lr: learning_rate must be"),
    (["--lr", "nan"], "--lr: learning_rate must be"),
    (["--lr", "inf"], "--lr: learning_rate must be"),
    (["--batch-size", "0"], "--batch-size: batch_size"),
    (["--epochs", "0"], "--epochs: num_epochs"),
    (["--epochs", "99999999999"], "--epochs: num_epochs"),
    (["--eval-freq", "0"], "--eval-freq: eval_freq"),
    (["--context-length", "5000"], "fewer than one batch"),
    (["--label-smoothing", "1.5"], "--label-smoothing"),
    (["--device", "tpu"], "--device"),
])
def test_bad_input_exits_2_before_any_work(capsys, text_file, tmp_path, args, message):
    code = main(["train", "--text", str(text_file), *TINY, "--out", str(tmp_path / "run"), *args])
    captured = capsys.readouterr()
    assert code == 2 and message in captured.err
    assert "training" not in captured.out and not (tmp_path / "run").exists()


def test_bad_files_exit_2(capsys, tmp_path, text_file):
    assert main(["train", "--text", str(tmp_path / "missing.txt")]) == 2
    assert "no such text file" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main(["train", "--text", str(text_file), "--resume", str(tmp_path / "junk.pt")]) == 2
    assert "not a PyTorch checkpoint" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path / "junk.pt"), "--text", str(text_file)]) == 2
    assert main(["train", "--text", str(text_file), "--resume", "a.pt", "--gpt2", "124M"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--text", str(text_file), "--lr", "fast"])  # argparse: also 2
    assert exit_info.value.code == 2


def test_train_resume_eval_inspect(capsys, text_file, tmp_path):
    out_dir = tmp_path / "run"
    code = main(["train", "--text", str(text_file), *TINY, "--epochs", "1", "--eval-freq", "10",
                 "--eval-iter", "2", "--out", str(out_dir)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0].startswith("training 29,")  # the demo head is the book's, untied
    assert re.fullmatch(r"Ep 1 \(Step 000000\): Train loss \d+\.\d{3}, Val loss \d+\.\d{3}", lines[1])
    assert sum(line.startswith("Ep 1 (Step ") for line in lines) == 5  # steps 0, 10, 20, 30, 40 of 42
    assert any(line.startswith(" very effort moves you") for line in lines)  # "E" is not in 3000 chars
    assert f"checkpoint saved: {out_dir / 'checkpoint.pt'}" in lines
    assert lines[-1].startswith("done: 42 steps")
    assert "100%" in captured.err  # the progress bar
    first = read_checkpoint(out_dir / "checkpoint.pt")
    assert first.trainer_state["step"] == 41 and first.train_config.num_epochs == 1

    code = main(["train", "--text", str(text_file), "--resume", str(out_dir / "checkpoint.pt"), "--epochs", "2",
                 "--threads", "1", "--out", str(out_dir), "--json"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert events[0]["event"] == "step" and events[0]["step"] == 42 and events[0]["epoch"] == 2
    assert events[-1]["event"] == "done" and events[-1]["step"] == 83
    assert len(events[-1]["train_losses"]) == 9  # the history continues: 5 + 4 evaluations
    assert {"eval", "sample", "epoch", "checkpoint"} <= {e["event"] for e in events}

    assert main(["eval", "--checkpoint", str(out_dir / "checkpoint.pt"), "--text", str(text_file),
                 "--split", "val", "--json", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["windows"] == 18 and result["perplexity"] == pytest.approx(2.718281828 ** result["loss"])
    assert main(["inspect", str(out_dir / "checkpoint.pt")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["steps"] == 84 and info["resumable"] is True


def test_python_dash_m_exit_code(text_file):
    proc = subprocess.run([sys.executable, "-m", "gpt_core", "train", "--text", str(text_file), "--batch-size", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "batch_size" in proc.stderr and proc.stdout == ""


# --- GPT-2 from the command line: cropped as the page crops it --------------------------------
@pytest.fixture
def fake_gpt2(monkeypatch):
    """`--gpt2 tiny`: a GPT-2-shaped model (tied head, qkv bias, GPT-2 BPE) of 128 positions."""
    import gpt_core.gpt2
    from gpt_core.config import GPTConfig
    from gpt_core.model import GPTModel
    from gpt_core.tokenizers import GPT2Tokenizer

    cfg = GPTConfig(context_length=128, emb_dim=16, n_heads=2, n_layers=1, drop_rate=0.0, qkv_bias=True,
                    tie_weights=True)

    def load_gpt2(source, **kwargs):
        torch.manual_seed(0)
        return GPTModel(cfg).eval(), cfg, GPT2Tokenizer()

    monkeypatch.setattr(gpt_core.gpt2, "load_gpt2", load_gpt2)
    return cfg


GPT2_RUN = ["--gpt2", "tiny", "--max-steps", "1", "--eval-freq", "1", "--eval-iter", "1", "--batch-size", "2",
            "--sample-tokens", "0", "--threads", "1"]


def test_gpt2_context_is_cropped(capsys, text_file, tmp_path, fake_gpt2):
    out_dir = tmp_path / "gpt2"
    code = main(["train", "--text", str(text_file), *GPT2_RUN, "--context-length", "16", "--out", str(out_dir)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "nan" not in captured.out.lower()
    saved = read_checkpoint(out_dir / "checkpoint.pt").model_config
    assert saved == fake_gpt2.replace(context_length=16)


def test_gpt2_shape_and_too_long_context_are_refused(capsys, text_file, fake_gpt2):
    assert main(["train", "--text", str(text_file), *GPT2_RUN, "--n-layers", "2"]) == 2
    assert "--gpt2 fixes the model's width and depth" in capsys.readouterr().err
    assert main(["train", "--text", str(text_file), *GPT2_RUN, "--context-length", "256"]) == 2
    assert "GPT-2 reads at most 128 tokens" in capsys.readouterr().err


def test_validation_shorter_than_a_window_says_what_to_change(capsys, text_file, fake_gpt2):
    # 3,000 characters: the validation tenth is ~70 GPT-2 tokens, fewer than 128+1.
    assert main(["train", "--text", str(text_file), *GPT2_RUN]) == 2
    captured = capsys.readouterr()
    assert re.search(r"validation part .* has \d+ tokens, fewer than one window of 128\+1: use a shorter "
                     r"context length or a longer text", captured.err), captured.err
    assert "nan" not in (captured.out + captured.err).lower()
