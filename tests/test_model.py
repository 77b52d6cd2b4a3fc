"""GPTModel against the book's `llms_from_scratch.ch04.GPTModel`: same weights for the same
seed, same logits, same greedy text, state dicts both ways, tied head, dropout draws."""
from __future__ import annotations

import io

import pytest
import tiktoken
import torch
import torch.nn.functional as F
from llms_from_scratch.ch04 import GPTModel as BookGPTModel
from llms_from_scratch.ch04 import generate_text_simple
from llms_from_scratch.ch05 import text_to_token_ids as book_text_to_token_ids
from llms_from_scratch.ch05 import token_ids_to_text as book_token_ids_to_text

from gpt_core.config import GPTConfig
from gpt_core.generate import text_to_token_ids, token_ids_to_text
from gpt_core.model import TIED_EMBEDDING_STD, GPTModel, load_book_state_dict
from gpt_core.tokenizers import GPT2Tokenizer

BOOK_CFG = {
    "vocab_size": 50257, "context_length": 256, "emb_dim": 768, "n_heads": 12,
    "n_layers": 12, "drop_rate": 0.1, "qkv_bias": False,
}
TINY_CFG = {
    "vocab_size": 97, "context_length": 16, "emb_dim": 32, "n_heads": 4,
    "n_layers": 2, "drop_rate": 0.1, "qkv_bias": False,
}
TINY_VARIANTS = [
    TINY_CFG,
    {**TINY_CFG, "qkv_bias": True},
    {**TINY_CFG, "n_heads": 1, "n_layers": 3, "drop_rate": 0.0},
    {**TINY_CFG, "vocab_size": 65, "context_length": 9, "emb_dim": 24, "n_heads": 3},
]


def _pair(cfg: dict, seed: int = 123) -> tuple[GPTModel, BookGPTModel]:
    torch.manual_seed(seed)
    ours = GPTModel(cfg)
    torch.manual_seed(seed)
    book = BookGPTModel(cfg)
    return ours, book


def _assert_state_dicts_equal(ours: dict, book: dict) -> None:
    assert list(ours) == list(book)
    for key, value in book.items():
        mine = ours[key]
        assert mine.shape == value.shape, key
        if key.endswith(".mask"):
            # Our mask is bool (1/4 of the memory), the book's is float: same entries.
            assert torch.equal(mine.to(value.dtype), value), key
        else:
            assert mine.dtype == value.dtype, key
            assert torch.equal(mine, value), key


@pytest.fixture(scope="module")
def book_pair():
    """The book's chapter 5 model and ours, both drawn with seed 123, in eval mode.
    Tests must not change their weights."""
    ours, book = _pair(BOOK_CFG)
    return ours.eval(), book.eval()


@pytest.fixture(scope="module")
def gpt2_encoding():
    return tiktoken.get_encoding("gpt2")


# --- the book's configuration -----------------------------------------------------------
def test_book_config_same_initial_weights(book_pair):
    ours, book = book_pair
    _assert_state_dicts_equal(ours.state_dict(), book.state_dict())
    # Parameters in the same order too, so optimizer states line up.
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in book.named_parameters()]
    assert sum(p.numel() for p in book.parameters()) == ours.num_parameters() == ours.cfg.num_parameters()
    assert ours.num_parameters() == 162_419_712  # context 256; the book's 163,009,536 is context 1024


def test_book_config_same_logits(book_pair, gpt2_encoding):
    ours, book = book_pair
    # Chapter 4's batch.
    batch = torch.stack([
        torch.tensor(gpt2_encoding.encode("Every effort moves you")),
        torch.tensor(gpt2_encoding.encode("Every day holds a")),
    ])
    with torch.no_grad():
        expected = book(batch)
        got = ours(batch)
    assert got.shape == (2, 4, 50257)
    torch.testing.assert_close(got, expected)


def test_book_config_same_greedy_continuation(book_pair, gpt2_encoding):
    ours, book = book_pair
    start = "Every effort moves you"
    book_ids = generate_text_simple(book, book_text_to_token_ids(start, gpt2_encoding), 10, 256)
    our_ids = generate_text_simple(ours, text_to_token_ids(start, GPT2Tokenizer()), 10, 256)
    assert torch.equal(our_ids, book_ids)
    text = token_ids_to_text(our_ids, GPT2Tokenizer())
    assert text == book_token_ids_to_text(book_ids, gpt2_encoding)
    # What chapter 5 prints for the untrained model.
    assert text == "Every effort moves you rentingetic wasnم refres RexMeCHicular stren"


