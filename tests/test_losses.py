"""Losses against the book's `llms_from_scratch.ch05` functions: values, gradients, loader
semantics; perplexity; label smoothing. Values only: how calc_loss_batch computes is free."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from llms_from_scratch.ch02 import create_dataloader_v1 as book_create_dataloader_v1
from llms_from_scratch.ch04 import GPTModel as BookGPTModel
from llms_from_scratch.ch05 import calc_loss_batch as book_calc_loss_batch
from llms_from_scratch.ch05 import calc_loss_loader as book_calc_loss_loader

from gpt_core.config import GPTConfig
from gpt_core.data import create_dataloader_v1, create_train_val_loaders
from gpt_core.losses import calc_loss_batch, calc_loss_loader, perplexity
from gpt_core.model import GPTModel
from gpt_core.tokenizers import GPT2Tokenizer
from gpt_core import fused_loss

from reference import book_chapter5_loaders


@pytest.fixture(autouse=True)
def always_fused(monkeypatch):
    # The fused head + loss is used only for large logits in real runs; here every shape
    # goes through it, so the small test models check its values and gradients.
    monkeypatch.setattr(fused_loss, "FUSED_MIN_LOGITS", 0)


def test_small_logits_take_the_plain_path_with_the_same_numbers(monkeypatch):
    monkeypatch.setattr(fused_loss, "FUSED_MIN_LOGITS", 10**12)
    cfg = GPTConfig(vocab_size=97, context_length=8, emb_dim=16, n_heads=2, n_layers=1, drop_rate=0.0)
    torch.manual_seed(0)
    model = GPTModel(cfg)
    x, y = torch.randint(0, 97, (2, 8)), torch.randint(0, 97, (2, 8))
    expected = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    torch.testing.assert_close(calc_loss_batch(x, y, model, "cpu"), expected)

TINY = {"vocab_size": 50257, "context_length": 64, "emb_dim": 32, "n_heads": 4,
        "n_layers": 2, "drop_rate": 0.1, "qkv_bias": False}
SMALL_VOCAB = {**TINY, "vocab_size": 211, "context_length": 96, "qkv_bias": True}


def _pair(cfg: dict, *, tie: bool = False, seed: int = 123):
    torch.manual_seed(seed)
    ours = GPTModel(GPTConfig.from_dict(cfg).replace(tie_weights=tie))
    torch.manual_seed(seed)
    book = BookGPTModel(cfg)
    if tie:  # a tied head starts from GPT-2's std 0.02 in ours: the book's model gets the same
        with torch.no_grad():
            book.tok_emb.weight.copy_(ours.tok_emb.weight)
        book.out_head.weight = torch.nn.Parameter(book.tok_emb.weight.detach().clone())
    # Trained-looking weights, so the losses are not all ~log(V).
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for (name, p), (_, q) in zip(ours.named_parameters(), book.named_parameters()):
            noise = torch.randn(p.shape, generator=g) * 0.3
            p.add_(noise)
            q.add_(noise)
        if tie:
            book.out_head.weight.copy_(book.tok_emb.weight)
    return ours, book


def _batch(cfg: dict, batch: int, length: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, cfg["vocab_size"], (batch, length), generator=g)
    y = torch.randint(0, cfg["vocab_size"], (batch, length), generator=g)
    return x, y


def _book_formula(x, y, model, label_smoothing=0.0):
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten(), label_smoothing=label_smoothing)


# --- calc_loss_batch --------------------------------------------------------------------
@pytest.mark.parametrize("cfg, tie", [(TINY, False), (TINY, True), (SMALL_VOCAB, False), (SMALL_VOCAB, True)],
                         ids=["gpt2-vocab", "gpt2-vocab-tied", "small-vocab-qkv", "small-vocab-tied"])
def test_calc_loss_batch_equals_the_books(cfg, tie):
    ours, book = _pair(cfg, tie=tie)
    ours.eval(), book.eval()
    # Shapes below, at and above the fused loss's slices of tokens.
    for shape in [(1, 1), (3, 7), (2, 64), (5, 61)]:
        x, y = _batch(cfg, *shape)
        with torch.no_grad():
            expected = book_calc_loss_batch(x, y, book, "cpu")
            torch.testing.assert_close(calc_loss_batch(x, y, ours, "cpu"), expected)
            torch.testing.assert_close(book_calc_loss_batch(x, y, ours, "cpu"), expected)
            torch.testing.assert_close(calc_loss_batch(x, y, ours, torch.device("cpu")), expected)
            # Any model that returns logits works (the book's, for one).
            torch.testing.assert_close(calc_loss_batch(x, y, book, "cpu"), expected)
        # With gradients on, the same value.
        loss = calc_loss_batch(x, y, ours, "cpu")
        assert loss.requires_grad and loss.shape == ()
        torch.testing.assert_close(loss.detach(), expected)


def _grads(model) -> dict[str, torch.Tensor]:
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return grads


def _assert_same_grads(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("cfg, tie", [(TINY, False), (TINY, True), (SMALL_VOCAB, False), (SMALL_VOCAB, True)],
                         ids=["gpt2-vocab", "gpt2-vocab-tied", "small-vocab-qkv", "small-vocab-tied"])
def test_gradients_equal_the_books_formula(cfg, tie):
    """Gradients w.r.t. every parameter equal those of
    `F.cross_entropy(model(x).flatten(0, 1), y.flatten())`, the book's training loss."""
    ours, _ = _pair(cfg, tie=tie)
    ours.eval()
    x, y = _batch(cfg, 3, 61)
    loss = calc_loss_batch(x, y, ours, "cpu")
    loss.backward()
    got = _grads(ours)
    expected_loss = _book_formula(x, y, ours)
    expected_loss.backward()
    expected = _grads(ours)
    torch.testing.assert_close(loss.detach(), expected_loss.detach())
    assert all(g.abs().sum() > 0 for g in expected.values())  # every parameter takes part
    _assert_same_grads(got, expected)


