"""Generation's copies of a model's weights, in the server's memory budget (DESIGN decision 9).

A generation multiplies by copies of the weights in the layout and dtype one-row products read
fastest (gpt_core/decoding.py): float32 input-major for Exact (most of a model trained here;
none of a GPT-2 read from its cache, which stores them so), bfloat16 for Fast (2 bytes a
parameter). The engine keeps one set on the model for the next generation, while its
parameters are unchanged, and replaces it when a generation asks for the other dtype; a
generation still running keeps reading its own.

So each (model, dtype) holds a reservation from before its copies are made until they are
neither kept on the model nor read by a running generation. Generating twice in a row reserves
the same bytes again, which always fits; a student's model that is trained, replaced or
spilled drops its copies (`drop`).
"""
from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

import torch

from gpt_core.decoding import decode_copy_bytes, kept_decode_weights, release_decode_weights

from .memory import MemoryBudget

DTYPES = (torch.float32, torch.bfloat16)  # what generation decodes in (gpt_core.precision.Precision.dtype)

_lock = threading.Lock()
_running: Counter[str] = Counter()  # budget key of a model's copies in one dtype -> generations reading them


def copies_key(holder: str, dtype: torch.dtype) -> str:
    """The budget key of the copies in `dtype` of the model whose weights `holder` reserves."""
    return f"{holder}:decode:{str(dtype).removeprefix('torch.')}"


def what_they_are(model_name: str, dtype: torch.dtype) -> str:
    """The copies in a sentence, for a refusal ("no memory left for ...")."""
    if dtype == torch.bfloat16:
        return f"generating with {model_name} (a bfloat16 copy of its weights)"
    return f"generating with {model_name} (a copy of its weights laid out for generation)"


@contextmanager
def held(budget: MemoryBudget | None, holder: str, model: torch.nn.Module, dtype: torch.dtype, *,
         model_name: str, owner: str | None = None) -> Iterator[None]:
    """Around one generation of `model` in `dtype`: its copies reserved before they are made
    (MemoryBudgetError with the budget's sentence when they do not fit, before anything is
    copied), and after it, what no copy holds any more given back. `owner`: the session asking,
    never spilled to make room for it."""
    if budget is None:
        yield
        return
    key = copies_key(holder, dtype)
    with _lock:
        _running[key] += 1
    try:
        budget.reserve(key, decode_copy_bytes(model, dtype), what=what_they_are(model_name, dtype), owner=owner)
        yield
    finally:
        with _lock:
            _running[key] -= 1
            if not _running[key]:
                del _running[key]
        settle(budget, holder, model)


def settle(budget: MemoryBudget | None, holder: str, model: torch.nn.Module | None) -> None:
    """Give back the reservations of `model`'s copies that are neither kept on it nor read by
    a running generation (all of them for no model)."""
    if budget is None:
        return
    kept = kept_decode_weights(model) if model is not None else None
    with _lock:
        for dtype in DTYPES:
            key = copies_key(holder, dtype)
            if not _running[key] and (kept is None or kept.dtype != dtype):
                budget.release(key)


def drop(budget: MemoryBudget | None, holder: str, model: torch.nn.Module | None) -> None:
    """`model` is about to be trained, replaced or spilled: its kept copies go (the next
    generation makes them again from the weights then), and their reservations with them."""
    if model is not None:
        release_decode_weights(model)
    settle(budget, holder, model)
