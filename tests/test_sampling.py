"""Sampling filters and the book's sampling lab, against the book's code (chapter 5,
"decoding strategies") and transformers' logits warpers."""
from __future__ import annotations

import math

import pytest
import torch
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from gpt_core.sampling import (STAGES, TOY_INVERSE_VOCAB, TOY_VOCAB, describe_distribution,
                               filter_stages, sample_counts, sample_next_token, softmax_with_temperature,
                               temperature_lab, top_k_filter, top_p_filter, toy_logits)


# The book's code, as printed in chapter 5 (the functions live in its notebook, not its package).
def book_softmax_with_temperature(logits, temperature):
    scaled_logits = logits / temperature
    return torch.softmax(scaled_logits, dim=0)


def book_sampled_token_counts(probas):
    # print_sampled_tokens without the printing.
    torch.manual_seed(123)  # Manual seed for reproducibility
    sample = [torch.multinomial(probas, num_samples=1).item() for i in range(1_000)]
    sampled_ids = torch.bincount(torch.tensor(sample), minlength=len(probas))
    return sampled_ids


def book_top_k(next_token_logits, top_k=3):
    top_logits, top_pos = torch.topk(next_token_logits, top_k)
    new_logits = torch.where(
        condition=next_token_logits < top_logits[-1],
        input=torch.tensor(float("-inf")),
        other=next_token_logits,
    )
    return new_logits


# --- the toy example -------------------------------------------------------------------------
def test_toy_vocabulary_and_logits_are_the_books():
    vocab = {"closer": 0, "every": 1, "effort": 2, "forward": 3, "inches": 4,
             "moves": 5, "pizza": 6, "toward": 7, "you": 8}
    assert dict(TOY_VOCAB) == vocab
    assert TOY_INVERSE_VOCAB[3] == "forward"
    logits = toy_logits()
    probas = torch.softmax(logits, dim=0)
    assert TOY_INVERSE_VOCAB[int(torch.argmax(probas))] == "forward"  # the book's greedy pick
    torch.manual_seed(123)
    book_pick = torch.multinomial(probas, num_samples=1).item()
    torch.manual_seed(123)
    assert sample_next_token(logits.unsqueeze(0), temperature=1.0).item() == book_pick


@pytest.mark.parametrize("temperature", [1, 0.1, 5])
def test_softmax_with_temperature_equals_the_books(temperature):
    logits = toy_logits()
    assert torch.equal(softmax_with_temperature(logits, temperature),
                       book_softmax_with_temperature(logits, temperature))


def test_temperature_lab_counts_equal_the_books_and_leave_the_global_rng_alone():
    logits = toy_logits()
    state = torch.get_rng_state()
    runs = temperature_lab()
    assert torch.equal(torch.get_rng_state(), state)
    assert [r.temperature for r in runs] == [1.0, 0.1, 5.0]
    for run in runs:
        probas = book_softmax_with_temperature(logits, run.temperature)
        assert run.probs == probas.tolist()
        assert run.counts == book_sampled_token_counts(probas).tolist()
        assert sum(run.counts) == 1000
    # What the book's code gives with torch 2.13 on CPU (its printed counts came from another build).
    counts = dict(zip(TOY_VOCAB, runs[0].counts))
    assert (counts["closer"], counts["forward"], counts["toward"]) == (73, 582, 343)


def test_sample_counts_with_a_generator_or_the_global_rng():
    probas = torch.softmax(toy_logits(), dim=0)
    expected = book_sampled_token_counts(probas)
    assert torch.equal(sample_counts(probas, generator=torch.Generator().manual_seed(123), seed=None), expected)
    torch.manual_seed(123)
    assert torch.equal(sample_counts(probas, seed=None), expected)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="num_samples"):
            sample_counts(probas, bad)
    with pytest.raises(ValueError, match="not both"):
        sample_counts(probas, generator=torch.Generator(), seed=1)


def test_top_k_filter_equals_the_books():
    logits = toy_logits()
    filtered = top_k_filter(logits, 3)
    assert torch.equal(filtered, book_top_k(logits, 3))
    # The book's probabilities after top-3: only forward, toward and closer remain.
    probs = torch.softmax(filtered, dim=0)
    assert [TOY_INVERSE_VOCAB[i] for i in torch.nonzero(probs).flatten().tolist()] == ["closer", "forward", "toward"]
    assert torch.equal(top_k_filter(logits, 9), logits)
    assert torch.equal(top_k_filter(logits, 1000), logits)  # clamped to the vocabulary


def test_top_k_filter_batched_per_row():
    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    filtered = top_k_filter(logits, 5)
    assert ((filtered > float("-inf")).sum(dim=-1) == 5).all()
    expected = TopKLogitsWarper(top_k=5)(None, logits.clone())
    assert torch.equal(filtered, expected)