@pytest.mark.parametrize("cfg, tie", [(TINY, False), (TINY, True), (SMALL_VOCAB, True)],
                         ids=["gpt2-vocab", "gpt2-vocab-tied", "small-vocab-tied"])
@pytest.mark.parametrize("label_smoothing", [0.1, 0.3])
def test_label_smoothing_gradients(cfg, tie, label_smoothing):
    """Against `F.cross_entropy(..., label_smoothing=...)` computed in float64: in float32 that
    function's own smoothing gradient is off by up to ~2e-5 with a 50,257-token vocabulary
    (measured; beyond assert_close's float32 tolerance), so float32 is not a fair reference."""
    ours, _ = _pair(cfg, tie=tie)
    ours.eval()
    x, y = _batch(cfg, 3, 61)
    loss = calc_loss_batch(x, y, ours, "cpu", label_smoothing=label_smoothing)
    loss.backward()
    got = _grads(ours)
    reference = copy.deepcopy(ours).double()
    expected_loss = _book_formula(x, y, reference, label_smoothing)
    expected_loss.backward()
    expected = {name: g.float() for name, g in _grads(reference).items()}
    torch.testing.assert_close(loss.detach(), expected_loss.detach().float())
    _assert_same_grads(got, expected)


def test_gradients_with_dropout_equal_the_books_formula():
    # Training mode: with the same seed the dropout draws, losses and gradients are the same.
    ours, _ = _pair({**TINY, "drop_rate": 0.3})
    ours.train()
    x, y = _batch(TINY, 2, 64)
    torch.manual_seed(42)
    loss = calc_loss_batch(x, y, ours, "cpu")
    loss.backward()
    got = _grads(ours)
    torch.manual_seed(42)
    expected_loss = _book_formula(x, y, ours)
    expected_loss.backward()
    torch.testing.assert_close(loss.detach(), expected_loss.detach())
    _assert_same_grads(got, _grads(ours))
    assert ours.training


def test_scaled_and_accumulated_gradients():
    # Gradient accumulation divides the loss and calls backward several times.
    ours, _ = _pair(SMALL_VOCAB, tie=True)
    ours.eval()
    batches = [_batch(SMALL_VOCAB, 2, 40, seed=s) for s in (1, 2, 3)]
    for x, y in batches:
        (calc_loss_batch(x, y, ours, "cpu") / 3).backward()
    got = _grads(ours)
    for x, y in batches:
        (_book_formula(x, y, ours) / 3).backward()
    _assert_same_grads(got, _grads(ours))
    # A loss combined with another term.
    x, y = batches[0]
    (2.5 * calc_loss_batch(x, y, ours, "cpu") + ours.tok_emb.weight.square().sum() * 1e-3).backward()
    got = _grads(ours)
    (2.5 * _book_formula(x, y, ours) + ours.tok_emb.weight.square().sum() * 1e-3).backward()
    _assert_same_grads(got, _grads(ours))


