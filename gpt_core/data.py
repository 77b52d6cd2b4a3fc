"""The book's sliding-window dataset and loaders, over any tokenizer.

The text is tokenized once into one tensor; every window is a view into it (`unfold`), so a
1 MB corpus with stride 1 costs no more memory than its ids.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from .corpus import split_text
from .tokenizers import GPT2Tokenizer


class GPTDatasetV1(Dataset):
    """Windows of `max_length` ids starting every `stride` ids; targets shifted by one.

    Same windows, in the same order, as the book's `GPTDatasetV1`. A text too short for a
    single window gives an empty dataset (the book asserts); `corpus_stats` warns about it.
    """

    def __init__(self, txt: str | torch.Tensor, tokenizer=None, max_length: int = 256, stride: int = 128):
        if max_length <= 0 or stride <= 0:
            raise ValueError("max_length and stride must be positive")
        if isinstance(txt, torch.Tensor):
            ids = txt.to(torch.long)
        else:
            tokenizer = tokenizer or GPT2Tokenizer()
            encode = getattr(tokenizer, "encode")
            try:
                ids = torch.tensor(encode(txt, allowed_special={"<|endoftext|>"}), dtype=torch.long)
            except TypeError:  # our tokenizers take no allowed_special: they already allow it
                ids = torch.tensor(encode(txt), dtype=torch.long)
        self.token_ids = ids
        self.max_length, self.stride = max_length, stride
        if ids.numel() > max_length:
            # (N, max_length) views; the last start is < len - max_length, as in the book.
            self.input_ids = ids[:-1].unfold(0, max_length, stride)
            self.target_ids = ids[1:].unfold(0, max_length, stride)
        else:
            self.input_ids = self.target_ids = ids.new_empty((0, max_length))

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.input_ids[idx], self.target_ids[idx]


def create_dataloader_v1(txt, batch_size: int = 4, max_length: int = 256, stride: int = 128,
                         shuffle: bool = True, drop_last: bool = True, num_workers: int = 0,
                         *, tokenizer=None, generator: torch.Generator | None = None) -> DataLoader:
    """The book's loader; same batches for the same global seed (or `generator`)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    dataset = GPTDatasetV1(txt, tokenizer, max_length, stride)
    # A text shorter than one window gives an empty loader (the book's NaN-loss case);
    # shuffling nothing would make torch's sampler raise a puzzling "num_samples=0".
    shuffle = shuffle and len(dataset) > 0
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, generator=generator)


def create_train_val_loaders(text: str, tokenizer, *, batch_size: int, max_length: int,
                             stride: int | None = None, train_ratio: float = 0.9,
                             generator: torch.Generator | None = None) -> tuple[DataLoader, DataLoader]:
    """Chapter 5's setup: split by characters, shuffled train with drop_last, ordered val."""
    stride = stride or max_length
    train_text, val_text = split_text(text, train_ratio)
    train_loader = create_dataloader_v1(train_text, batch_size=batch_size, max_length=max_length,
                                        stride=stride, shuffle=True, drop_last=True,
                                        tokenizer=tokenizer, generator=generator)
    val_loader = create_dataloader_v1(val_text, batch_size=batch_size, max_length=max_length,
                                      stride=stride, shuffle=False, drop_last=False, tokenizer=tokenizer)
    return train_loader, val_loader
