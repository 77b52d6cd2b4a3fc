"""Sliding-window data: the same windows and batches as the book's `create_dataloader_v1`,
stored as views of one token tensor, over any tokenizer."""
from __future__ import annotations

import pytest
import tiktoken
import torch
from llms_from_scratch.ch02 import GPTDatasetV1 as BookDataset
from llms_from_scratch.ch02 import create_dataloader_v1 as book_create_dataloader_v1
from torch.utils.data import DataLoader

from gpt_core.data import GPTDatasetV1, create_dataloader_v1, create_train_val_loaders
from gpt_core.tokenizers import CharTokenizer, GPT2Tokenizer

from conftest import ASSETS
from reference import book_chapter5_loaders


def _batches(loader, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    # DataLoader draws its shuffle seed from the global RNG when iteration starts.
    torch.manual_seed(seed)
    return list(loader)


def _assert_same_batches(ours, book) -> None:
    assert len(ours) == len(book)
    for i, ((x, y), (bx, by)) in enumerate(zip(ours, book)):
        assert x.dtype == bx.dtype == torch.long, i
        assert torch.equal(x, bx), i
        assert torch.equal(y, by), i


@pytest.mark.parametrize("batch_size, max_length, stride, shuffle, drop_last", [
    (4, 256, 128, True, True),     # the book's defaults
    (2, 256, 256, True, True),     # chapter 5 training
    (2, 256, 256, False, False),   # chapter 5 validation
    (8, 4, 4, False, False),       # chapter 2's printed example
    (8, 4, 1, True, False),
    (3, 10, 7, True, False),
    (5, 33, 50, True, True),       # stride longer than the window: gaps
])
def test_same_batches_as_the_book(verdict_text, batch_size, max_length, stride, shuffle, drop_last):
    kwargs = dict(batch_size=batch_size, max_length=max_length, stride=stride, shuffle=shuffle,
                  drop_last=drop_last, num_workers=0)
    book = book_create_dataloader_v1(verdict_text, **kwargs)
    ours = create_dataloader_v1(verdict_text, **kwargs)
    assert len(ours) == len(book)
    assert len(ours.dataset) == len(book.dataset)
    for seed in (123, 7):
        _assert_same_batches(_batches(ours, seed), _batches(book, seed))


def test_chapter2_first_batch(verdict_text):
    # Chapter 2 prints this batch for batch_size=1, max_length=4, stride=1, shuffle=False.
    loader = create_dataloader_v1(verdict_text, batch_size=1, max_length=4, stride=1, shuffle=False)
    x, y = next(iter(loader))
    book_x, book_y = next(iter(book_create_dataloader_v1(verdict_text, batch_size=1, max_length=4,
                                                         stride=1, shuffle=False)))
    assert torch.equal(x, book_x) and torch.equal(y, book_y)
    assert x.tolist() == [[40, 367, 2885, 1464]] and y.tolist() == [[367, 2885, 1464, 1807]]


def test_train_val_loaders_are_chapter_5s(verdict_text):
    torch.manual_seed(123)
    book_train, book_val = book_chapter5_loaders(verdict_text)
    train, val = create_train_val_loaders(verdict_text, GPT2Tokenizer(), batch_size=2, max_length=256)
    assert (len(train), len(val)) == (len(book_train), len(book_val)) == (9, 1)
    for seed in (123, 0):
        _assert_same_batches(_batches(train, seed), _batches(book_train, seed))
        _assert_same_batches(_batches(val, seed), _batches(book_val, seed))


def test_generator_makes_order_independent_of_global_rng(verdict_text):
    def order(seed_global):
        loader = create_dataloader_v1(verdict_text, batch_size=2, max_length=64, stride=64,
                                      generator=torch.Generator().manual_seed(5))
        return [x for x, _ in _batches(loader, seed_global)]

    first, second = order(1), order(2)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    unseeded = create_dataloader_v1(verdict_text, batch_size=2, max_length=64, stride=64)
    assert not all(torch.equal(a, b) for a, (b, _) in zip(first, _batches(unseeded, 1)))


def test_windows_are_views(verdict_text):
    ds = GPTDatasetV1(verdict_text, GPT2Tokenizer(), max_length=256, stride=1)
    storage = ds.token_ids.untyped_storage()
    assert ds.input_ids.untyped_storage().data_ptr() == storage.data_ptr()
    assert ds.target_ids.untyped_storage().data_ptr() == storage.data_ptr()
    x, y = ds[100]
    assert x.untyped_storage().data_ptr() == storage.data_ptr()
    assert y.untyped_storage().data_ptr() == storage.data_ptr()
    # Nearly 5,000 overlapping windows of 256 ids cost no more than the ids themselves.
    assert len(ds) == 5145 - 256
    assert storage.nbytes() == 5145 * 8
    assert torch.equal(x, ds.token_ids[100:356]) and torch.equal(y, ds.token_ids[101:357])


def test_same_windows_as_the_book_dataset(verdict_text):
    reference = tiktoken.get_encoding("gpt2")
    for max_length, stride in ((256, 128), (5, 3), (1, 1)):
        book = BookDataset(verdict_text, reference, max_length, stride)
        for tokenizer in (GPT2Tokenizer(), reference):  # ours, or the book's tiktoken Encoding
            ours = GPTDatasetV1(verdict_text, tokenizer, max_length, stride)
            assert len(ours) == len(book)
            for i in (0, 1, len(book) // 2, len(book) - 1):
                assert torch.equal(ours[i][0], book[i][0]) and torch.equal(ours[i][1], book[i][1])


def test_tokens_in_a_tensor():
    ids = torch.arange(20)
    ds = GPTDatasetV1(ids, max_length=5, stride=5)
    assert len(ds) == 3  # starts 0, 5, 10 (15 would need id 20 as its last target)
    assert ds[2][0].tolist() == [10, 11, 12, 13, 14] and ds[2][1].tolist() == [11, 12, 13, 14, 15]
    assert ds.input_ids.untyped_storage().data_ptr() == ids.untyped_storage().data_ptr()


def test_works_with_characters():
    text = (ASSETS / "tinyshakespeare.txt").read_text(encoding="utf-8")[:20_000]
    tok = CharTokenizer.from_text(text)

    class BookStyle:  # the book's dataset passes allowed_special to encode
        def encode(self, txt, allowed_special=None):
            return tok.encode(txt)

    book = DataLoader(BookDataset(text, BookStyle(), 64, 48), batch_size=4, shuffle=True, drop_last=True)
    ours = create_dataloader_v1(text, batch_size=4, max_length=64, stride=48, tokenizer=tok)
    _assert_same_batches(_batches(ours, 3), _batches(book, 3))
    x, _ = next(iter(ours))
    assert tok.decode(x[0].tolist()) in text


@pytest.mark.parametrize("n_tokens, expected", [(0, 0), (3, 0), (8, 0), (9, 1), (10, 1), (17, 2)])
def test_short_texts(n_tokens, expected):
    # A window needs max_length + 1 tokens (its targets are shifted by one).
    reference = tiktoken.get_encoding("gpt2")
    text = " a" * n_tokens
    assert len(reference.encode(text)) == n_tokens
    ours = GPTDatasetV1(text, GPT2Tokenizer(), max_length=8, stride=8)
    assert len(ours) == len(BookDataset(text, reference, 8, 8)) == expected
    loader = create_dataloader_v1(text, batch_size=2, max_length=8, stride=8, drop_last=False)
    assert len(list(loader)) == (1 if expected else 0)
    # Shuffled too (torch's sampler refuses an empty dataset; the book's loader crashes there).
    loader = create_dataloader_v1(text, batch_size=2, max_length=8, stride=8, shuffle=True, drop_last=True)
    assert len(loader) == len(list(loader)) == expected // 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=-2), "batch_size"),
    (dict(max_length=0), "max_length"),
    (dict(stride=0), "stride"),
    (dict(max_length=-5), "max_length"),
])
def test_bad_sizes(verdict_text, kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_dataloader_v1(verdict_text, **{"batch_size": 2, "max_length": 16, "stride": 16, **kwargs})


def test_bad_sizes_in_train_val_loaders(verdict_text):
    with pytest.raises(ValueError, match="batch_size"):
        create_train_val_loaders(verdict_text, GPT2Tokenizer(), batch_size=0, max_length=16)
    with pytest.raises(ValueError, match="train_ratio"):
        create_train_val_loaders(verdict_text, GPT2Tokenizer(), batch_size=2, max_length=16, train_ratio=1.0)