def test_one_training_step_matches_the_book():
    # AdamW step on our model with our loss == on the book's model with the book's loss.
    # No qkv bias: the key bias gets no gradient in exact arithmetic (softmax ignores a constant
    # shift), only rounding noise, which Adam's normalisation would blow up to lr-sized steps.
    cfg = {**SMALL_VOCAB, "qkv_bias": False}
    ours, book = _pair(cfg)
    ours.train(), book.train()
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=4e-4, weight_decay=0.1)
    opt_book = torch.optim.AdamW(book.parameters(), lr=4e-4, weight_decay=0.1)
    for step in range(3):
        x, y = _batch(cfg, 2, 96, seed=step)
        for model, opt, loss_fn in ((ours, opt_ours, calc_loss_batch), (book, opt_book, book_calc_loss_batch)):
            torch.manual_seed(step)
            opt.zero_grad()
            loss_fn(x, y, model, "cpu").backward()
            opt.step()
    book_sd = book.state_dict()
    for name, value in ours.state_dict().items():
        if not name.endswith("mask"):
            torch.testing.assert_close(value, book_sd[name], msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("label_smoothing", [0.05, 0.1, 0.5])
def test_label_smoothing_equals_pytorchs(label_smoothing):
    ours, _ = _pair(SMALL_VOCAB, tie=True)
    ours.eval()
    x, y = _batch(SMALL_VOCAB, 2, 50)
    with torch.no_grad():
        logits = ours(x)
        expected = F.cross_entropy(logits.flatten(0, 1), y.flatten(), label_smoothing=label_smoothing)
        got = calc_loss_batch(x, y, ours, "cpu", label_smoothing=label_smoothing)
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0])
def test_label_smoothing_bad_values(bad):
    ours, _ = _pair(SMALL_VOCAB)
    x, y = _batch(SMALL_VOCAB, 1, 8)
    with pytest.raises(ValueError, match="label_smoothing"):
        calc_loss_batch(x, y, ours, "cpu", label_smoothing=bad)


def test_ignore_index_like_the_book():
    # The book's chapter 7 reuses calc_loss_batch with -100 marking padding targets.
    ours, book = _pair(SMALL_VOCAB)
    ours.eval(), book.eval()
    x, y = _batch(SMALL_VOCAB, 2, 30)
    y[0, 20:] = -100
    y[1, 5:] = -100
    with torch.no_grad():
        torch.testing.assert_close(calc_loss_batch(x, y, ours, "cpu"), book_calc_loss_batch(x, y, book, "cpu"))


# --- calc_loss_loader -------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_pair():
    ours, book = _pair(TINY, seed=5)
    return ours.eval(), book.eval()


@pytest.fixture(scope="module")
def verdict_loaders(verdict_text):
    """Chapter 5's loaders on the first 6,000 characters, context 16 (small, for speed):
    ours and the book's. About 39 training batches and 4 validation batches."""
    text = verdict_text[:6000]
    book = book_chapter5_loaders(text, max_length=16)
    ours = create_train_val_loaders(text, GPT2Tokenizer(), batch_size=2, max_length=16)
    return ours, book


@pytest.mark.parametrize("num_batches", [None, 1, 3, 1000])
def test_calc_loss_loader_equals_the_books(tiny_pair, verdict_loaders, num_batches):
    ours, book = tiny_pair
    (train, val), (book_train, book_val) = verdict_loaders
    assert len(train) == len(book_train) and len(val) == len(book_val) > 1
    for loader, book_loader in ((train, book_train), (val, book_val)):
        torch.manual_seed(123)  # shuffling: the same batches for both
        got = calc_loss_loader(loader, ours, "cpu", num_batches=num_batches)
        torch.manual_seed(123)
        expected = book_calc_loss_loader(book_loader, book, "cpu", num_batches=num_batches)
        assert math.isclose(got, expected, rel_tol=1e-5), (got, expected)


def test_num_batches_semantics(tiny_pair, verdict_loaders):
    ours, _ = tiny_pair
    (_, val), _ = verdict_loaders
    per_batch = [calc_loss_batch(x, y, ours, "cpu").item() for x, y in val]
    assert len(per_batch) == len(val) >= 3
    for k in (1, 2, len(val)):
        assert math.isclose(calc_loss_loader(val, ours, "cpu", num_batches=k), sum(per_batch[:k]) / k, rel_tol=1e-6)
    # More batches than the loader has: all of them (the book's min()).
    assert math.isclose(calc_loss_loader(val, ours, "cpu", num_batches=10**6), sum(per_batch) / len(per_batch), rel_tol=1e-6)
    assert math.isclose(calc_loss_loader(val, ours, "cpu"), sum(per_batch) / len(per_batch), rel_tol=1e-6)
    # Zero batches: NaN (the book divides by zero there).
    assert math.isnan(calc_loss_loader(val, ours, "cpu", num_batches=0))


