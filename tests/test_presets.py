"""One table of presets: `python -m gpt_core train --preset demo` and the page's demo build the
same model and train it the same way, and a tied head starts near ln(vocab)."""
from __future__ import annotations

import dataclasses
import math

import pytest

from gpt_core.__main__ import _model_setup, _train_config, build_parser
from gpt_core.config import GPT2_VOCAB_SIZE, PRESETS, GPTConfig
from gpt_core.prepare import prepare_training
from gpt_core.tokenizers import get_tokenizer
from gpt_core.train_events import EvalEvent
from playground.options import DEFAULT_PRESET_LABEL, PRESET_LABELS, TRAIN_DEFAULTS, build_spec, preset_fields


pytestmark = pytest.mark.usefixtures("restore_threads")


def cli_demo(text: str, *flags: str):
    args = build_parser().parse_args(["train", "--text", "unused.txt", *flags])
    model_config, tokenizer, _ = _model_setup(args, text)
    return model_config, _train_config(args, None), tokenizer


def page_spec(label: str, vocab_size: int):
    """The page's build, less its replay recording: the page keeps a timeline of every run for the
    Train tab's replay, which changes no number of the run (tests/test_timeline.py), so the
    training compared here is the CLI's."""
    model, train, tokenizer = preset_fields(label)
    spec = build_spec(tokenizer=tokenizer, vocab_size=vocab_size, preset_label=label, **model, **train)
    assert spec.train.timeline, "the page records every run for its replay"
    return dataclasses.replace(spec, train=spec.train.replace(timeline=False))


def test_cli_demo_is_the_page_demo(verdict_text):
    cli_model, cli_train, tokenizer = cli_demo(verdict_text)  # --preset demo is the CLI's default
    assert cli_demo(verdict_text, "--preset", "demo")[:2] == (cli_model, cli_train)
    page = page_spec(DEFAULT_PRESET_LABEL, tokenizer.n_vocab)
    assert PRESET_LABELS[page.preset] == DEFAULT_PRESET_LABEL and page.preset == "demo"
    assert page.model == cli_model
    assert page.train == cli_train
    assert cli_model == PRESETS["demo"].config and cli_train == PRESETS["demo"].train_config()
    assert (cli_train.learning_rate, cli_train.batch_size) == (6e-3, 8)


@pytest.mark.parametrize("name", ["char", "book-124M"])
def test_other_presets_agree_too(verdict_text, name):
    cli_model, cli_train, tokenizer = cli_demo(verdict_text, "--preset", name)
    page = page_spec(PRESET_LABELS[name], tokenizer.n_vocab)
    assert (page.model, page.train) == (cli_model, cli_train)


def test_page_train_defaults_come_from_the_presets():
    for name in ("demo", "char", "book-124M"):
        train = PRESETS[name].train_config()
        assert TRAIN_DEFAULTS[name]["learning_rate"] == train.learning_rate
        assert TRAIN_DEFAULTS[name]["batch_size"] == train.batch_size


def first_eval(text: str, model_config: GPTConfig, train_config) -> EvalEvent:
    tokenizer = get_tokenizer("gpt2")
    trainer = prepare_training(text, tokenizer=tokenizer, model_config=model_config,
                               config=train_config.replace(max_steps=2, eval_freq=1, sample_tokens=0,
                                                           threads=2, device="cpu"))
    return next(e for e in trainer.run() if isinstance(e, EvalEvent))


def test_demo_starts_near_ln_vocab(verdict_text):
    cfg, train, _ = cli_demo(verdict_text)
    event = first_eval(verdict_text, cfg, train)
    assert abs(event.train_loss - math.log(GPT2_VOCAB_SIZE)) < 1.0, event
    assert abs(event.val_loss - math.log(GPT2_VOCAB_SIZE)) < 1.0, event


def test_tied_head_starts_near_ln_vocab(verdict_text):
    # Tied to the book's N(0, 1) embedding the first loss was ~85; GPT-2's std 0.02 fixes it.
    cfg, train, _ = cli_demo(verdict_text)
    event = first_eval(verdict_text, cfg.replace(tie_weights=True), train)
    assert abs(event.train_loss - math.log(GPT2_VOCAB_SIZE)) < 1.0, event
