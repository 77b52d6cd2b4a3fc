"""The trainer against the book's `train_model_simple` / appendix D `train_model`, and its
stop, NaN, accumulation, schedule and early-stopping behaviour, on tiny models."""
from __future__ import annotations

import contextlib
import copy
import io
import math
import threading

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from gpt_core.config import GPTConfig, TrainConfig
from gpt_core.data import GPTDatasetV1, create_train_val_loaders
from gpt_core.model import GPTModel
from gpt_core.prepare import make_optimizer, prepare_training, select_device
from gpt_core.schedule import EpochLoaderSchedule, lr_at
from gpt_core.train import Trainer, TrainState, is_overfitting, train_model_simple
from gpt_core.train_events import (DoneEvent, EpochEvent, EvalEvent, SampleEvent, StepEvent, StoppedEvent,
                                   format_event)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(tok, drop_rate=0.0, **kw) -> dict:
    return dict(vocab_size=tok.n_vocab, context_length=16, emb_dim=32, n_heads=4, n_layers=2,
                drop_rate=drop_rate, qkv_bias=False, **kw)


class BookTokenizer:
    """The book calls encode(text, allowed_special=...); our CharTokenizer takes no options."""

    def __init__(self, tok):
        self.tok = tok

    def encode(self, text, allowed_special=None):
        return self.tok.encode(text)

    def decode(self, ids):
        return self.tok.decode(ids)


def book_loaders(text, tok, batch_size=4, ctx=16, shuffle=True):
    from llms_from_scratch.ch02 import GPTDatasetV1 as BookDataset
    split = int(0.9 * len(text))
    btok = BookTokenizer(tok)
    train = DataLoader(BookDataset(text[:split], btok, ctx, ctx), batch_size=batch_size, shuffle=shuffle, drop_last=True)
    val = DataLoader(BookDataset(text[split:], btok, ctx, ctx), batch_size=batch_size, shuffle=False, drop_last=False)
    return train, val


