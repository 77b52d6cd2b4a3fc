"""Corpus: uploaded bytes -> text (encodings, binary files), and statistics that agree with
what the book's loaders really make of a text."""
from __future__ import annotations

import codecs
import hashlib
import io
import random
import zipfile

import pytest
import tiktoken
import torch
from llms_from_scratch.ch02 import GPTDatasetV1 as BookDataset
from llms_from_scratch.ch02 import create_dataloader_v1 as book_loader
from llms_from_scratch.ch04 import GPTModel as BookGPTModel
from llms_from_scratch.ch05 import calc_loss_loader as book_calc_loss_loader
from torch.utils.data import DataLoader

from gpt_core.corpus import (
    SAMPLE_CORPORA, CorpusError, corpus_stats, decode_text, load_sample, num_windows,
    read_text_file, split_text,
)
from gpt_core.tokenizers import CharTokenizer, GPT2Tokenizer

from conftest import ASSETS

ENGLISH = "I had always thought Jack Gisburn rather a cheap genius--though a good fellow enough.\n" * 3
FRENCH = "Voilà l'été — « déjà vu » : café crème, œuvre… 20 € ; naïve Zoë à Noël.\nÇa va ? Oui !\n"
EMOJI = "Stars ✨ and smiles 😀, 中文 too.\n"


@pytest.fixture(scope="module")
def lunyu() -> str:
    return (ASSETS / "lunyu.txt").read_text(encoding="utf-8")[:3000]


# --- decoding ---------------------------------------------------------------------------
@pytest.mark.parametrize("text", [ENGLISH, FRENCH, EMOJI])
def test_utf8(text):
    decoded = decode_text(text.encode("utf-8"))
    assert decoded.text == text
    assert decoded.encoding == "utf-8"


@pytest.mark.parametrize("text", [ENGLISH, FRENCH, EMOJI])
def test_utf8_with_bom(text):
    decoded = decode_text(codecs.BOM_UTF8 + text.encode("utf-8"))
    assert decoded.text == text  # the BOM is not part of the text
    assert decoded.encoding == "utf-8 (BOM)"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("text", [ENGLISH, FRENCH, EMOJI])
def test_utf16_with_bom(codec, text):
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    decoded = decode_text(bom + text.encode(codec))
    assert decoded.text == text
    assert decoded.encoding == f"{codec} (BOM)"


def test_utf16_as_python_writes_it():
    # Python's (and Notepad's) "utf-16" puts a BOM in the machine's byte order.
    assert decode_text(ENGLISH.encode("utf-16")).text == ENGLISH


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("text", [ENGLISH, FRENCH])
def test_utf16_without_bom(codec, text):
    decoded = decode_text(text.encode(codec))
    assert decoded.text == text
    assert decoded.encoding == codec


def test_utf32_with_bom():
    assert decode_text(ENGLISH.encode("utf-32")).text == ENGLISH


def test_gbk_chinese(lunyu):
    data = lunyu.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the fixture really is not UTF-8
    decoded = decode_text(data)
    assert decoded.text == lunyu
    assert decoded.encoding == "gb18030"  # GB18030 reads GBK and GB2312


def test_gb18030_beyond_gbk(lunyu):
    # Characters GBK lacks (an emoji, a CJK Extension B character) need GB18030's 4-byte codes.
    text = lunyu + "\n😀𠀀\n"
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")
    decoded = decode_text(text.encode("gb18030"))
    assert decoded.text == text
    assert decoded.encoding == "gb18030"


def test_cp1252_french():
    data = FRENCH.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    decoded = decode_text(data)
    assert decoded.text == FRENCH
    assert decoded.encoding == "cp1252"


@pytest.mark.parametrize("raw, expected", [
    (b"one\r\ntwo\r\nthree", "one\ntwo\nthree"),
    (b"old mac\rline\r", "old mac\nline\n"),
    (b"mixed\r\nendings\rand\nmore\r\n\r\n", "mixed\nendings\nand\nmore\n\n"),
])
def test_newlines_normalised(raw, expected):
    assert decode_text(raw).text == expected
    assert decode_text(codecs.BOM_UTF16_LE + raw.decode().encode("utf-16-le")).text == expected
    assert decode_text(raw.decode().encode("gbk")).text == expected


