"""A link that opens the page with the same settings: written from the Train form, read on
load, and checked as the form is (a value the page would never send gets a sentence)."""
from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from gpt_core.corpus import DEFAULT_CORPUS
from playground import share
from playground.limits import Limits
from playground.options import MODEL_FIELDS, PRESET_CHOICES, PRESET_LABELS, START_FROM, TRAIN_FIELDS, preset_fields
from playground.session import Workspace
from playground.share import LINK_PARAMS, copy_link, link_query, link_settings, parse_link, restore


def vocab(kind: str) -> int:
    return 50257 if kind == "gpt2" else 60


def settings(query: str) -> dict:
    given, _ = parse_link(query)
    return link_settings(given, vocab_size=vocab)


@pytest.mark.parametrize("preset", [p for p in PRESET_CHOICES.values()])
def test_a_preset_as_it_is_makes_the_shortest_link_and_reads_back_as_the_preset(preset):
    got = settings(f"?preset={preset}")
    assert link_query(got) == f"?preset={preset}"
    if preset != "custom":
        model, train, tokenizer = preset_fields(PRESET_LABELS[preset])
        assert got["tokenizer"] == tokenizer and got["text"] == DEFAULT_CORPUS and got["start"] == "scratch"
        assert {k: got[k] for k in model} == model and {k: got[k] for k in train} == train
    assert tuple(got) == LINK_PARAMS


@pytest.mark.parametrize("query", [
    "?preset=char&learning_rate=0.003&text=lunyu&seed=&cosine=0",
    "?preset=custom&tokenizer=char&num_epochs=1&eval_freq=10&context_length=32&emb_dim=32&n_heads=2&n_layers=1"
    "&drop_rate=0.0&start=own",
    "?preset=babygpt&iterations=150&start_context=%E5%AD%90%E6%9B%B0&text=tinyshakespeare&qkv_bias=1",
    "?preset=bigram&context_length=16&learning_rate=0.02&start=gpt2",
])
def test_a_link_reads_back_to_the_same_settings(query):
    got = settings(query)
    assert dict(parse_qsl(link_query(got).lstrip("?"), keep_blank_values=True)) == dict(
        parse_qsl(query.lstrip("?"), keep_blank_values=True))
    assert settings(link_query(got)) == got


def test_values_arrive_as_the_form_holds_them():
    got = settings("?preset=demo&learning_rate=2e-3&num_epochs=3&seed=&cosine=0&qkv_bias=true&stride=0")
    assert got["learning_rate"] == 0.002 and got["num_epochs"] == 3 and isinstance(got["num_epochs"], int)
    assert got["seed"] is None and got["cosine"] is False and got["qkv_bias"] is True and got["stride"] == 0


def test_presenter_mode_comes_with_the_link_or_not():
    assert parse_link("?present=1") == ({}, True)
    assert parse_link("?preset=demo&present=0") == ({"preset": "demo"}, False)
    assert parse_link("") == ({}, None) and parse_link("?") == ({}, None)
    assert parse_link("?__theme=dark&view=api&lang=zh-CN") == ({}, None)  # Gradio's and the language's
    assert link_query(settings("?preset=demo"), present=True) == "?preset=demo&present=1"


@pytest.mark.parametrize("query, message", [
    ("?lr=0.1", "'lr' is not a setting of this page; it knows: preset, tokenizer"),
    ("?seed=1&seed=2", "seed is given twice."),
    ("?preset=gpt5", "preset must be one of demo, char, babygpt, bigram, book-124M, custom, got 'gpt5'."),
    ("?tokenizer=bytes", "tokenizer must be one of gpt2, char, got 'bytes'."),
    ("?start=elsewhere", "start must be one of scratch, gpt2, own, got 'elsewhere'."),
    ("?text=../../etc/passwd", "text must be one of the-verdict, tinyshakespeare, lunyu, got '../../etc/passwd'."),
    ("?cosine=maybe", "cosine must be 1 or 0, got 'maybe'."),
    ("?present=2", "present must be 1 or 0, got '2'."),
    ("?learning_rate=fast", "Learning rate must be a number, got 'fast'."),
    ("?learning_rate=0", "Learning rate must be a number above 0 and at most 1, got '0'."),
    ("?num_epochs=2.5", "Epochs must be a whole number from 1 to 1,000, got '2.5'."),
    ("?num_epochs=", "Epochs is empty; enter a whole number."),
    ("?emb_dim=1e400", "Embedding size (emb_dim) must be a whole number from 8 to 1,600, got '1e400'."),
    ("?n_heads=3", "Embedding size 128 must be divisible by the number of heads 3."),
    ("?batch_size=-1", "Batch size must be a whole number from 1 to 512, got '-1'."),
    ("?drop_rate=nan", "Dropout (drop_rate) must be a number from 0 to 0.9, got 'nan'."),
    ("?start_context=", "Start context is empty"),
    ("?start_context=" + "a" * 501, "Start context is longer than 500 characters"),
    ("?seed=" + "9" * 30, "Seed must be a whole number from 0 to 2,147,483,647"),
    ("?stride=" + "x" * 4001, "The link is 4,008 characters long; a link of this page is at most 4,000."),
])
def test_a_value_the_page_would_never_send_gets_a_sentence(query, message):
    with pytest.raises(ValueError) as info:
        settings(query)
    assert str(info.value).startswith(message), str(info.value)