def run_book(monkeypatch, text, tok, cfg, *, epochs=2, appendix_d=None):
    from llms_from_scratch import appendix_d as book_d
    from llms_from_scratch import ch04, ch05
    step_losses = []
    module = book_d if appendix_d else ch05
    original = module.calc_loss_batch

    def recording(input_batch, target_batch, model, device):
        loss = original(input_batch, target_batch, model, device)
        if model.training:
            step_losses.append(loss.item())
        return loss

    monkeypatch.setattr(module, "calc_loss_batch", recording)
    train_loader, val_loader = book_loaders(text, tok)
    torch.manual_seed(123)
    model = ch04.GPTModel(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if appendix_d:
            result = book_d.train_model(model, train_loader, val_loader, optimizer, "cpu", epochs, 5, 2,
                                        "Every effort moves you", BookTokenizer(tok), **appendix_d)
        else:
            result = ch05.train_model_simple(model, train_loader, val_loader, optimizer, "cpu", epochs, 5, 2,
                                             "Every effort moves you", BookTokenizer(tok))
    samples = [line for line in out.getvalue().splitlines() if not line.startswith("Ep ")]
    return step_losses, result, samples, model


@pytest.mark.parametrize("drop_rate", [0.0, 0.1])
def test_matches_book_train_model_simple(monkeypatch, text, tok, drop_rate):
    """Same seed, same batches: the same per-step losses, evaluations, tokens and samples.
    With dropout on too: our attention's fused dropout draws the book's Bernoulli mask."""
    cfg = tiny(tok, drop_rate)
    book_steps, (b_train, b_val, b_tokens), book_samples, _ = run_book(monkeypatch, text, tok, cfg)

    train_loader, val_loader = create_train_val_loaders(text, tok, batch_size=4, max_length=16)
    torch.manual_seed(123)
    model = GPTModel(cfg)
    optimizer = make_optimizer(model, TrainConfig())
    assert optimizer.defaults.get("fused") is True  # fused AdamW on the CPU
    events = []
    train, val, tokens = train_model_simple(model, train_loader, val_loader, optimizer, "cpu", 2, 5, 2,
                                            "Every effort moves you", tok, on_event=events.append)
    ours = [e.loss for e in events if isinstance(e, StepEvent)]
    assert len(ours) == len(book_steps) == 2 * len(train_loader)
    torch.testing.assert_close(torch.tensor(ours), torch.tensor(book_steps), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.tensor(train + val), torch.tensor(b_train + b_val), atol=1e-4, rtol=0)
    assert tokens == b_tokens
    samples = [e.text.replace("\n", " ") for e in events if isinstance(e, SampleEvent)]
    assert [s.rstrip() for s in samples] == [s.rstrip() for s in book_samples]
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert [format_event(e) for e in evals][0].startswith("Ep 1 (Step 000000): Train loss ")
    assert all(math.isclose(e.val_ppl, math.exp(e.val_loss)) for e in evals)
    assert isinstance(events[-1], DoneEvent)


def test_matches_book_appendix_d_warmup_cosine_clipping(monkeypatch, text, tok):
    cfg = tiny(tok, 0.0)
    opts = dict(warmup_steps=10, initial_lr=1e-5, min_lr=1e-6)
    book_steps, (_, _, _, book_lrs), _, book_model = run_book(monkeypatch, text, tok, cfg, appendix_d=opts)

    config = TrainConfig(num_epochs=2, batch_size=4, learning_rate=4e-4, eval_freq=5, eval_iter=2,
                         lr_schedule="cosine", warmup_steps=10, initial_lr=1e-5, min_lr=1e-6,
                         grad_clip=1.0, clip_during_warmup=False, seed=123)
    trainer = prepare_training(text, tokenizer=tok, model_config=GPTConfig.from_dict(cfg), config=config)
    events = list(trainer.run())
    steps = [e for e in events if isinstance(e, StepEvent)]
    torch.testing.assert_close(torch.tensor([e.lr for e in steps], dtype=torch.float64),
                               torch.tensor(book_lrs, dtype=torch.float64), atol=1e-12, rtol=1e-9)
    torch.testing.assert_close(torch.tensor([e.loss for e in steps]), torch.tensor(book_steps), atol=1e-4, rtol=0)
    for (name, ours), theirs in zip(trainer.model.state_dict().items(), book_model.state_dict().values()):
        if not name.endswith("mask"):
            torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-3)


def test_lr_at_warmup_then_cosine_to_min():
    c = TrainConfig(learning_rate=1e-3, lr_schedule="cosine", warmup_steps=4, initial_lr=1e-4, min_lr=1e-5)
    assert lr_at(0, c, 20) == pytest.approx(1e-4)
    assert lr_at(4, c, 20) == pytest.approx(1e-3)
    assert lr_at(12, c, 20) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert lr_at(20, c, 20) == pytest.approx(1e-5)
    assert lr_at(7, TrainConfig(learning_rate=1e-3), 20) == 1e-3


def small_trainer(text, tok, *, drop_rate=0.1, **options):
    config = TrainConfig(**{**dict(num_epochs=2, batch_size=4, eval_freq=5, eval_iter=2, seed=123), **options})
    return prepare_training(text, tokenizer=tok, model_config=GPTConfig.from_dict(tiny(tok, drop_rate)),
                            config=config)


def test_stop_flag_then_continue_equals_straight_run(text, tok):
    straight = small_trainer(text, tok, max_steps=30)
    list(straight.run())

    trainer = small_trainer(text, tok, max_steps=30)
    stop = threading.Event()
    events = []
    for event in trainer.run(stop):
        events.append(event)
        if isinstance(event, StepEvent) and event.step == 12:
            stop.set()
    assert isinstance(events[-1], StoppedEvent) and events[-1].step == 12
    assert trainer.state.step == 12 and all(p.grad is None for p in trainer.model.parameters())
    rest = list(trainer.run())  # continues where it stopped
    assert isinstance(rest[-1], DoneEvent) and rest[0].step == 13
    for a, b in zip(trainer.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)
    assert trainer.state.step_losses == straight.state.step_losses


