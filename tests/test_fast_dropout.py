"""Fast mode's dropout on a CPU: the same distribution as Bernoulli dropout from a quarter of
the random draws; exact mode (no autocast) still draws the book's masks."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gpt_core import fast_dropout
from gpt_core.fast_dropout import Dropout, causal_attention, keep_mask
from gpt_core.model import GPTModel

BF16 = dict(device_type="cpu", dtype=torch.bfloat16)


@pytest.fixture(autouse=True)
def small_masks_too(monkeypatch):
    """These tests' tensors are small; the size rule has its own test."""
    monkeypatch.setattr(fast_dropout, "MIN_ELEMENTS", 0)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_each_element_is_kept_with_probability_one_minus_p_in_every_lane(p):
    torch.manual_seed(0)
    mask = keep_mask((400, 1000), p)
    assert mask.dtype == torch.bool and mask.shape == (400, 1000)
    n = mask.numel()
    tolerance = 5 * math.sqrt(p * (1 - p) / (n / 4))  # five standard errors of one lane's share
    for lane in range(4):  # each of a draw's four 16-bit lanes, the top one (its sign) included
        share = mask.flatten()[lane::4].float().mean().item()
        assert abs(share - (1 - p)) < tolerance, (lane, share)


def test_neighbouring_elements_are_independent():
    torch.manual_seed(1)
    mask = keep_mask((1_000_000,), 0.5).float()
    both = (mask[:-1] * mask[1:]).mean().item()  # P(keep, keep) = 0.25 when independent
    assert abs(both - 0.25) < 0.003


def test_an_odd_shape_takes_its_elements_from_the_draws():
    torch.manual_seed(2)
    assert keep_mask((3, 5, 7), 0.2).shape == (3, 5, 7)


def test_dropout_scales_what_it_keeps_and_its_gradient_follows_the_same_mask():
    torch.manual_seed(3)
    x = torch.randn(64, 128, requires_grad=True)
    torch.manual_seed(4)
    y = fast_dropout.dropout(x, 0.25)
    torch.manual_seed(4)
    kept = keep_mask(x.shape, 0.25)
    torch.testing.assert_close(y, torch.where(kept, x / 0.75, 0.0))
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)
    assert fast_dropout.dropout(x, 0.0) is x
    assert torch.count_nonzero(fast_dropout.dropout(x, 1.0)) == 0


def test_the_module_draws_the_books_bernoulli_mask_outside_autocast_and_the_fast_one_inside():
    x = torch.randn(8, 256)
    ours, book = Dropout(0.1), torch.nn.Dropout(0.1)
    torch.manual_seed(5)
    exact = ours(x)
    torch.manual_seed(5)
    torch.testing.assert_close(exact, book(x), rtol=0, atol=0)  # the book's numbers, bit for bit
    torch.manual_seed(5)
    with torch.autocast(**BF16):
        fast = ours(x)
    torch.manual_seed(5)
    torch.testing.assert_close(fast, fast_dropout.dropout(x, 0.1), rtol=0, atol=0)
    assert not torch.equal(fast, exact)
    ours.eval()
    with torch.autocast(**BF16):
        assert torch.equal(ours(x), x)  # evaluation never drops


def test_causal_attention_is_sdpas_without_dropout_and_drops_its_weights_with():
    torch.manual_seed(6)
    q, k, v = (torch.randn(2, 3, 16, 8) for _ in range(3))
    causal = torch.ones(16, 16, dtype=torch.bool).triu(1)
    torch.testing.assert_close(causal_attention(q, k, v, 0.0, causal),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True))
    torch.manual_seed(7)
    dropped = causal_attention(q, k, v, 0.3, causal)
    torch.manual_seed(7)
    kept = keep_mask((2, 3, 16, 16), 0.3)
    weights = torch.softmax((q @ k.transpose(-2, -1) / math.sqrt(8)).masked_fill(
        torch.ones(16, 16, dtype=torch.bool).triu(1), float("-inf")), dim=-1)
    torch.testing.assert_close(dropped, torch.where(kept, weights / 0.7, 0.0) @ v)


def _fast_step_loss(seed: int) -> float:
    torch.manual_seed(0)
    model = GPTModel({"vocab_size": 97, "context_length": 16, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
                      "drop_rate": 0.1, "qkv_bias": False})
    ids = torch.randint(0, 97, (2, 16))
    torch.manual_seed(seed)
    with torch.autocast(**BF16):
        logits = model(ids)
    return F.cross_entropy(logits.float().flatten(0, 1), ids.flatten()).item()


def test_a_seeded_fast_forward_repeats_itself_and_its_masks_depend_on_the_seed():
    assert _fast_step_loss(1) == _fast_step_loss(1)
    assert _fast_step_loss(1) != _fast_step_loss(2)


def test_the_model_keeps_the_books_module_names_and_types():
    model = GPTModel({"vocab_size": 97, "context_length": 16, "emb_dim": 32, "n_heads": 4, "n_layers": 1,
                      "drop_rate": 0.1, "qkv_bias": False})
    drops = {name for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout)}
    assert drops == {"drop_emb", "trf_blocks.0.att.dropout", "trf_blocks.0.drop_shortcut"}


def test_a_compiled_model_draws_its_own_masks(monkeypatch):
    x = torch.randn(4, 8)
    with torch.autocast(**BF16):
        assert fast_dropout.fast_masks(x)
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
        assert not fast_dropout.fast_masks(x)
    monkeypatch.undo()
    assert not fast_dropout.fast_masks(x)  # no autocast: exact mode


def test_a_small_mask_stays_bernoulli(monkeypatch):
    monkeypatch.setattr(fast_dropout, "MIN_ELEMENTS", 1 << 18)
    with torch.autocast(**BF16):
        assert not fast_dropout.fast_masks(torch.empty(8, 64, 128))  # the demo preset's shortcut
        assert fast_dropout.fast_masks(torch.empty(2, 256, 768))  # the book's 124M
        assert fast_dropout.fast_masks(torch.empty(0), 2 * 12 * 256 * 256)
