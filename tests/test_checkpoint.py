"""Checkpoints: the format, the book's files both ways, clear refusals, atomic writes, and a
resume in a new process that is bit-identical to an uninterrupted run."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from gpt_core.checkpoint import (FORMAT_VERSION, CheckpointError, atomic_torch_save, inspect_checkpoint,
                                 load_model, read_checkpoint, save_checkpoint)
from gpt_core.config import GPTConfig, TrainConfig
from gpt_core.model import GPTModel
from gpt_core.prepare import prepare_training
from gpt_core.train_events import DoneEvent, StepEvent, StoppedEvent

ROOT = Path(__file__).resolve().parent.parent


# One thread here, as in the resumed process the resume test starts: the same numbers.
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(tok, **kw) -> GPTConfig:
    return GPTConfig(**{**dict(vocab_size=tok.n_vocab, context_length=16, emb_dim=32, n_heads=4, n_layers=2,
                               drop_rate=0.1), **kw})


RESUME_CONFIG = dict(num_epochs=3, batch_size=4, eval_freq=5, eval_iter=2, lr_schedule="cosine",
                     warmup_steps=5, grad_clip=1.0, max_steps=50, seed=7)


def test_exact_resume_in_a_new_process(tmp_path, text, tok):
    """25 steps, save, 25 more in a fresh interpreter == 50 steps straight, bit for bit.
    Dropout, shuffling, evaluations, warmup/cosine and an epoch boundary (42 batches) included."""
    config = TrainConfig(**RESUME_CONFIG)
    straight = prepare_training(text, tokenizer=tok, model_config=tiny_config(tok), config=config)
    assert isinstance(list(straight.run())[-1], DoneEvent)

    first = prepare_training(text, tokenizer=tok, model_config=tiny_config(tok), config=config)
    for event in first.run():
        if isinstance(event, StepEvent) and event.step == 24:
            first.request_stop()
    assert isinstance(event, StoppedEvent) and first.state.step == 24
    half = first.save_checkpoint(tmp_path / "half.pt")
    with pytest.raises(ValueError, match="same batch_size"):  # mid-epoch: the batches must be the same
        prepare_training(text, resume=half, config=TrainConfig(**{**RESUME_CONFIG, "batch_size": 8}))
    with pytest.raises(ValueError, match="another text"):
        prepare_training(text.replace("a", "o"), resume=half, config=TrainConfig(**RESUME_CONFIG))

    (tmp_path / "corpus.txt").write_text(text, encoding="utf-8")
    script = textwrap.dedent(f"""
        import sys, torch
        torch.set_num_threads(1)
        sys.path.insert(0, {str(ROOT)!r})
        from gpt_core.config import TrainConfig
        from gpt_core.prepare import prepare_training
        text = open({str(tmp_path / "corpus.txt")!r}, encoding="utf-8").read()
        trainer = prepare_training(text, resume={str(half)!r}, config=TrainConfig(**{RESUME_CONFIG!r}))
        events = list(trainer.run())
        assert type(events[-1]).__name__ == "DoneEvent", events[-1]
        trainer.save_checkpoint({str(tmp_path / "full.pt")!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)

    resumed = read_checkpoint(tmp_path / "full.pt")
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(resumed.model_state_dict[name], tensor), name
    st = resumed.trainer_state
    assert st["step_losses"] == straight.state.step_losses  # all 50, the first 25 from the checkpoint
    assert st["train_losses"] == straight.state.train_losses and st["val_losses"] == straight.state.val_losses
    assert st["tokens_seen"] == straight.state.tokens_seen and st["epoch"] == 1


def test_format_and_the_books_code_reads_it(tmp_path, tok):
    from llms_from_scratch.ch04 import GPTModel as BookGPTModel
    cfg = tiny_config(tok, drop_rate=0.0)
    torch.manual_seed(0)
    model = GPTModel(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    path = save_checkpoint(tmp_path / "ck.pt", model=model, optimizer=optimizer, tokenizer=tok,
                           train_config=TrainConfig(), trainer_state={"step": 4})
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == FORMAT_VERSION and raw["model_config"] == cfg.to_dict()
    assert raw["tokenizer"] == tok.to_dict() and raw["tokenizer"]["type"] == "char"
    assert raw["scheduler"] == {"type": "constant", "step": 5}
    assert {"model_state_dict", "optimizer_state_dict", "train_config", "rng"} <= set(raw)
    book = BookGPTModel({k: v for k, v in raw["model_config"].items() if k != "tie_weights"})
    book.load_state_dict(raw["model_state_dict"])  # the book's own loading code
    book.eval()
    x = torch.randint(0, tok.n_vocab, (2, 16))
    torch.testing.assert_close(book(x), model(x))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary file left


def test_loads_the_books_model_pth_and_model_and_optimizer_pth(tmp_path, tok, text):
    from llms_from_scratch.ch04 import GPTModel as BookGPTModel
    cfg = dict(vocab_size=tok.n_vocab, context_length=16, emb_dim=32, n_heads=4, n_layers=2,
               drop_rate=0.1, qkv_bias=True)
    torch.manual_seed(3)
    book = BookGPTModel(cfg)
    book.eval()
    torch.save(book.state_dict(), tmp_path / "model.pth")
    x = torch.randint(0, tok.n_vocab, (2, 16))
    with torch.no_grad():
        expected = book(x)
    optimizer = torch.optim.AdamW(book.parameters(), lr=5e-4, weight_decay=0.1)
    book(torch.zeros(1, 4, dtype=torch.long)).sum().backward()
    optimizer.step()
    torch.save({"model_state_dict": book.state_dict(), "optimizer_state_dict": optimizer.state_dict()},
               tmp_path / "model_and_optimizer.pth")

    model, ckpt = load_model(tmp_path / "model.pth", n_heads=4)
    assert ckpt.kind == "state_dict" and ckpt.config_inferred
    assert ckpt.model_config == GPTConfig(**cfg)
    model.eval()
    torch.testing.assert_close(model(x), expected)

    ckpt = read_checkpoint(tmp_path / "model_and_optimizer.pth", n_heads=4)
    assert ckpt.kind == "book_model_and_optimizer" and ckpt.optimizer_state_dict is not None
    trainer = prepare_training(text, tokenizer=tok, resume=ckpt, config=TrainConfig(learning_rate=5e-4))
    assert trainer.state.step == -1  # a new run, started from the book's weights and moments
    exp_avg = trainer.optimizer.state[trainer.optimizer.param_groups[0]["params"][0]]["exp_avg"]
    torch.testing.assert_close(exp_avg, optimizer.state[next(book.parameters())]["exp_avg"])
    info = inspect_checkpoint(tmp_path / "model.pth")
    assert info["kind"] == "state_dict" and info["num_parameters"] == GPTConfig(**cfg).num_parameters()
    assert info["resumable"] is False


def test_other_models_shapes_are_named(tmp_path, tok):
    save_checkpoint(tmp_path / "small.pt", model=GPTModel(tiny_config(tok)))
    with pytest.raises(CheckpointError, match=r"'tok_emb.weight' has shape \(\d+, 32\) in the checkpoint "
                                              r"but \(\d+, 64\) in the model"):
        load_model(tmp_path / "small.pt", model_config=tiny_config(tok, emb_dim=64))
    with pytest.raises(CheckpointError, match="trf_blocks.2"):
        load_model(tmp_path / "small.pt", model_config=tiny_config(tok, n_layers=3))


def test_truncated_empty_and_unknown_files_are_refused(tmp_path, tok):
    good = save_checkpoint(tmp_path / "good.pt", model=GPTModel(tiny_config(tok)))
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "text.pt")
    torch.save({"weights": [1, 2, 3]}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a model checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    raw = torch.load(good, weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format 99"):
        read_checkpoint(tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        read_checkpoint(tmp_path / "missing.pt")


class _Payload:
    """Unpickling this would create a file: a stand-in for code hidden in a checkpoint."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_objects_are_refused_without_running(tmp_path, tok):
    marker = tmp_path / "pwned"
    model = GPTModel(tiny_config(tok))
    torch.save({"model_state_dict": model.state_dict(), "format_version": 1, "x": _Payload(str(marker))},
               tmp_path / "evil.pt")
    torch.save(_Payload(str(marker)), tmp_path / "evil_bare.pt")
    for name in ("evil.pt", "evil_bare.pt"):
        with pytest.raises(CheckpointError, match="pickled Python objects"):
            read_checkpoint(tmp_path / name)
    assert not marker.exists()


def test_atomic_write_keeps_the_old_file_when_saving_fails(tmp_path, tok):
    path = save_checkpoint(tmp_path / "ck.pt", model=GPTModel(tiny_config(tok)))
    before = path.read_bytes()
    with pytest.raises(Exception):
        atomic_torch_save({"model_state_dict": {}, "bad": lambda: 0}, path)  # a lambda cannot be saved
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_inspect_our_checkpoint(tmp_path, text, tok):
    trainer = prepare_training(text, tokenizer=tok, model_config=tiny_config(tok),
                               config=TrainConfig(num_epochs=1, batch_size=4, eval_freq=10, eval_iter=1),
                               checkpoint_dir=tmp_path)
    events = list(trainer.run())
    assert events[-2].kind == "checkpoint" and events[-2].path == str(tmp_path / "checkpoint.pt")
    info = inspect_checkpoint(tmp_path / "checkpoint.pt")
    assert info["kind"] == "gpt_core" and info["resumable"] and info["has_optimizer"]
    assert info["steps"] == 42 and info["epoch"] == 1 and info["tokens_seen"] == 42 * 4 * 16
    assert info["last_val_loss"] == trainer.state.val_losses[-1]
    assert os.path.getsize(tmp_path / "checkpoint.pt") == info["size_bytes"]