def test_closing_the_generator_leaves_a_whole_step(text, tok):
    reference = small_trainer(text, tok, max_steps=8)
    list(reference.run())
    trainer = small_trainer(text, tok)
    gen = trainer.run()
    for event in gen:
        if isinstance(event, StepEvent) and event.step == 7:
            gen.close()
    assert trainer.state.step == 7
    for a, b in zip(trainer.model.state_dict().values(), reference.model.state_dict().values()):
        assert torch.equal(a, b)


class NaNAfter(nn.Module):
    """A GPT whose logits turn NaN on the n-th training forward pass."""

    def __init__(self, model: nn.Module, n: int):
        super().__init__()
        self.inner, self.n, self.calls = model, n, 0

    def forward(self, idx):
        logits = self.inner(idx)
        if self.training:
            self.calls += 1
            if self.calls == self.n:
                return logits * float("nan")
        return logits


def test_nan_loss_stops_and_keeps_last_good_weights(text, tok):
    torch.manual_seed(1)
    model = NaNAfter(GPTModel(tiny(tok)), n=4)
    train_loader, val_loader = create_train_val_loaders(text, tok, batch_size=4, max_length=16)
    optimizer = make_optimizer(model, TrainConfig())
    trainer = Trainer(model, optimizer, EpochLoaderSchedule(train_loader, val_loader, 1),
                      config=TrainConfig(eval_freq=100, eval_iter=1))
    snapshots, events = {}, []
    for event in trainer.run():
        events.append(event)
        if isinstance(event, StepEvent):
            snapshots[event.step] = copy.deepcopy(model.state_dict())
    stopped = events[-1]
    assert isinstance(stopped, StoppedEvent) and stopped.step == 2
    assert "nan at step 3" in stopped.reason and "after step 2" in stopped.reason
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, snapshots[2][name]), name


