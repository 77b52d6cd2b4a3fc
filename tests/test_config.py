"""GPTConfig: validation, the book's dict both ways, presets, parameter counts."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from llms_from_scratch.ch04 import GPTModel as BookGPTModel

from gpt_core.config import (
    BOOK_FIELDS, GPT2_SIZES, GPT_CONFIG_124M, PRESETS, GPTConfig, Preset, get_preset,
)
from gpt_core.model import GPTModel

# Chapter 5 of the book, verbatim (chapter 4 has the same dict with context_length 1024).
BOOK_GPT_CONFIG_124M = {
    "vocab_size": 50257,     # Vocabulary size
    "context_length": 256,   # Shortened context length (orig: 1024)
    "emb_dim": 768,          # Embedding dimension
    "n_heads": 12,           # Number of attention heads
    "n_layers": 12,          # Number of layers
    "drop_rate": 0.1,        # Dropout rate
    "qkv_bias": False,       # Query-key-value bias
}

TINY = dict(vocab_size=97, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0)


# --- validation -----------------------------------------------------------------------
@pytest.mark.parametrize("field", ["vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"])
@pytest.mark.parametrize("bad", [0, -1, 2.0, "8", None, True])
def test_sizes_must_be_positive_integers(field, bad):
    with pytest.raises(ValueError, match=field):
        GPTConfig(**{**TINY, field: bad})


def test_emb_dim_must_divide_by_n_heads():
    with pytest.raises(ValueError, match=r"emb_dim \(30\).*n_heads \(4\)"):
        GPTConfig(**{**TINY, "emb_dim": 30})


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), float("inf"), "0.1", None, True, False])
def test_drop_rate_range(bad):
    with pytest.raises(ValueError, match="drop_rate"):
        GPTConfig(**{**TINY, "drop_rate": bad})


@pytest.mark.parametrize("ok", [0, 0.0, 0.5, 0.999])
def test_drop_rate_accepted(ok):
    assert GPTConfig(**{**TINY, "drop_rate": ok}).drop_rate == ok


@pytest.mark.parametrize("field", ["qkv_bias", "tie_weights"])
@pytest.mark.parametrize("bad", [0, 1, "true", "False", None])
def test_bool_fields_must_be_bool(field, bad):
    with pytest.raises(ValueError, match=field):
        GPTConfig(**{**TINY, field: bad})


def test_config_is_frozen_and_replace_revalidates():
    cfg = GPTConfig(**TINY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.emb_dim = 64  # type: ignore[misc]
    assert cfg.replace(emb_dim=64).emb_dim == 64
    assert cfg.emb_dim == 32
    with pytest.raises(ValueError, match="n_heads"):
        cfg.replace(n_heads=5)


def test_head_dim():
    assert GPTConfig(**TINY).head_dim == 8
    assert GPTConfig.from_dict(BOOK_GPT_CONFIG_124M).head_dim == 64


# --- the book's dict ------------------------------------------------------------------
def test_book_dict_round_trip():
    cfg = GPTConfig.from_dict(BOOK_GPT_CONFIG_124M)
    d = cfg.to_dict()
    assert {k: d[k] for k in BOOK_FIELDS} == BOOK_GPT_CONFIG_124M
    assert list(d)[: len(BOOK_FIELDS)] == list(BOOK_GPT_CONFIG_124M)  # the book's order
    assert d["tie_weights"] is False  # the book's model has its own output head
    assert GPTConfig.from_dict(d) == cfg
    assert GPT_CONFIG_124M == BOOK_GPT_CONFIG_124M


def test_from_dict_does_not_keep_the_callers_dict():
    d = dict(BOOK_GPT_CONFIG_124M)
    cfg = GPTConfig.from_dict(d)
    d["emb_dim"] = 1024
    assert cfg.emb_dim == 768
    out = cfg.to_dict()
    out["emb_dim"] = 1
    assert cfg.emb_dim == 768


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="n_head\\b"):
        GPTConfig.from_dict({**BOOK_GPT_CONFIG_124M, "n_head": 12})
    with pytest.raises(ValueError, match="emb_size"):
        GPTConfig.from_dict({"emb_size": 768})


def test_from_dict_validates():
    with pytest.raises(ValueError, match="drop_rate"):
        GPTConfig.from_dict({**BOOK_GPT_CONFIG_124M, "drop_rate": 1.2})


def test_from_dict_book_gpt2_update():
    # Chapter 5 loads GPT-2 by updating the 124M dict; our GPT-2 shapes are that dict.
    model_configs = {
        "gpt2-small (124M)": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
        "gpt2-medium (355M)": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
        "gpt2-large (774M)": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
        "gpt2-xl (1558M)": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
    }
    for (book_name, sizes), (size, ours) in zip(model_configs.items(), GPT2_SIZES.items()):
        assert size in book_name
        book = {**BOOK_GPT_CONFIG_124M, **sizes, "context_length": 1024, "qkv_bias": True}
        assert {k: ours.to_dict()[k] for k in BOOK_FIELDS} == book
        assert ours.tie_weights is True


# --- presets --------------------------------------------------------------------------
def test_presets_are_valid():
    assert {"demo", "char", "book-124M", "gpt2-124M", "gpt2-355M", "gpt2-774M", "gpt2-1558M"} <= set(PRESETS)
    for name, preset in PRESETS.items():
        assert isinstance(preset, Preset)
        assert preset.name == name
        assert isinstance(preset.config, GPTConfig)
        assert GPTConfig.from_dict(preset.config.to_dict()) == preset.config
        assert preset.tokenizer in ("gpt2", "char")
        assert preset.description
        if preset.tokenizer == "gpt2":
            assert preset.config.vocab_size == 50257
        assert get_preset(name) is preset
    assert PRESETS["book-124M"].config == GPTConfig.from_dict(BOOK_GPT_CONFIG_124M)
    assert not PRESETS["demo"].config.tie_weights  # the book's head, as the page has always trained it
    for size in GPT2_SIZES:
        assert PRESETS[f"gpt2-{size}"].config == GPT2_SIZES[size]


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'gpt3'.*demo"):
        get_preset("gpt3")


# --- sizes ----------------------------------------------------------------------------
SMALL_CONFIGS = [
    GPTConfig(**TINY),
    GPTConfig(**TINY, qkv_bias=True),
    GPTConfig(**TINY, tie_weights=True),
    GPTConfig(**TINY, qkv_bias=True, tie_weights=True),
    GPTConfig(vocab_size=65, context_length=8, emb_dim=24, n_heads=3, n_layers=3, drop_rate=0.1),
    GPTConfig(vocab_size=300, context_length=40, emb_dim=16, n_heads=1, n_layers=1, qkv_bias=True),
]


@pytest.mark.parametrize("cfg", SMALL_CONFIGS, ids=lambda c: f"d{c.emb_dim}-L{c.n_layers}-b{int(c.qkv_bias)}-t{int(c.tie_weights)}")
def test_num_parameters_matches_built_model(cfg):
    model = GPTModel(cfg)
    assert cfg.num_parameters() == sum(p.numel() for p in model.parameters())
    assert model.num_parameters() == cfg.num_parameters()
    untied = cfg.replace(tie_weights=False)
    # The book's model (never tied) counts the same as our untied one.
    book = BookGPTModel(untied.to_dict())
    assert untied.num_parameters() == sum(p.numel() for p in book.parameters())
    assert cfg.num_parameters_gpt2_style() == untied.num_parameters() - cfg.vocab_size * cfg.emb_dim
    if cfg.tie_weights:
        assert cfg.num_parameters() == cfg.num_parameters_gpt2_style()


def test_book_124m_figures():
    # Chapter 4 builds GPT_CONFIG_124M with context_length 1024 and prints
    # "Total number of parameters: 163,009,536", without the output head
    # "Number of trainable parameters considering weight tying: 124,412,160" and
    # "Total size of the model: 621.83 MB". Chapter 5 shortens the context to 256, which
    # removes (1024 - 256) * 768 position embeddings (the built model is counted in test_model.py).
    ch4 = GPTConfig.from_dict({**BOOK_GPT_CONFIG_124M, "context_length": 1024})
    assert ch4.num_parameters() == 163_009_536
    assert ch4.num_parameters_gpt2_style() == 124_412_160
    assert ch4.replace(tie_weights=True).num_parameters() == 124_412_160
    assert ch4.memory_bytes() == 163_009_536 * 4
    assert f"{ch4.memory_bytes() / (1024 * 1024):.2f} MB" == "621.83 MB"
    assert ch4.memory_bytes(bytes_per_param=2) == 163_009_536 * 2
    ch5 = GPTConfig.from_dict(BOOK_GPT_CONFIG_124M)
    assert ch5.num_parameters() == 163_009_536 - (1024 - 256) * 768 == 162_419_712


def test_gpt2_sizes_are_named_by_their_parameter_count():
    # OpenAI's names count the tied model with context 1024 and qkv biases.
    for size, cfg in GPT2_SIZES.items():
        millions = cfg.num_parameters() / 1e6
        assert math.isclose(millions, float(size.rstrip("M")), rel_tol=0.02), (size, millions)


def test_training_memory_estimate_is_plausible():
    cfg = GPTConfig(**TINY)
    weights_and_adam = cfg.num_parameters() * 16
    small = cfg.training_memory_bytes(1)
    assert small > weights_and_adam
    assert cfg.training_memory_bytes(4) > small
    assert cfg.training_memory_bytes(1, context_length=8) < small
    # The book's 124M at batch 2: weights+grads+AdamW alone are 2.6 GB; activations add more.
    book = GPTConfig.from_dict(BOOK_GPT_CONFIG_124M)
    assert 2.6e9 < book.training_memory_bytes(2) < 8e9


def test_training_memory_estimate_bounds_measured_activations():
    # The activation part of the estimate must cover what autograd really keeps.
    cfg = GPTConfig(vocab_size=500, context_length=64, emb_dim=64, n_heads=4, n_layers=2, drop_rate=0.1)
    model = GPTModel(cfg).train()
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    x = torch.randint(0, cfg.vocab_size, (4, cfg.context_length))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).logsumexp(-1).mean().backward()
    estimate = cfg.training_memory_bytes(4) - cfg.num_parameters() * 16
    assert estimate >= 0.5 * sum(saved)

