"""Tokenizers behind one interface: GPT-2 BPE (offline, from bundled files) and characters.

Both have `encode`, `decode`, `decode_bytes`, `n_vocab`, `eot_id`, `to_dict`; a checkpoint
stores `to_dict()` and `tokenizer_from_dict` rebuilds the same tokenizer.
"""
from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence


# OpenAI's encoder.json and vocab.bpe, shipped as package data (gpt_core/assets/gpt2/).
GPT2_VOCAB_DIR = resources.files(__package__) / "assets" / "gpt2"
ENDOFTEXT = "<|endoftext|>"
# sha256 of OpenAI's released files; the encoding is never built from anything else.
GPT2_FILE_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
# tiktoken's own gpt2 split pattern (tiktoken_ext/openai_public.py).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


class Tokenizer(Protocol):
    name: str

    @property
    def n_vocab(self) -> int: ...
    @property
    def eot_id(self) -> int | None: ...
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Iterable[int]) -> str: ...
    def decode_bytes(self, ids: Iterable[int]) -> bytes: ...
    def to_dict(self) -> dict[str, Any]: ...


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2's reversible byte <-> printable-character table (encoder.py in OpenAI's release).
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _read_verified(path: Traversable) -> bytes:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != GPT2_FILE_SHA256[path.name]:
        raise ValueError(f"{path} is not OpenAI's GPT-2 {path.name} (sha256 {digest[:12]}...)")
    return data


@functools.lru_cache(maxsize=1)
def _gpt2_encoding(directory: Traversable):
    """The tiktoken Encoding, built from local files only (tiktoken would download them)."""
    import tiktoken

    encoder = json.loads(_read_verified(directory / "encoder.json"))
    merges_text = _read_verified(directory / "vocab.bpe").decode("utf-8")
    byte_decoder = {c: b for b, c in _bytes_to_unicode().items()}

    def to_bytes(token: str) -> bytes:
        return bytes(byte_decoder[c] for c in token)

    # Same construction as tiktoken.load.data_gym_to_mergeable_bpe_ranks: single bytes in
    # GPT-2's order, then one rank per merge in the merges file.
    ranks = {bytes([b]): i for i, b in enumerate(_bytes_to_unicode())}
    for line in merges_text.split("\n")[1:]:
        if not line:
            continue
        first, second = line.split()
        ranks[to_bytes(first) + to_bytes(second)] = len(ranks)
    # Sanity: the merges must reproduce encoder.json's ids exactly.
    encoder.pop(ENDOFTEXT, None)
    if {to_bytes(k): v for k, v in encoder.items()} != ranks:
        raise ValueError("GPT-2 vocabulary files disagree with each other")
    return tiktoken.Encoding(
        name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: 50256}, explicit_n_vocab=50257,
    )


class GPT2Tokenizer:
    """OpenAI's GPT-2 BPE; ids identical to `tiktoken.get_encoding("gpt2")`."""

    name = "gpt2"

    def __init__(self, vocab_dir: str | Path | Traversable = GPT2_VOCAB_DIR):
        self.encoding = _gpt2_encoding(Path(vocab_dir) if isinstance(vocab_dir, str) else vocab_dir)

    @property
    def n_vocab(self) -> int:
        return self.encoding.n_vocab

    @property
    def eot_id(self) -> int:
        return self.encoding.eot_token

    def encode(self, text: str) -> list[int]:
        # As the book does: the end-of-text marker in a text is the special token.
        return self.encoding.encode(text, allowed_special={ENDOFTEXT})

    def decode(self, ids: Iterable[int]) -> str:
        return self.encoding.decode(list(ids))

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        return self.encoding.decode_bytes(list(ids))

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """Each token on its own (a piece of a split multi-byte character shows as U+FFFD)."""
        return [self.encoding.decode_single_token_bytes(i).decode("utf-8", errors="replace") for i in ids]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "gpt2"}


