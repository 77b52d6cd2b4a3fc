"""The page's run history words the engine's overfitting rule and decides nothing of its own."""
from __future__ import annotations

import pytest

from gpt_core.train import is_overfitting
from playground.history import RunHistory

TRAIN = [5.0, 4.0, 3.0, 2.5, 2.0]


@pytest.mark.parametrize("val, batches", [
    ([5.2, 4.9, 5.0, 5.1, 5.3], 2),  # rising past its best while training falls: both say so
    ([5.2, 4.9, 5.0, 5.1, 5.3], 1),  # one batch an evaluation: neither does
    ([5.2, 4.9, 5.0, 4.8, 5.3], 2),  # a new best inside the window: neither does
    ([4.0, 5.5, 5.6, 5.4, 5.45], 2),  # far above training loss but not rising: neither does
])
def test_the_chart_and_the_trainer_decide_alike(val, batches):
    h = RunHistory(overfit_patience=3, eval_batches=batches)
    for i, (tr, va) in enumerate(zip(TRAIN, val)):
        h.add_eval(i, i * 100, tr, va)
    hint = h.overfitting_hint()
    assert (hint is not None) == is_overfitting(TRAIN, val, 3, eval_batches=batches)
    assert hint is None or hint.startswith("Overfitting")