def test_book_config_state_dict_loads_strictly_both_ways(book_pair):
    ours, book = book_pair
    # Same values, so loading changes nothing; strict=True checks every key, shape and buffer.
    book.load_state_dict(ours.state_dict(), strict=True)
    load_book_state_dict(ours, book.state_dict())
    ours.load_state_dict(book.state_dict(), strict=True)
    _assert_state_dicts_equal(ours.state_dict(), book.state_dict())
    assert book.trf_blocks[0].att.mask.dtype == torch.float32


# --- tiny configurations ----------------------------------------------------------------
@pytest.mark.parametrize("cfg", TINY_VARIANTS, ids=range(len(TINY_VARIANTS)))
def test_tiny_same_initial_weights_and_logits(cfg):
    ours, book = _pair(cfg, seed=7)
    _assert_state_dicts_equal(ours.state_dict(), book.state_dict())
    ours.eval(), book.eval()
    g = torch.Generator().manual_seed(0)
    for length in (1, cfg["context_length"] // 2, cfg["context_length"]):
        x = torch.randint(0, cfg["vocab_size"], (3, length), generator=g)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), book(x))


@pytest.mark.parametrize("cfg", TINY_VARIANTS[:2], ids=["plain", "qkv_bias"])
def test_tiny_same_gradients(cfg):
    ours, book = _pair({**cfg, "drop_rate": 0.0}, seed=3)
    x = torch.randint(0, cfg["vocab_size"], (2, cfg["context_length"]))
    y = torch.randint(0, cfg["vocab_size"], (2, cfg["context_length"]))
    for model in (ours, book):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
    book_grads = dict(book.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, book_grads[name].grad, msg=name)


def _perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


