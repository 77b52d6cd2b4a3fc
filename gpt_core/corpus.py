"""Uploaded bytes -> text, and what a model will see of that text.

Users bring files from anywhere: Windows Notepad (UTF-16, UTF-8 with BOM), Chinese novels in
GBK, and now and then a PDF or a zip by mistake. Every case gives text or a clear message.
"""
from __future__ import annotations

import codecs
import math
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

# Package data (gpt_core/assets/), read through importlib.resources so that an installed copy
# finds its own files whatever the working directory. Values are Traversables: read them with
# `.read_bytes()` / `.read_text()`.
ASSETS_DIR = resources.files(__package__) / "assets"
SAMPLE_CORPORA = {
    "The Verdict (Edith Wharton)": ASSETS_DIR / "the-verdict.txt",
    "Tiny Shakespeare": ASSETS_DIR / "tinyshakespeare.txt",
    "论语 (The Analects)": ASSETS_DIR / "lunyu.txt",
}
DEFAULT_CORPUS = "The Verdict (Edith Wharton)"

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),  # before UTF-16: same prefix
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Magic numbers of files people upload by mistake, for a message that says what it was.
_BINARY_SIGNATURES = {
    b"%PDF": "a PDF document", b"PK\x03\x04": "a zip archive (or .docx/.xlsx)",
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
    b"\x7fELF": "a program", b"\x1f\x8b": "a gzip archive", b"\xd0\xcf\x11\xe0": "an old Word/Excel file",
}


class CorpusError(ValueError):
    """The bytes are not a usable text; the message says why and what to do."""


@dataclass(frozen=True)
class DecodedText:
    text: str
    encoding: str


def _control_fraction(text: str) -> float:
    sample = text[:100_000]
    bad = sum(1 for c in sample if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f\v")
    return bad / max(1, len(sample))


def _looks_like_cjk(text: str) -> bool:
    non_ascii = [c for c in text[:100_000] if ord(c) > 127]
    if not non_ascii:
        return True
    cjk = sum(1 for c in non_ascii if "\u3000" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef")
    return cjk / len(non_ascii) > 0.8


def decode_text(data: bytes) -> DecodedText:
    """Detect the encoding of `data` and return normalised text (\\n newlines, no BOM)."""
    if not data:
        raise CorpusError("The file is empty. Choose a text file with some writing in it.")
    for signature, what in _BINARY_SIGNATURES.items():
        if data.startswith(signature):
            raise CorpusError(f"This file is {what}, not plain text. Save it as a .txt file first.")

    text, encoding = None, None
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                text, encoding = data[len(bom):].decode(name), name + " (BOM)"
            except UnicodeDecodeError:
                raise CorpusError(f"The file starts like {name} but is not valid {name}.") from None
            break
    if text is None:
        text, encoding = _decode_without_bom(data)

    if _control_fraction(text) > 0.01:
        raise CorpusError("This file looks binary (many control characters), not plain text.")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CorpusError("The file holds only whitespace. Choose a text with some writing in it.")
    return DecodedText(text, encoding)


def _decode_without_bom(data: bytes) -> tuple[str, str]:
    # UTF-16 without a BOM: mostly-ASCII text has a NUL in every other byte. Tried before
    # UTF-8, because NUL bytes are valid UTF-8 and would decode to "T\x00h\x00e\x00".
    if len(data) % 2 == 0 and data.count(0) > len(data) // 4:
        odd_nuls, even_nuls = data[1::2].count(0), data[0::2].count(0)
        name = "utf-16-le" if odd_nuls > even_nuls else "utf-16-be"
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        raise CorpusError("This file looks binary (it contains NUL bytes), not plain text.")
    # GB18030 is a superset of GBK and GB2312, the usual encodings of Chinese texts.
    try:
        text = data.decode("gb18030")
        if _looks_like_cjk(text):
            return text, "gb18030"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        raise CorpusError(
            "Could not read this file as text (tried UTF-8, UTF-16, GBK/GB18030 and Windows-1252). "
            "Save it as UTF-8 and upload it again."
        ) from None


def read_text_file(path: str | Path) -> DecodedText:
    return decode_text(Path(path).read_bytes())


def load_sample(name: str = DEFAULT_CORPUS) -> str:
    try:
        path = SAMPLE_CORPORA[name]
    except KeyError:
        raise CorpusError(f"unknown sample corpus {name!r}") from None
    return decode_text(path.read_bytes()).text


def split_text(text: str, train_ratio: float = 0.9) -> tuple[str, str]:
    """The book's split: the first `train_ratio` of the *characters* trains."""
    if not 0.0 < train_ratio < 1.0:
        raise ValueError(f"train_ratio must be between 0 and 1, got {train_ratio}")
    split_idx = int(train_ratio * len(text))
    return text[:split_idx], text[split_idx:]


def num_windows(num_tokens: int, max_length: int, stride: int) -> int:
    """Windows the book's GPTDatasetV1 makes: starts 0, stride, ... < num_tokens - max_length."""
    _check_positive(max_length=max_length, stride=stride)
    return max(0, -(-(num_tokens - max_length) // stride))  # integer ceil: exact for any size


def _check_positive(**values: object) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")


@dataclass
class CorpusStats:
    characters: int
    unique_characters: int
    tokens: int
    train_tokens: int
    val_tokens: int
    train_windows: int
    val_windows: int
    train_batches: int
    val_batches: int
    warnings: list[str] = field(default_factory=list)


def corpus_stats(text: str, tokenizer, *, context_length: int, stride: int | None = None,
                 batch_size: int = 2, train_ratio: float = 0.9) -> CorpusStats:
    """What the book's loaders will make of `text` (train: drop_last, val: keep the rest)."""
    stride = context_length if stride is None else stride
    _check_positive(context_length=context_length, stride=stride, batch_size=batch_size)
    train_text, val_text = split_text(text, train_ratio)
    train_tokens = len(tokenizer.encode(train_text))
    val_tokens = len(tokenizer.encode(val_text))
    train_windows = num_windows(train_tokens, context_length, stride)
    val_windows = num_windows(val_tokens, context_length, stride)
    warnings = []
    if train_windows < batch_size:
        warnings.append(
            f"The training part has {train_tokens} tokens: fewer than one batch of "
            f"{batch_size} windows of {context_length}+1 tokens. Use a longer text, a shorter "
            f"context or a smaller batch."
        )
    if val_windows == 0:
        warnings.append(
            f"The validation part has {val_tokens} tokens, shorter than one context window "
            f"({context_length}+1 tokens): it yields no batch and its loss is NaN. Use a longer "
            f"text, a shorter context or a larger validation share."
        )
    return CorpusStats(
        characters=len(text), unique_characters=len(set(text)), tokens=len(tokenizer.encode(text)),
        train_tokens=train_tokens, val_tokens=val_tokens,
        train_windows=train_windows, val_windows=val_windows,
        train_batches=train_windows // batch_size, val_batches=math.ceil(val_windows / batch_size),
        warnings=warnings,
    )