@pytest.fixture()
def ws():
    w = Workspace(limits=Limits())
    yield w
    w.close()


FILLED = ("preset", "tokenizer", "data_tokenizer", *MODEL_FIELDS, *TRAIN_FIELDS, "start_from", "sample", "presenter")


def test_opening_a_link_fills_the_form_and_loads_its_text(ws):
    out = dict(zip(share.RESTORED, restore(ws, "?preset=char&learning_rate=0.002&text=lunyu&start=own&present=1")))
    assert out["link_note"]["visible"] and "filled in" in out["link_note"]["value"]
    assert out["preset"] == PRESET_LABELS["char"] and out["tokenizer"] == out["data_tokenizer"] == "Characters"
    assert out["learning_rate"] == 0.002 and out["context_length"] == 128 and out["start_from"] == START_FROM[2]
    assert out["sample"] == "论语 (The Analects)" == ws.corpus_name and out["presenter"] is True
    assert tuple(out) == ("link_note", *FILLED)


def test_a_bad_link_changes_nothing_and_says_why(ws):
    out = restore(ws, "?text=lunyu&learning_rate=-1")
    assert out[0]["visible"] and out[0]["value"] == (
        "⚠️ This link's settings were not used: Learning rate must be a number above 0 and at most 1, got '-1'.")
    assert all(o == {"__type__": "update"} for o in out[1:])
    assert ws.corpus_name == DEFAULT_CORPUS  # checked before the text was loaded


def test_a_page_without_a_link_opens_as_it_always_does(ws):
    assert all(o == {"__type__": "update"} for o in restore(ws, ""))
    *_, presenter = restore(ws, "?present=1")  # presenter mode alone: the form untouched
    assert presenter is True and all(o == {"__type__": "update"} for o in restore(ws, "?present=1")[:-1])


def form(**overrides) -> dict:
    model, train, _ = preset_fields(PRESET_LABELS["demo"])
    values = dict(tokenizer="GPT-2 BPE", preset=PRESET_LABELS["demo"], **model, **train)
    values.update(overrides)
    return values


def test_copy_link_writes_what_differs_from_the_preset_and_says_when_the_text_cannot_travel(ws):
    query, note = copy_link(ws, form(learning_rate="0.001", num_epochs=2, seed=None), START_FROM[0], False)
    assert query["value"] == "?preset=demo&num_epochs=2&learning_rate=0.001&seed=" and not note["visible"]
    ws.load_sample("Tiny Shakespeare")
    query, _ = copy_link(ws, form(), START_FROM[1], True)
    assert query["value"] == "?preset=demo&start=gpt2&text=tinyshakespeare&present=1"
    ws.set_text("my own notes " * 50, name="Pasted text (650 characters)")
    query, note = copy_link(ws, form(), START_FROM[0], False)
    assert query["value"] == "?preset=demo" and note["visible"]
    assert "only a bundled sample text travels in a link" in note["value"] and "Pasted text" in note["value"]


def test_copy_link_refuses_a_form_train_would_refuse(ws):
    with pytest.raises(ValueError, match="Learning rate must be a number above 0"):
        copy_link(ws, form(learning_rate=0), START_FROM[0], False)
    with pytest.raises(ValueError, match="Unknown start 'the moon'"):
        copy_link(ws, form(), "the moon", False)
