"""The page words the engine's overfitting flag and decides nothing of its own: the chart and the
metrics show the hint exactly when the trainer's latest evaluation flagged overfitting (the rule
of gpt_core.train.is_overfitting), and a run read back shows what its trainer says."""
from __future__ import annotations

import pytest
import torch

from gpt_core.config import TrainConfig
from gpt_core.data import GPTDatasetV1
from gpt_core.model import GPTModel
from gpt_core.prepare import make_optimizer
from gpt_core.schedule import EpochLoaderSchedule
from gpt_core.tokenizers import CharTokenizer
from gpt_core.train import Trainer
from gpt_core.train_events import EvalEvent
from playground.history import RunHistory
from playground.session import Workspace
from playground.train_view import figure, metrics


def _overfitting_run():
    """Train on "a"s, validate on "b"s: the validation loss can only rise."""
    from torch.utils.data import DataLoader
    tok = CharTokenizer.from_text("ab")
    train_ds = GPTDatasetV1(torch.full((80,), tok.stoi["a"]), None, 16, 16)
    val_ds = GPTDatasetV1(torch.full((100,), tok.stoi["b"]), None, 16, 16)
    torch.manual_seed(0)
    from gpt_core.config import GPTConfig
    model = GPTModel(GPTConfig(vocab_size=tok.n_vocab, context_length=16, emb_dim=16, n_heads=2, n_layers=1,
                               drop_rate=0.0))
    config = TrainConfig(eval_freq=2, eval_iter=2, learning_rate=1e-2, num_epochs=12)
    schedule = EpochLoaderSchedule(DataLoader(train_ds, batch_size=2), DataLoader(val_ds, batch_size=2), 12)
    return Trainer(model, make_optimizer(model, config), schedule, config=config)


def test_the_chart_and_the_metrics_say_overfitting_exactly_when_the_trainer_does():
    trainer = _overfitting_run()
    ws = Workspace()
    h = ws.history = RunHistory()
    seen = []
    for ev in trainer.run():
        if isinstance(ev, EvalEvent):
            h.add_eval(ev.step, ev.tokens_seen, ev.train_loss, ev.val_loss)
            h.overfitting = ev.overfitting
            fig = figure(ws)
            on_chart = any("Overfitting" in (a.text or "") for a in fig.layout.annotations)
            in_metrics = "Overfitting" in metrics(ws, None, ev)
            seen.append(ev.overfitting)
            assert on_chart == in_metrics == ev.overfitting
    assert True in seen and seen[0] is False  # it did flag, not at the start
    assert h.overfitting == trainer.overfitting  # what a run read back would show


@pytest.mark.parametrize("flag", [False, True])
def test_the_hint_is_the_flag_in_words(flag):
    h = RunHistory(overfitting=flag)
    hint = h.overfitting_hint()
    assert (hint is not None) == flag
    assert hint is None or hint.startswith("Overfitting: validation loss rose at each of the last 2 evaluations")
