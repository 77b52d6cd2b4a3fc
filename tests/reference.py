"""Test-only access to the reference implementations (the book's code, OpenAI's tiktoken
encoding) without a network: the book calls `tiktoken.get_encoding("gpt2")`, which would
download the vocabulary; we seed tiktoken's cache with the bundled, verified files instead.
And the book's own data loaders, built as chapter 5 builds them."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from gpt_core.tokenizers import GPT2_VOCAB_DIR

_TIKTOKEN_URLS = {
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
}


def seed_tiktoken_cache() -> str:
    """Point TIKTOKEN_CACHE_DIR at a folder holding the bundled GPT-2 files under the names
    tiktoken looks for (sha1 of their URL). Returns the folder."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "gpt-playground-tiktoken")
    os.makedirs(cache_dir, exist_ok=True)
    for name, url in _TIKTOKEN_URLS.items():
        target = Path(cache_dir) / hashlib.sha1(url.encode()).hexdigest()
        if not target.exists():
            shutil.copyfile(GPT2_VOCAB_DIR / name, target)
    os.environ["TIKTOKEN_CACHE_DIR"] = cache_dir
    return cache_dir


def book_chapter5_loaders(text: str, *, max_length: int = 256, batch_size: int = 2):
    """(train, validation) loaders of `text` made by the book's `create_dataloader_v1` as
    chapter 5 makes them: a 90/10 split, stride = context, the training loader shuffled and
    without its last short batch."""
    from llms_from_scratch.ch02 import create_dataloader_v1

    from gpt_core.corpus import split_text

    train_text, val_text = split_text(text)
    kw = dict(batch_size=batch_size, max_length=max_length, stride=max_length, num_workers=0)
    return (create_dataloader_v1(train_text, drop_last=True, shuffle=True, **kw),
            create_dataloader_v1(val_text, drop_last=False, shuffle=False, **kw))
