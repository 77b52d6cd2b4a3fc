"""Tokenizers: GPT-2 ids identical to tiktoken's, offline and verified; the character tokenizer."""
from __future__ import annotations

import shutil
import socket

import pytest
import tiktoken
import tiktoken.registry
import torch
from llms_from_scratch.ch05 import text_to_token_ids as book_text_to_token_ids
from llms_from_scratch.ch05 import token_ids_to_text as book_token_ids_to_text

from gpt_core import tokenizers
from gpt_core.generate import text_to_token_ids, token_ids_to_text
from gpt_core.tokenizers import GPT2_VOCAB_DIR, CharTokenizer, GPT2Tokenizer, get_tokenizer, tokenizer_from_dict

from conftest import ASSETS

EMOJI = "Hi 👋🏽! Family: 👨‍👩‍👧‍👦, flag 🇫🇷, sparkles ✨ and a rare 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 line\tend  "
EOT_TEXT = "First document.<|endoftext|>Second document.<|endoftext|>"


@pytest.fixture(scope="module")
def reference():
    """OpenAI's encoding as the book loads it (offline thanks to conftest's seeded cache)."""
    return tiktoken.get_encoding("gpt2")


@pytest.fixture(scope="module")
def texts(verdict_text):
    return {
        "verdict": verdict_text,
        "shakespeare": (ASSETS / "tinyshakespeare.txt").read_text(encoding="utf-8")[:200_000],
        "lunyu": (ASSETS / "lunyu.txt").read_text(encoding="utf-8"),
        "emoji": EMOJI,
        "eot": EOT_TEXT,
        "empty": "",
        "spaces": "   \n\n\t  x  \r\n",
    }


# --- GPT-2 ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["verdict", "shakespeare", "lunyu", "emoji", "eot", "empty", "spaces"])
def test_gpt2_ids_equal_tiktoken(texts, reference, name):
    text = texts[name]
    tok = GPT2Tokenizer()
    ids = tok.encode(text)
    assert ids == reference.encode(text, allowed_special={"<|endoftext|>"})
    assert tok.decode(ids) == text
    assert tok.decode_bytes(ids) == text.encode("utf-8")


def test_the_verdict_is_5145_tokens(verdict_text):
    assert len(GPT2Tokenizer().encode(verdict_text)) == 5145  # the book's "Tokens: 5145"


def test_endoftext_is_50256():
    tok = GPT2Tokenizer()
    assert tok.encode("<|endoftext|>") == [50256]
    assert tok.eot_id == 50256
    assert tok.n_vocab == 50257
    assert tok.encode(EOT_TEXT).count(50256) == 2
    assert tok.decode([50256]) == "<|endoftext|>"


def test_token_strings():
    tok = GPT2Tokenizer()
    ids = tok.encode("Hello, world 论")
    pieces = tok.token_strings(ids)
    assert pieces[:3] == ["Hello", ",", " world"]
    assert len(pieces) == len(ids)
    # 论 is split over byte-level tokens: a piece alone is not valid UTF-8 and shows as U+FFFD.
    assert len(ids) > 4 and "\ufffd" in "".join(pieces[3:])
    assert tok.decode(ids) == "Hello, world 论"


class NetworkTouched(RuntimeError):
    pass


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Any socket use raises and is recorded. tiktoken's cache points at an empty folder and
    its in-process registry is emptied, so `tiktoken.get_encoding` would have to download."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise NetworkTouched(f"network access attempted: {args[:2]!r}")

    class RefusingSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            refuse(*args)

    monkeypatch.setattr(socket, "socket", RefusingSocket)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    return attempts


def test_guard_catches_a_download(no_network):
    # The guard is real: what the book does (download the gpt2 files) is caught.
    with pytest.raises(Exception):
        tiktoken.get_encoding("gpt2")
    assert no_network


def test_tokenizing_never_touches_the_network(no_network, verdict_text, reference):
    tokenizers._gpt2_encoding.cache_clear()
    try:
        tok = GPT2Tokenizer()
        ids = tok.encode(verdict_text)
        assert tok.decode(ids) == verdict_text
        assert tokenizer_from_dict({"type": "gpt2"}).encode("Every effort moves you") == [6109, 3626, 6100, 345]
        assert get_tokenizer("gpt2").encode("<|endoftext|>") == [50256]
    finally:
        tokenizers._gpt2_encoding.cache_clear()
    assert no_network == []
    assert ids == reference.encode(verdict_text)