def test_empty_file():
    with pytest.raises(CorpusError, match="empty"):
        decode_text(b"")


@pytest.mark.parametrize("raw", [b" ", b"\n\n\t  \r\n", codecs.BOM_UTF8 + b"  \n", "\u3000 \n".encode("utf-16")])
def test_whitespace_only(raw):
    with pytest.raises(CorpusError, match="only whitespace"):
        decode_text(raw)


def test_random_bytes_with_nuls():
    data = random.Random(0).randbytes(4096)
    assert b"\x00" in data
    with pytest.raises(CorpusError, match="binary"):
        decode_text(data)


def test_random_bytes_without_nuls():
    data = bytes(b for b in random.Random(1).randbytes(4096) if b)
    with pytest.raises(CorpusError):
        decode_text(data)


def test_all_nul_bytes():
    with pytest.raises(CorpusError, match="binary"):
        decode_text(bytes(1000))


def test_control_characters_are_binary():
    data = bytes(random.Random(2).choice(range(1, 9)) for _ in range(500)) + ENGLISH.encode()
    with pytest.raises(CorpusError, match="binary"):
        decode_text(data)


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("the-verdict.txt", ENGLISH)
    return buffer.getvalue()


@pytest.mark.parametrize("data, what", [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(20), "PNG"),
    (_zip_bytes(), "zip"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "JPEG"),
    (b"\x1f\x8b\x08\x00" + bytes(10), "gzip"),
])
def test_known_binary_signatures(data, what):
    with pytest.raises(CorpusError, match=what):
        decode_text(data)


def test_invalid_after_bom():
    with pytest.raises(CorpusError, match="utf-8"):
        decode_text(codecs.BOM_UTF8 + b"ok \xff\xfe\xfd broken")


def test_corpus_error_is_a_value_error():
    assert issubclass(CorpusError, ValueError)


SHA256 = {  # ../shared/data/README.md
    "the-verdict.txt": "b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f",
    "tinyshakespeare.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    "lunyu.txt": "a132510d50a06cd9682aa4d31d6a2b30292f354f93522cd7c529da1007506691",
}


def test_sample_corpora():
    for name, path in SAMPLE_CORPORA.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256[path.name], name
        assert read_text_file(path).text == path.read_text(encoding="utf-8")
    verdict = load_sample()
    assert len(verdict) == 20479  # the book's "Total number of character: 20479"
    assert verdict.startswith("I HAD always thought Jack Gisburn")
    assert len(load_sample("论语 (The Analects)")) == 22093
    with pytest.raises(CorpusError, match="unknown sample corpus"):
        load_sample("War and Peace")


# --- split and statistics ---------------------------------------------------------------
def test_split_is_the_books(verdict_text):
    train, val = split_text(verdict_text)
    split_idx = int(0.9 * len(verdict_text))  # chapter 5
    assert train == verdict_text[:split_idx] and val == verdict_text[split_idx:]
    train, val = split_text(verdict_text, 0.5)
    assert len(train) == len(verdict_text) // 2 and train + val == verdict_text


@pytest.mark.parametrize("ratio", [0, 1, 1.5, -0.1])
def test_split_bad_ratio(ratio):
    with pytest.raises(ValueError, match="train_ratio"):
        split_text("some text", ratio)


def test_num_windows_matches_the_books_range():
    for n in range(0, 40):
        for max_length in (1, 2, 5, 16):
            for stride in (1, 3, 5, 16, 17):
                assert num_windows(n, max_length, stride) == len(range(0, n - max_length, stride))
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="stride"):
            num_windows(10, 4, bad)
        with pytest.raises(ValueError, match="max_length"):
            num_windows(10, bad, 2)


@pytest.fixture(scope="module")
def gpt2_reference():
    return tiktoken.get_encoding("gpt2")