@pytest.mark.parametrize("cfg", TINY_VARIANTS[:2], ids=["plain", "qkv_bias"])
def test_state_dict_round_trip_both_ways(cfg):
    x = torch.randint(0, cfg["vocab_size"], (2, cfg["context_length"]))
    # book -> ours, through a file as the book saves it (torch.save(model.state_dict(), ...)).
    torch.manual_seed(1)
    book = _perturbed(BookGPTModel(cfg), 10).eval()
    buffer = io.BytesIO()
    torch.save(book.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(2)
    ours = GPTModel(cfg).eval()
    load_book_state_dict(ours, torch.load(buffer, weights_only=True))
    _assert_state_dicts_equal(ours.state_dict(), book.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(ours(x), book(x))

    # ours -> book, strictly, into the book's own class.
    _perturbed(ours, 11)
    torch.manual_seed(3)
    book2 = BookGPTModel(cfg).eval()
    buffer = io.BytesIO()
    torch.save(ours.state_dict(), buffer)
    buffer.seek(0)
    book2.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    _assert_state_dicts_equal(ours.state_dict(), book2.state_dict())
    # The book's mask is still its float causal mask after loading our bool one.
    assert book2.trf_blocks[0].att.mask.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(book2(x), ours(x))


def test_load_book_state_dict_rejects_wrong_shapes_and_leaves_model_unchanged():
    torch.manual_seed(0)
    ours = GPTModel(TINY_CFG)
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    other = BookGPTModel({**TINY_CFG, "vocab_size": 50}).state_dict()
    with pytest.raises(ValueError, match="tok_emb.weight"):
        load_book_state_dict(ours, other)
    missing = {k: v * 2 for k, v in ours.state_dict().items()}
    del missing["trf_blocks.1.ff.layers.0.bias"]
    with pytest.raises(ValueError, match="trf_blocks.1.ff.layers.0.bias"):
        load_book_state_dict(ours, missing)
    extra = {k: v * 2 for k, v in ours.state_dict().items()}
    extra["trf_blocks.2.att.W_query.weight"] = torch.zeros(32, 32)
    with pytest.raises(ValueError, match="trf_blocks.2.att.W_query.weight"):
        load_book_state_dict(ours, extra)
    _assert_state_dicts_equal(ours.state_dict(), before)


# --- tied output head -------------------------------------------------------------------
def test_tied_head_shares_storage():
    cfg = GPTConfig.from_dict({**TINY_CFG, "drop_rate": 0.0}).replace(tie_weights=True)
    torch.manual_seed(5)
    model = GPTModel(cfg)
    assert model.out_head.weight is model.tok_emb.weight
    assert model.out_head.weight.untyped_storage().data_ptr() == model.tok_emb.weight.untyped_storage().data_ptr()
    params = list(model.parameters())
    assert sum(p.numel() for p in params) == cfg.num_parameters() == cfg.num_parameters_gpt2_style()
    # Still one tensor after an optimizer step.
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randint(0, cfg.vocab_size, (2, 8))
    F.cross_entropy(model(x).flatten(0, 1), x.flatten()).backward()
    opt.step()
    assert model.out_head.weight is model.tok_emb.weight
    # Saved once: a checkpoint is about a vocab x emb_dim matrix smaller than the untied one.
    def saved_size(m):
        buffer = io.BytesIO()
        torch.save(m.state_dict(), buffer)
        return buffer.tell()
    untied = GPTModel(cfg.replace(tie_weights=False))
    table = cfg.vocab_size * cfg.emb_dim * 4
    assert saved_size(untied) - saved_size(model) > 0.9 * table


def test_tied_model_matches_book_model_with_head_set_to_embedding():
    cfg = {**TINY_CFG, "drop_rate": 0.0}
    torch.manual_seed(9)
    ours = GPTModel(GPTConfig.from_dict(cfg).replace(tie_weights=True)).eval()
    torch.manual_seed(9)
    book = BookGPTModel(cfg).eval()
    # Same RNG stream as the untied model: every tensor but the head is the book's, and the
    # shared embedding is the book's draw scaled to GPT-2's std 0.02.
    sd = ours.state_dict()
    for key, value in book.state_dict().items():
        if key == "tok_emb.weight":
            torch.testing.assert_close(sd[key], value * TIED_EMBEDDING_STD)
        elif key not in ("out_head.weight",) and not key.endswith("mask"):
            assert torch.equal(sd[key], value), key
    with torch.no_grad():
        book.tok_emb.weight.copy_(sd["tok_emb.weight"])
    book.out_head.weight = torch.nn.Parameter(book.tok_emb.weight.detach().clone())
    x = torch.randint(0, cfg["vocab_size"], (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), book(x))
    # ...and the book's model loads our tied state dict strictly.
    book.load_state_dict(ours.state_dict(), strict=True)


def test_load_book_state_dict_into_tied_model():
    cfg = GPTConfig.from_dict(TINY_CFG).replace(tie_weights=True)
    torch.manual_seed(1)
    source = _perturbed(GPTModel(cfg), 4)
    # 1. A tied state dict (both keys, equal tensors).
    target = GPTModel(cfg)
    load_book_state_dict(target, source.state_dict())
    _assert_state_dicts_equal(target.state_dict(), source.state_dict())
    assert target.out_head.weight is target.tok_emb.weight
    # 2. Without the head key (GPT-2 style): the embedding serves as head.
    target = GPTModel(cfg)
    sd = {k: v for k, v in source.state_dict().items() if k != "out_head.weight"}
    load_book_state_dict(target, sd)
    assert torch.equal(target.out_head.weight, source.tok_emb.weight)
    assert target.out_head.weight is target.tok_emb.weight
    # 3. The book's untied model: a clear error, nothing changed.
    book_sd = BookGPTModel(TINY_CFG).state_dict()
    target = GPTModel(cfg)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError, match="tie_weights=False"):
        load_book_state_dict(target, book_sd)
    _assert_state_dicts_equal(target.state_dict(), before)
    # 4. A book state dict whose head *is* its embedding loads into a tied model.
    book_sd["out_head.weight"] = book_sd["tok_emb.weight"].clone()
    load_book_state_dict(target, book_sd)
    assert torch.equal(target.out_head.weight, book_sd["tok_emb.weight"])


# --- inputs -----------------------------------------------------------------------------
def test_accepts_the_books_plain_dict():
    model = GPTModel(dict(TINY_CFG))
    assert model.cfg == GPTConfig.from_dict(TINY_CFG)
    with pytest.raises(ValueError, match="n_head\\b"):
        GPTModel({**TINY_CFG, "n_head": 4})
    with pytest.raises(ValueError, match="emb_dim"):
        GPTModel({**TINY_CFG, "emb_dim": 30})


def test_too_long_input_is_a_clear_error():
    model = GPTModel(TINY_CFG)
    with pytest.raises(ValueError, match="17 tokens.*context_length is 16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    assert model(torch.zeros(1, 16, dtype=torch.long)).shape == (1, 16, 97)


# --- dropout ----------------------------------------------------------------------------
@pytest.mark.parametrize("drop_rate", [0.1, 0.5])
def test_training_mode_dropout_draws_the_books_masks(drop_rate):
    """With the same seed our training-mode logits equal the book's: the fused attention
    draws the same dropout mask as the book's `self.dropout(attn_weights)`."""
    cfg = {**TINY_CFG, "drop_rate": drop_rate, "qkv_bias": True}
    ours, book = _pair(cfg, seed=11)
    ours.train(), book.train()
    x = torch.randint(0, cfg["vocab_size"], (3, cfg["context_length"]))
    torch.manual_seed(100)
    got = ours(x)
    torch.manual_seed(100)
    expected = book(x)
    # Dropout really is active (else the comparison below proves nothing).
    with torch.no_grad():
        assert not torch.allclose(got, ours.eval()(x))
    torch.testing.assert_close(got, expected)
    # Same gradients too.
    got.logsumexp(-1).sum().backward()
    expected.logsumexp(-1).sum().backward()
    book_grads = dict(book.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, book_grads[name].grad, msg=name)