@pytest.mark.parametrize("filename", ["encoder.json", "vocab.bpe"])
def test_tampered_vocabulary_is_rejected(tmp_path, filename):
    vocab = tmp_path / "gpt2"
    shutil.copytree(GPT2_VOCAB_DIR, vocab)
    data = bytearray((vocab / filename).read_bytes())
    # Change one byte of a token string (same length, still valid JSON / text).
    position = data.index(b"ing", len(data) // 2)
    data[position] = ord("o")
    (vocab / filename).write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{filename}.*sha256"):
        GPT2Tokenizer(vocab)
    # The untampered copy is accepted, so the rejection was the changed byte.
    shutil.copyfile(GPT2_VOCAB_DIR / filename, vocab / filename)
    assert GPT2Tokenizer(vocab).encode("Every effort") == [6109, 3626]


def test_missing_vocabulary_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        GPT2Tokenizer(tmp_path)


# --- characters -------------------------------------------------------------------------
def test_char_vocabulary_is_sorted_unique_chars(texts):
    for name in ("shakespeare", "lunyu", "verdict", "emoji"):
        text = texts[name]
        tok = CharTokenizer.from_text(text)
        chars = sorted(list(set(text)))  # the BabyGPT notebook's vocabulary
        assert tok.chars == chars
        assert tok.n_vocab == len(chars)
        assert tok.stoi == {ch: i for i, ch in enumerate(chars)}
        ids = tok.encode(text)
        assert ids[:300] == [chars.index(c) for c in text[:300]]
        assert tok.decode(ids) == text
        assert tok.eot_id is None
    full = (ASSETS / "tinyshakespeare.txt").read_text(encoding="utf-8")
    assert CharTokenizer.from_text(full).n_vocab == 65  # Karpathy's char-rnn figure


def test_char_encode_decode_small():
    tok = CharTokenizer("hello world")
    assert tok.chars == [" ", "d", "e", "h", "l", "o", "r", "w"]
    assert tok.encode("hello") == [3, 2, 4, 4, 5]
    assert tok.decode([3, 2, 4, 4, 5]) == "hello"
    assert tok.decode(torch.tensor([7, 5])) == "wo"
    assert tok.decode_bytes([3]) == b"h"
    assert tok.token_strings([3, 0]) == ["h", " "]


def test_char_unknown_replace():
    tok = CharTokenizer("hello world")
    assert tok.unknown == "replace"
    assert tok.unknown_chars("hello, World!") == ["!", ",", "W"]
    assert tok.decode(tok.encode("hey!")) == "he  "  # y and ! become the space
    no_space = CharTokenizer("cab")
    assert no_space.fallback == "a"
    assert no_space.decode(no_space.encode("abz")) == "aba"


def test_char_unknown_skip_and_error():
    skip = CharTokenizer("hello world", unknown="skip")
    assert skip.decode(skip.encode("hey, low!")) == "he low"
    strict = CharTokenizer("hello world", unknown="error")
    with pytest.raises(ValueError, match="'!y'"):
        strict.encode("hey!")
    assert strict.encode("hello") == [3, 2, 4, 4, 5]


def test_char_bad_arguments():
    with pytest.raises(ValueError, match="at least one character"):
        CharTokenizer("")
    with pytest.raises(ValueError, match="single characters"):
        CharTokenizer(["ab", "c"])
    with pytest.raises(ValueError, match="'replace', 'skip' or 'error'"):
        CharTokenizer("abc", unknown="ignore")
    tok = CharTokenizer("abc")
    for bad in ([3], [-1], [0, 99]):
        with pytest.raises(ValueError, match="out of range for a 3-character vocabulary"):
            tok.decode(bad)


@pytest.mark.parametrize("unknown", ["replace", "skip", "error"])
def test_tokenizer_dict_round_trip(texts, unknown):
    tok = CharTokenizer.from_text(texts["lunyu"] + "\r\t ", unknown=unknown)
    d = tok.to_dict()
    assert d["type"] == "char"
    again = tokenizer_from_dict(d)
    assert isinstance(again, CharTokenizer)
    assert again.chars == tok.chars
    assert again.unknown == unknown
    assert again.encode(texts["lunyu"][:500]) == tok.encode(texts["lunyu"][:500])
    # A plain dict survives JSON-like copying (checkpoints store it as is).
    assert tokenizer_from_dict(dict(d)).to_dict() == d
    gpt2 = tokenizer_from_dict(GPT2Tokenizer().to_dict())
    assert isinstance(gpt2, GPT2Tokenizer)


@pytest.mark.parametrize("bad", [None, {}, {"type": "bpe"}, {"type": "char"}, {"type": "char", "chars": 5},
                                 {"type": "char", "chars": ""}, "gpt2"])
def test_tokenizer_from_bad_dict(bad):
    with pytest.raises(ValueError):
        tokenizer_from_dict(bad)


def test_get_tokenizer():
    assert isinstance(get_tokenizer("gpt2"), GPT2Tokenizer)
    assert get_tokenizer("char", "abca").chars == ["a", "b", "c"]
    with pytest.raises(ValueError, match="built from a text"):
        get_tokenizer("char")
    with pytest.raises(ValueError, match="unknown tokenizer 'bpe'"):
        get_tokenizer("bpe")


# --- the book's helpers -----------------------------------------------------------------
def test_text_to_token_ids_matches_the_book(reference):
    for text in ("Every effort moves you", EOT_TEXT, EMOJI):
        expected = book_text_to_token_ids(text, reference)
        for tokenizer in (GPT2Tokenizer(), reference):
            got = text_to_token_ids(text, tokenizer)
            assert got.dtype == torch.long and got.shape == expected.shape
            assert torch.equal(got, expected)
            assert token_ids_to_text(got, tokenizer) == book_token_ids_to_text(expected, reference) == text


def test_text_to_token_ids_with_characters():
    tok = CharTokenizer("abc ")
    ids = text_to_token_ids("a cab", tok)
    assert ids.shape == (1, 5) and ids.dtype == torch.long
    assert ids.tolist() == [[1, 0, 3, 1, 2]]
    assert token_ids_to_text(ids, tok) == "a cab"
