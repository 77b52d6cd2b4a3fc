"""One rule for a number from a form field: within bounds, or a sentence naming the field."""
from __future__ import annotations

import math

import pytest

from playground.fields import form_number


def test_numbers_within_bounds_come_back_typed():
    assert form_number("3", "Epochs", 1, 10, whole=True) == 3 and isinstance(form_number(3.0, "E", 1, 9, whole=True), int)
    assert form_number("0.5", "Top-p", 0.0, 1.0) == 0.5
    assert form_number(None, "Seed", 0, 9, whole=True, empty=None) is None
    assert form_number("", "Stride", 0, 9, whole=True, empty=0) == 0
    assert form_number(7, "Batch size", 1, whole=True) == 7  # no upper bound


@pytest.mark.parametrize("args, kwargs, sentence", [
    (("abc", "Context length", 4, 1024), dict(whole=True), "Context length must be a whole number, got 'abc'."),
    (("2.5", "Top-k", 0, 10), dict(whole=True), "Top-k must be a whole number from 0 to 10, got '2.5'."),
    ((math.nan, "Dropout", 0.0, 0.9), {}, "Dropout must be a number from 0 to 0.9, got nan."),
    ((0, "Learning rate", 0.0, 1.0), dict(lo_open=True), "Learning rate must be a number above 0 and at most 1, got 0."),
    ((0, "Batch size", 1), dict(whole=True), "Batch size must be a whole number of at least 1, got 0."),
    ((10**400, "Epochs", 1, 1000), dict(whole=True), "Epochs must be a whole number from 1 to 1,000, got 1000"),
    ((None, "Batch size", 1), dict(whole=True), "Batch size is empty; enter a whole number."),
])
def test_bad_values_get_a_sentence_naming_the_field(args, kwargs, sentence):
    with pytest.raises(ValueError) as e:
        form_number(*args, **kwargs)
    assert str(e.value).startswith(sentence) and len(str(e.value)) < 120
