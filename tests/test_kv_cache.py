"""The KV cache: the cached path computes what the full forward computes, and generation
with it picks the book's tokens (`llms_from_scratch.ch05.generate`), also past the window."""
from __future__ import annotations

import pytest
import torch
from llms_from_scratch.ch05 import generate as book_generate

from gpt_core.generate import generate
from gpt_core.model import GPTModel, KVCache

from conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread_per_module")
PROMPT = torch.tensor([[6109, 3626, 6100, 345]])  # "Every effort moves you"


# --- the cached forward -------------------------------------------------------------------
@pytest.mark.parametrize("qkv_bias", [False, True])
def test_cached_hidden_states_match_full_forward(qkv_bias):
    torch.manual_seed(0)
    model = GPTModel(TINY.replace(vocab_size=97, qkv_bias=qkv_bias)).eval()
    ids = torch.randint(0, 97, (3, 16))
    with torch.no_grad():
        full = model.hidden_states(ids)
        cache = KVCache.for_model(model, 3)
        # A 5-token prefill, five single tokens, then a 6-token chunk after a prefix.
        parts = [model.hidden_states(ids[:, :5], kv_cache=cache)]
        parts += [model.hidden_states(ids[:, i:i + 1], kv_cache=cache) for i in range(5, 10)]
        parts.append(model.hidden_states(ids[:, 10:], kv_cache=cache))
    assert cache.length == 16
    torch.testing.assert_close(torch.cat(parts, dim=1), full)


def test_cache_is_written_in_place_and_reset_reuses_it():
    torch.manual_seed(0)
    model = GPTModel(TINY.replace(vocab_size=97)).eval()
    cache = KVCache.for_model(model, 1, max_len=8)
    pointer = cache.keys.data_ptr()
    assert cache.keys.shape == (2, 1, 4, 8, 8)  # (layers, B, H, L, head_dim)
    with torch.no_grad():
        first = model.hidden_states(torch.tensor([[1, 2, 3]]), kv_cache=cache)
        model.hidden_states(torch.tensor([[4]]), kv_cache=cache)
        assert cache.length == 4 and cache.keys.data_ptr() == pointer
        cache.reset()
        again = model.hidden_states(torch.tensor([[1, 2, 3]]), kv_cache=cache)
    assert torch.equal(first, again)


def test_cache_overflow_and_wrong_batch_are_clear_errors():
    torch.manual_seed(0)
    model = GPTModel(TINY.replace(vocab_size=97)).eval()
    cache = KVCache.for_model(model, 1, max_len=4)
    with torch.no_grad():
        model.hidden_states(torch.tensor([[1, 2, 3]]), kv_cache=cache)
        with pytest.raises(ValueError, match="exceed"):
            model.hidden_states(torch.tensor([[4, 5]]), kv_cache=cache)
        assert cache.length == 3  # unchanged by the refused call
        with pytest.raises(ValueError, match="batch size"):
            model.hidden_states(torch.tensor([[4], [5]]), kv_cache=cache)
    with pytest.raises(ValueError, match="context_length"):
        KVCache.for_model(model, 1, max_len=17)


def test_training_path_unchanged_by_cache_code():
    """forward/hidden_states without a cache still apply dropout in train mode, as the book."""
    torch.manual_seed(0)
    model = GPTModel(TINY.replace(vocab_size=97, drop_rate=0.5)).train()
    ids = torch.randint(0, 97, (2, 16))
    torch.manual_seed(1)
    a = model(ids)
    torch.manual_seed(2)
    b = model(ids)
    assert not torch.equal(a, b)


# --- generation with the cache = the book's generate ----------------------------------------
def test_greedy_identical_to_book_past_the_window(pair):
    """Context 16, 60 new tokens: 44 of them after the window is full."""
    ours, book = pair
    expected = book_generate(book, PROMPT, 60, 16)
    got = generate(ours, PROMPT, 60, 16)
    assert got.shape == (1, 64)
    assert torch.equal(got, expected)
    assert torch.equal(generate(ours, PROMPT, 60, 16, use_cache=False), expected)


@pytest.mark.parametrize("temperature,top_k", [(1.0, None), (1.4, 25), (0.7, 3)])
def test_sampled_identical_to_book_for_the_same_seed(pair, temperature, top_k):
    """At least 100 tokens, through the window several times, the book's global-RNG draws."""
    ours, book = pair
    torch.manual_seed(123)
    expected = book_generate(book, PROMPT, 120, 16, temperature=temperature, top_k=top_k)
    torch.manual_seed(123)
    got = generate(ours, PROMPT, 120, 16, temperature=temperature, top_k=top_k)
    assert torch.equal(got, expected)
    # The same draws from our own generator with the same seed, global RNG untouched.
    state = torch.get_rng_state()
    assert torch.equal(generate(ours, PROMPT, 120, 16, temperature=temperature, top_k=top_k, seed=123), expected)
    assert torch.equal(torch.get_rng_state(), state)


def test_shorter_context_size_than_the_model(pair):
    ours, book = pair
    torch.manual_seed(5)
    expected = book_generate(book, PROMPT, 30, 6, temperature=1.0)
    torch.manual_seed(5)
    assert torch.equal(generate(ours, PROMPT, 30, 6, temperature=1.0), expected)


def test_prompt_longer_than_the_window(pair):
    ours, book = pair
    prompt = torch.randint(0, TINY.vocab_size, (1, 40), generator=torch.Generator().manual_seed(4))
    assert torch.equal(generate(ours, prompt, 10), book_generate(book, prompt, 10, 16))


def test_train_mode_model_generates_as_in_eval_and_keeps_its_mode(pair):
    ours, _ = pair
    expected = generate(ours, PROMPT, 20)
    ours.train()
    try:
        assert torch.equal(generate(ours, PROMPT, 20), expected)
        assert torch.equal(generate(ours, PROMPT, 20, use_cache=False), expected)
        assert ours.training
    finally:
        ours.eval()