def test_gradient_accumulation_equals_larger_batch(text, tok):
    def run(batch_size, accum):
        ds = GPTDatasetV1(text[:2700], tok, 16, 16)
        loader = DataLoader(ds, batch_size=batch_size, shuffle=False, drop_last=True)
        torch.manual_seed(5)
        model = GPTModel(tiny(tok))
        config = TrainConfig(batch_size=batch_size, grad_accum_steps=accum, eval_freq=1000, eval_iter=1)
        trainer = Trainer(model, make_optimizer(model, config), EpochLoaderSchedule(loader, loader, 1), config=config)
        events = [e for e in trainer.run() if isinstance(e, StepEvent)]
        return model, events

    big, big_events = run(8, 1)
    acc, acc_events = run(4, 2)
    assert len(acc_events) == len(big_events) == 21
    torch.testing.assert_close([e.loss for e in acc_events], [e.loss for e in big_events], atol=1e-5, rtol=0)
    assert acc_events[-1].tokens_seen == big_events[-1].tokens_seen
    for a, b in zip(acc.parameters(), big.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_label_smoothing_reaches_the_loss(text, tok):
    import torch.nn.functional as F
    trainer = small_trainer(text, tok, drop_rate=0.0, shuffle=False, label_smoothing=0.1, max_steps=1)
    x, y = next(iter(trainer.schedule.train_loader))
    with torch.no_grad():
        expected = F.cross_entropy(trainer.model(x).flatten(0, 1), y.flatten(), label_smoothing=0.1)
    step = next(e for e in trainer.run() if isinstance(e, StepEvent))
    assert step.loss == pytest.approx(expected.item(), abs=1e-5)


def test_overfitting_flag_and_early_stopping(tok):
    # Train on "a"s, validate on "b"s: the validation loss can only rise.
    train_ds = GPTDatasetV1(torch.full((80,), tok.stoi["a"]), None, 16, 16)
    val_ds = GPTDatasetV1(torch.full((100,), tok.stoi["b"]), None, 16, 16)
    torch.manual_seed(0)
    model = GPTModel(tiny(tok))
    config = TrainConfig(eval_freq=2, eval_iter=2, learning_rate=1e-2, early_stopping_patience=3, overfit_patience=2)
    schedule = EpochLoaderSchedule(DataLoader(train_ds, batch_size=2), DataLoader(val_ds, batch_size=2), 50)
    trainer = Trainer(model, make_optimizer(model, config), schedule, config=config)
    events = list(trainer.run())
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert isinstance(events[-1], StoppedEvent) and "early stopping" in events[-1].reason
    val, train = [e.val_loss for e in evals], [e.train_loss for e in evals]
    best = val.index(min(val))
    assert len(evals) == best + 4 and events[-1].step == evals[-1].step  # 3 evaluations past the best
    assert all(v > val[best] for v in val[best + 1:])
    assert not evals[0].overfitting and evals[-1].overfitting
    # Two rises in a row with the training loss falling, once the 2 batches of an epoch were read.
    per_pass = trainer.batches_per_epoch * 2 * 16
    assert per_pass == 64
    tokens = [e.tokens_seen for e in evals]
    assert [e.overfitting for e in evals] == [
        i >= 2 and val[i - 2] < val[i - 1] < val[i] and train[i] < train[i - 2] and tokens[i - 2] >= per_pass
        for i in range(len(val))]


def test_is_overfitting_needs_val_rising_twice_on_enough_batches_after_one_pass():
    assert is_overfitting([3.0, 2.5, 2.0, 1.5], [5.0, 4.0, 4.2, 4.5], 2)
    assert not is_overfitting([3.0, 2.5, 2.0, 1.5], [5.0, 4.0, 3.9, 4.5], 2)  # new best inside the window
    assert not is_overfitting([3.0, 2.5, 2.0, 1.5], [5.0, 4.5, 4.4, 4.6], 2)  # one rise, one fall: noise
    assert not is_overfitting([3.0, 2.5, 2.6, 2.7], [5.0, 4.0, 4.2, 4.5], 2)  # train not falling
    assert not is_overfitting([3.0, 2.0], [5.0, 6.0], 2)
    # Each evaluation must average at least two batches (one is too noisy to call a rise) or
    # the whole validation part.
    assert not is_overfitting([3.0, 2.5, 2.0, 1.5], [5.0, 4.0, 4.2, 4.5], 2, eval_batches=1)
    assert is_overfitting([3.0, 2.5, 2.0, 1.5], [5.0, 4.0, 4.2, 4.5], 2, eval_batches=1, whole_split=True)
    # The rise must start once the training part was read once: before, every batch is new text.
    seen = [0, 100, 200, 300]
    assert not is_overfitting([3.0, 2.5, 2.0, 1.5], [5.0, 4.0, 4.2, 4.5], 2, tokens_seen=seen, tokens_per_pass=150)
    assert is_overfitting([3.0, 2.5, 2.0, 1.5], [5.0, 4.0, 4.2, 4.5], 2, tokens_seen=seen, tokens_per_pass=100)
    # A patience below two still needs two rises.
    assert not is_overfitting([3.0, 2.5, 1.5], [5.0, 4.0, 4.5], 1)


class Bigram(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.table = nn.Embedding(vocab, vocab)

    def forward(self, idx):
        return self.table(idx)  # (B, T, V)


class RandomWindows:
    """Iterations over random windows from a private generator: a BatchSchedule that is not
    a DataLoader (the BabyGPT way)."""

    num_epochs = 1

    def __init__(self, ids, iters, batch_size=4, T=8):
        self.ids, self.iters, self.B, self.T = ids, iters, batch_size, T
        self.gen = torch.Generator().manual_seed(0)

    def _batch(self):
        starts = torch.randint(len(self.ids) - self.T - 1, (self.B,), generator=self.gen)
        x = torch.stack([self.ids[s:s + self.T] for s in starts])
        y = torch.stack([self.ids[s + 1:s + self.T + 1] for s in starts])
        return x, y

    def batches_per_epoch(self):
        return self.iters

    def iter_epoch(self, epoch, start=0):
        return (self._batch() for _ in range(start, self.iters))

    def eval_sources(self):
        batches = [self._batch() for _ in range(2)]
        return batches, batches

    def state_dict(self):
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state):
        self.gen.set_state(state["gen"])


def test_any_module_and_any_batch_schedule(text, tok):
    ids = torch.tensor(tok.encode(text))
    torch.manual_seed(0)
    model = Bigram(tok.n_vocab)
    config = TrainConfig(learning_rate=0.1, eval_freq=20, eval_iter=2, start_context="The ", sample_tokens=5)
    trainer = Trainer(model, make_optimizer(model, config), RandomWindows(ids, 60), config=config, tokenizer=tok)
    events = list(trainer.run())
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert len(steps) == 60 and steps[-1].loss < steps[0].loss - 0.3
    sample = next(e for e in events if isinstance(e, SampleEvent))
    assert sample.text.startswith("The ") and len(sample.text) == 9
    assert [type(e) for e in events[-3:]] == [SampleEvent, EpochEvent, DoneEvent]


def test_bad_runs_fail_before_any_work(text, tok):
    cfg = GPTConfig.from_dict(tiny(tok))
    with pytest.raises(ValueError, match="fewer than one batch"):
        prepare_training(text[:30], tokenizer=tok, model_config=cfg, config=TrainConfig())
    with pytest.raises(ValueError, match="vocab_size"):
        prepare_training(text, tokenizer=tok, model_config=cfg.replace(vocab_size=10), config=TrainConfig())
    with pytest.raises(ValueError, match="warmup_steps"):
        prepare_training(text, tokenizer=tok, model_config=cfg,
                         config=TrainConfig(num_epochs=1, lr_schedule="cosine", warmup_steps=10_000))
    with pytest.raises(ValueError, match="no CUDA"):
        if not torch.cuda.is_available():
            select_device("cuda")
        else:
            raise ValueError("no CUDA check possible on a CUDA machine")
    assert select_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("field, value", [
    ("learning_rate", 0.0), ("learning_rate", -1e-3), ("learning_rate", float("nan")),
    ("learning_rate", float("inf")), ("batch_size", 0), ("num_epochs", 0), ("num_epochs", 10**9),
    ("eval_freq", 0), ("eval_iter", 0), ("grad_accum_steps", 0), ("label_smoothing", 1.0),
    ("grad_clip", 0.0), ("weight_decay", float("nan")), ("min_lr", 1.0), ("drop_rate", 1.0),
    ("device", "gpu"), ("lr_schedule", "linear"), ("threads", 0), ("batch_size", 2.5),
])
def test_train_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_resume_at_the_end_of_an_epoch_samples_then_goes_on(text, tok):
    """A run stopped (early stopping) right after an epoch's last batch resumes with that
    epoch's sample, not with an exhausted batch iterator."""
    first = small_trainer(text, tok, num_epochs=2)
    per_epoch = first.batches_per_epoch
    state = TrainState(step=per_epoch - 1, epoch=0, position=per_epoch, tokens_seen=per_epoch * 64)
    trainer = Trainer(first.model, first.optimizer, first.schedule, config=first.config, tokenizer=tok, state=state)
    events = list(trainer.run())
    assert [type(e) for e in events[:3]] == [SampleEvent, EpochEvent, StepEvent]
    assert events[0].epoch == 1 and events[2].step == per_epoch and events[2].epoch == 2
    assert isinstance(events[-1], DoneEvent) and events[-1].step == 2 * per_epoch - 1
