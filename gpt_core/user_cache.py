"""The one folder where the playground keeps what it downloads, converts or builds for this
user: $XDG_CACHE_HOME/gpt-playground, else ~/.cache/gpt-playground. GPT-2's weights
(gpt2/release.py), their converted caches (gpt2/cache.py) and the compiled bfloat16 kernel
(bf16_matvec.py) each take a folder in it, and each can be moved by its own variable."""
from __future__ import annotations

import os
from pathlib import Path


def user_cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpt-playground"