@pytest.mark.parametrize("context, stride, batch", [
    (256, 256, 2),   # chapter 5
    (256, 128, 4),   # chapter 2's defaults
    (64, 32, 8),
    (16, 1, 3),
    (4, 4, 1),
])
def test_stats_equal_the_books_loaders(verdict_text, gpt2_reference, context, stride, batch):
    stats = corpus_stats(verdict_text, GPT2Tokenizer(), context_length=context, stride=stride, batch_size=batch)
    train_text, val_text = split_text(verdict_text)
    torch.manual_seed(123)
    train_loader = book_loader(train_text, batch_size=batch, max_length=context, stride=stride,
                               drop_last=True, shuffle=True, num_workers=0)
    val_loader = book_loader(val_text, batch_size=batch, max_length=context, stride=stride,
                             drop_last=False, shuffle=False, num_workers=0)
    assert stats.characters == 20479
    assert stats.tokens == len(gpt2_reference.encode(verdict_text)) == 5145
    assert stats.unique_characters == len(set(verdict_text))
    assert stats.train_tokens == len(gpt2_reference.encode(train_text))
    assert stats.val_tokens == len(gpt2_reference.encode(val_text))
    assert stats.train_windows == len(train_loader.dataset)
    assert stats.val_windows == len(val_loader.dataset)
    assert stats.train_batches == len(train_loader)
    assert stats.val_batches == len(val_loader)
    assert stats.warnings == []


def test_book_settings_figures(verdict_text):
    # Chapter 5: 9 training batches of 2 x 256 and one validation batch.
    stats = corpus_stats(verdict_text, GPT2Tokenizer(), context_length=256, batch_size=2)
    assert (stats.train_batches, stats.val_batches) == (9, 1)


def test_stats_with_characters(lunyu):
    tok = CharTokenizer.from_text(lunyu)

    class BookStyle:  # the book's dataset calls encode(txt, allowed_special=...)
        def encode(self, text, allowed_special=None):
            return tok.encode(text)

    stats = corpus_stats(lunyu, tok, context_length=32, stride=16, batch_size=4)
    train_text, val_text = split_text(lunyu)
    train = DataLoader(BookDataset(train_text, BookStyle(), 32, 16), batch_size=4, drop_last=True)
    val = DataLoader(BookDataset(val_text, BookStyle(), 32, 16), batch_size=4, drop_last=False)
    assert stats.tokens == stats.characters == len(lunyu)
    assert stats.unique_characters == tok.n_vocab
    assert (stats.train_windows, stats.val_windows) == (len(train.dataset), len(val.dataset))
    assert (stats.train_batches, stats.val_batches) == (len(train), len(val))


def test_warning_when_validation_is_shorter_than_a_window(verdict_text):
    stats = corpus_stats(verdict_text, GPT2Tokenizer(), context_length=1024, batch_size=2)
    assert stats.val_windows == stats.val_batches == 0
    assert stats.train_batches > 0
    assert len(stats.warnings) == 1
    assert "validation part" in stats.warnings[0] and "NaN" in stats.warnings[0]
    # What the warning is about: the book's val loader is empty and its loss is NaN.
    _, val_text = split_text(verdict_text)
    val_loader = book_loader(val_text, batch_size=2, max_length=1024, stride=1024,
                             drop_last=False, shuffle=False, num_workers=0)
    assert len(val_loader) == 0
    cfg = {"vocab_size": 50257, "context_length": 1024, "emb_dim": 8, "n_heads": 2,
           "n_layers": 1, "drop_rate": 0.0, "qkv_bias": False}
    loss = book_calc_loss_loader(val_loader, BookGPTModel(cfg), "cpu")
    assert loss != loss  # NaN


def test_warning_when_training_part_is_too_short():
    stats = corpus_stats("a tiny text. " * 20, GPT2Tokenizer(), context_length=64, batch_size=2)
    assert stats.train_batches == 0
    assert any("training part" in w for w in stats.warnings)


@pytest.mark.parametrize("kwargs, field", [
    (dict(context_length=0), "context_length"),
    (dict(context_length=-4), "context_length"),
    (dict(context_length=16, stride=0), "stride"),
    (dict(context_length=16, stride=-1), "stride"),
    (dict(context_length=16, batch_size=0), "batch_size"),
    (dict(context_length=16.0), "context_length"),
    (dict(context_length=16, train_ratio=1.0), "train_ratio"),
])
def test_stats_bad_arguments(verdict_text, kwargs, field):
    with pytest.raises(ValueError, match=field):
        corpus_stats(verdict_text, GPT2Tokenizer(), **kwargs)