def test_calc_loss_loader_keeps_mode_and_grads(tiny_pair, verdict_loaders):
    ours, _ = tiny_pair
    (_, val), _ = verdict_loaders
    ours.train()
    try:
        calc_loss_loader(val, ours, "cpu", num_batches=1)
        assert ours.training  # the caller's mode is left alone
        assert all(p.grad is None for p in ours.parameters())
    finally:
        ours.eval()
    calc_loss_loader(val, ours, "cpu", num_batches=1)
    assert not ours.training


def test_nan_on_an_empty_loader(tiny_pair):
    ours, book = tiny_pair
    empty = create_dataloader_v1("too short", batch_size=2, max_length=64, stride=64, shuffle=False, drop_last=False)
    book_empty = book_create_dataloader_v1("too short", batch_size=2, max_length=64, stride=64, shuffle=False,
                                           drop_last=False)
    assert len(empty) == len(book_empty) == 0
    assert math.isnan(calc_loss_loader(empty, ours, "cpu"))
    assert math.isnan(book_calc_loss_loader(book_empty, book, "cpu"))
    assert math.isnan(calc_loss_loader(empty, ours, "cpu", num_batches=3))


# --- perplexity -------------------------------------------------------------------------
def test_perplexity():
    assert perplexity(0.0) == 1.0
    assert math.isclose(perplexity(math.log(50257)), 50257, rel_tol=1e-9)
    assert math.isclose(perplexity(torch.tensor(10.7940)), math.exp(10.7940), rel_tol=1e-6)
    assert math.isclose(perplexity(2.5), math.exp(2.5))
    assert math.isnan(perplexity(float("nan")))
    assert perplexity(1000.0) == float("inf")
    assert perplexity(float("inf")) == float("inf")


def test_untrained_perplexity_is_about_the_vocabulary(tiny_pair, verdict_loaders):
    ours, _ = tiny_pair
    torch.manual_seed(0)
    fresh = GPTModel(GPTConfig.from_dict(TINY)).eval()
    (train, _), _ = verdict_loaders
    ppl = perplexity(calc_loss_loader(train, fresh, "cpu", num_batches=2))
    assert 0.3 * 50257 < ppl < 3 * 50257


# --- the book's numbers -----------------------------------------------------------------
BOOK_CFG = {"vocab_size": 50257, "context_length": 256, "emb_dim": 768, "n_heads": 12,
            "n_layers": 12, "drop_rate": 0.1, "qkv_bias": False}


@pytest.fixture(scope="module")
def book_config_pair():
    torch.manual_seed(123)
    ours = GPTModel(BOOK_CFG).eval()
    torch.manual_seed(123)
    book = BookGPTModel(BOOK_CFG).eval()
    return ours, book


@pytest.fixture(scope="module")
def book_loaders(verdict_text):
    """Chapter 5: batch 2, context 256, stride 256, 90/10 split; ours and the book's."""
    torch.manual_seed(123)
    book = book_chapter5_loaders(verdict_text)
    ours = create_train_val_loaders(verdict_text, GPT2Tokenizer(), batch_size=2, max_length=256)
    return ours, book


def test_initial_validation_loss_is_the_books(book_config_pair, book_loaders):
    # Chapter 5 prints "Validation loss: 10.98110580444336".
    ours, book = book_config_pair
    (_, val), (_, book_val) = book_loaders
    val_loss = calc_loss_loader(val, ours, "cpu")
    assert math.isclose(val_loss, book_calc_loss_loader(book_val, book, "cpu"), rel_tol=1e-6)
    assert round(val_loss, 5) == 10.98111


def test_initial_training_batch_loss_is_the_books(book_config_pair, book_loaders):
    # One batch on both models: the book's model is too slow for all nine in a unit test.
    ours, book = book_config_pair
    (train, _), (book_train, _) = book_loaders
    torch.manual_seed(123)
    x, y = next(iter(train))
    torch.manual_seed(123)
    book_x, book_y = next(iter(book_train))
    assert torch.equal(x, book_x) and torch.equal(y, book_y)
    with torch.no_grad():
        torch.testing.assert_close(calc_loss_batch(x, y, ours, "cpu"), book_calc_loss_batch(x, y, book, "cpu"))


def test_initial_training_loss_is_the_books_figure(book_config_pair, book_loaders):
    # Chapter 5 prints "Training loss: 10.98758347829183" (all nine batches, our model).
    ours, _ = book_config_pair
    (train, _), _ = book_loaders
    torch.manual_seed(123)
    assert round(calc_loss_loader(train, ours, "cpu"), 5) == 10.98758