@pytest.mark.parametrize("top_p", [0.05, 0.3, 0.5, 0.9, 0.99])
def test_top_p_filter_equals_transformers(top_p):
    torch.manual_seed(1)
    logits = torch.randn(3, 1000) * 3
    ours = top_p_filter(logits, top_p)
    theirs = TopPLogitsWarper(top_p=top_p)(None, logits.clone())
    assert torch.equal(ours, theirs)
    # Definition: the kept tokens are the most likely ones, and just enough of them.
    for row, kept_row in zip(torch.softmax(logits, -1), ours > float("-inf")):
        kept = row[kept_row]
        assert kept.sum() >= top_p - 1e-6
        assert kept.sum() - kept.min() < top_p + 1e-6
        assert (~kept_row).sum() == 0 or kept.min() >= row[~kept_row].max()


def test_top_p_edges():
    logits = toy_logits()
    assert torch.equal(top_p_filter(logits, 1.0), logits)
    assert torch.equal(top_p_filter(logits, None), logits)
    only_best = top_p_filter(logits, 1e-9)
    assert torch.isfinite(only_best).sum() == 1 and torch.argmax(only_best) == 3


def test_sample_next_token_greedy_ignores_the_filters_and_rng():
    logits = toy_logits().unsqueeze(0)
    state = torch.get_rng_state()
    assert sample_next_token(logits, temperature=0.0, top_k=2, top_p=0.1).item() == 3
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), True, "1", None])
def test_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        filter_stages(toy_logits(), temperature=bad)
    with pytest.raises(ValueError, match="temperature"):
        softmax_with_temperature(toy_logits(), bad)


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, "5"])
def test_bad_top_k(bad):
    with pytest.raises(ValueError, match="top_k"):
        top_k_filter(toy_logits(), bad)


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.01, float("nan"), True, "0.9"])
def test_bad_top_p(bad):
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(toy_logits(), bad)


def test_temperature_divides_the_logits_and_zero_cannot_scale():
    with pytest.raises(ValueError, match="greedy"):
        softmax_with_temperature(toy_logits(), 0)
    assert torch.equal(softmax_with_temperature(toy_logits(), 2), torch.softmax(toy_logits() / 2, dim=0))
    stages = filter_stages(toy_logits(), temperature=2)
    assert torch.equal(stages["temperature"], torch.softmax(toy_logits() / 2, dim=-1))


# --- every stage, for the chart --------------------------------------------------------------
def test_filter_stages_follow_the_books_pipeline():
    logits = toy_logits()
    stages = filter_stages(logits, temperature=0.5, top_k=3, top_p=0.9)
    assert list(stages) == list(STAGES)
    assert torch.equal(stages["softmax"], torch.softmax(logits, dim=0))
    assert torch.equal(stages["top_k"], torch.softmax(book_top_k(logits, 3), dim=0))
    # The distribution the book's generate draws from for top_k=3, temperature=0.5.
    assert torch.equal(stages["temperature"], torch.softmax(book_top_k(logits, 3) / 0.5, dim=0))
    # forward 0.72, toward 0.28 at T=0.5: top-p 0.9 keeps both, drops "closer".
    assert torch.nonzero(stages["top_p"]).flatten().tolist() == [3, 7]
    for probs in stages.values():
        assert math.isclose(float(probs.sum()), 1.0, rel_tol=1e-6)


def test_filter_stages_greedy_is_one_hot():
    stages = filter_stages(toy_logits(), temperature=0.0)
    assert stages["top_p"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0]


def test_describe_distribution_rows():
    logits = toy_logits()
    labels = [TOY_INVERSE_VOCAB[i] for i in range(9)]
    dist = describe_distribution(logits, temperature=1.0, top_k=3, top_n=4, labels=labels)
    assert [c.label for c in dist.candidates] == ["forward", "toward", "closer", "you"]
    assert dist.kept == {"softmax": 9, "top_k": 3, "temperature": 3, "top_p": 3}
    probas = torch.softmax(logits, dim=0)
    assert dist.candidates[0].probs["softmax"] == probas[3].item()
    assert dist.candidates[3].probs["top_p"] == 0.0  # "you" is cut by top-k
    row = dist.table()[0]
    assert row["label"] == "forward" and row["logit"] == pytest.approx(6.75) and set(STAGES) <= set(row)
    with pytest.raises(ValueError, match="top_n"):
        describe_distribution(logits, top_n=0)
    with pytest.raises(ValueError, match="one position"):
        filter_stages(logits.unsqueeze(0))