class CharTokenizer:
    """Sorted unique characters of a corpus, as the BabyGPT notebook builds its vocabulary.

    Characters the corpus never had have no id. `unknown` decides what encode does with them:
    "replace" (default) maps each to `fallback` -- a space if the corpus has one, else its
    first character -- so a prompt with a new character still runs; "skip" drops them;
    "error" raises ValueError naming them. `unknown_chars(text)` lists them for a warning.
    """

    name = "char"

    def __init__(self, chars: Iterable[str], *, unknown: str = "replace"):
        self.chars = sorted(set(chars))
        if not self.chars:
            raise ValueError("a character tokenizer needs at least one character")
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("a character vocabulary holds single characters")
        if unknown not in ("replace", "skip", "error"):
            raise ValueError(f"unknown must be 'replace', 'skip' or 'error', got {unknown!r}")
        self.unknown = unknown
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.fallback = " " if " " in self.stoi else self.chars[0]

    @classmethod
    def from_text(cls, text: str, **kwargs: Any) -> "CharTokenizer":
        return cls(set(text), **kwargs)

    @property
    def n_vocab(self) -> int:
        return len(self.chars)

    @property
    def eot_id(self) -> None:
        return None

    def unknown_chars(self, text: str) -> list[str]:
        return sorted(set(text) - self.stoi.keys())

    def encode(self, text: str) -> list[int]:
        stoi = self.stoi
        if self.unknown == "error":
            missing = self.unknown_chars(text)
            if missing:
                raise ValueError(f"characters not in the vocabulary: {''.join(missing[:20])!r}")
        if self.unknown == "skip":
            return [stoi[c] for c in text if c in stoi]
        fallback = stoi[self.fallback]
        return [stoi.get(c, fallback) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        chars = self.chars
        ids = [int(i) for i in ids]
        # Checked explicitly: a negative id would otherwise index from the end silently.
        bad = [i for i in ids if not 0 <= i < len(chars)]
        if bad:
            raise ValueError(f"token id {bad[0]} is out of range for a {len(chars)}-character vocabulary")
        return "".join(chars[i] for i in ids)

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        return self.decode(ids).encode("utf-8")

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [self.chars[int(i)] for i in ids]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "char", "chars": "".join(self.chars), "unknown": self.unknown}


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    kind = d.get("type") if isinstance(d, dict) else None
    if kind == "gpt2":
        return GPT2Tokenizer()
    if kind == "char" and isinstance(d.get("chars"), str):
        # Dicts written before the policy was stored get the default policy.
        return CharTokenizer(d["chars"], unknown=d.get("unknown", "replace"))
    raise ValueError(f"unknown tokenizer description: {d!r:.80}")


def get_tokenizer(kind: str, text: str | None = None) -> Tokenizer:
    """"gpt2", or "char" built from `text`."""
    if kind == "gpt2":
        return GPT2Tokenizer()
    if kind == "char":
        if not text:
            raise ValueError("a character tokenizer is built from a text; none was given")
        return CharTokenizer.from_text(text)
    raise ValueError(f"unknown tokenizer {kind!r}; choose 'gpt2' or 'char'")


# --- does a tokenizer fit a text? ---------------------------------------------------------------
def byte_piece_share(tokenizer: Tokenizer, text: str) -> float:
    """The share of `text`'s tokens that are pieces of a character, not whole ones. GPT-2's BPE
    splits most Chinese characters into two or three byte tokens (each shown as U+FFFD on its
    own): on 论语 about 90% of the tokens; on English texts none."""
    ids = tokenizer.encode(text)
    if not ids:
        return 0.0
    return sum("\ufffd" in piece for piece in tokenizer.token_strings(ids)) / len(ids)


def unreadable_share(tokenizer: Tokenizer, text: str) -> float:
    """The share of `text`'s characters (whitespace aside) that `tokenizer` has no token for:
    0 for GPT-2's BPE, which reads any text as bytes; for a character tokenizer, the characters
    its corpus never had (an English prompt for a model of 论语 is all of them)."""
    unknown = getattr(tokenizer, "unknown_chars", None)
    chars = [c for c in text if not c.isspace()]
    if unknown is None or not chars:
        return 0.0
    missing = set(unknown(text))
    return sum(c in missing for c in chars) / len(chars)


def opening(text: str, *, max_chars: int = 16) -> str:
    """The text's first line, at most `max_chars` characters: a start context that a model
    trained on the text can read."""
    stripped = text.strip()
    return stripped.split("\n", 1)[0].strip()[:max_chars] or stripped[:max_chars]
