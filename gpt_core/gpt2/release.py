"""OpenAI's GPT-2 release: which sizes and files it has (one table each), where it is served,
the download of a size, and the checks of a release folder made before TensorFlow reads it."""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..config import GPT2_SIZES, GPTConfig
from ..user_cache import user_cache_root
from . import convert as conv
from .convert import GPT2LoadError
from .download import ProgressFn, download_files
from .fetch import looks_like_markup
from .verified import is_verified

# The sizes are GPT2_SIZES (gpt_core.config: name -> shape); these are the files of each.
GPT2_FILES = ("checkpoint", "encoder.json", "hparams.json", "model.ckpt.data-00000-of-00001",
              "model.ckpt.index", "model.ckpt.meta", "vocab.bpe")
DATA_FILE = "model.ckpt.data-00000-of-00001"
INDEX_FILE = "model.ckpt.index"
REQUIRED_FILES = ("hparams.json", INDEX_FILE, DATA_FILE)  # what loading reads
# OpenAI's public storage first, then the backup mirror of "Build a Large Language Model (From Scratch)".
GPT2_BASE_URLS = ("https://openaipublic.blob.core.windows.net/gpt-2/models",
                  "https://f001.backblazeb2.com/file/LLMs-from-scratch/gpt2")
# Exact sizes of the 124M release; other sizes are checked against Content-Length.
KNOWN_SIZES = {"124M": {
    "checkpoint": 77, "encoder.json": 1_042_301, "hparams.json": 90,
    "model.ckpt.data-00000-of-00001": 497_759_232, "model.ckpt.index": 5_215,
    "model.ckpt.meta": 471_155, "vocab.bpe": 456_318,
}}
# sha256 of the release files where they are known. OpenAI publishes none, and a checksum is
# never guessed: a file is verified by its size, its sha256 is then recorded beside it
# (verified.VERIFIED), and a later change of the file is detected by that record.
KNOWN_SHA256: dict[str, dict[str, str]] = {}
# For progress only (never a check): the data file holds the float32 weights, and the
# vocabulary files are the same for every size.
ESTIMATED_DATA_BYTES = {s: 4 * c.num_parameters() for s, c in GPT2_SIZES.items() if s not in KNOWN_SIZES}
OFFLINE_HINT = ("If this machine is offline, copy the GPT-2 files from a machine that has them and "
                "import the folder: python -m gpt_core import FOLDER")
# LevelDB/TensorFlow table footer magic: the last 8 bytes of a whole .index file.
_TABLE_MAGIC = struct.pack("<Q", 0xDB4775248B80FB57)


def default_models_dir() -> Path:
    """$GPT2_MODELS_DIR, else the user cache's gpt2/ (gpt_core/user_cache.py)."""
    env = os.environ.get("GPT2_MODELS_DIR")
    return Path(env) if env else user_cache_root() / "gpt2"


# --- sizes: the shape of each, recognised one way --------------------------------------------
def config_from_hparams(hp: Mapping[str, Any], *, drop_rate: float = 0.1) -> GPTConfig:
    """hparams.json -> GPTConfig as the book builds it for GPT-2: qkv bias, tied head."""
    hp = conv.check_hparams(hp)
    return GPTConfig(vocab_size=hp["n_vocab"], context_length=hp["n_ctx"], emb_dim=hp["n_embd"],
                     n_heads=hp["n_head"], n_layers=hp["n_layer"], drop_rate=drop_rate,
                     qkv_bias=True, tie_weights=True)


def size_of(cfg: GPTConfig) -> str | None:
    """The released size ("124M", ...) a model has the shape of, or None."""
    shape = (cfg.vocab_size, cfg.emb_dim, cfg.n_heads, cfg.n_layers)
    return next((s for s, c in GPT2_SIZES.items() if (c.vocab_size, c.emb_dim, c.n_heads, c.n_layers) == shape),
                None)


def heads_by_width() -> dict[int, int]:
    """n_heads of each released width: what a model.safetensors without config.json needs."""
    return {c.emb_dim: c.n_heads for c in GPT2_SIZES.values()}


def n_floats(hp: Mapping[str, int]) -> int:
    return sum(int(np.prod(r.shape)) for r in conv.weight_rows(hp))


# --- the download of a size ----------------------------------------------------------------
def _check_content(name: str, path: Path) -> str | None:
    """Why the complete file at `path` cannot be the release's `name`, or None if it can."""
    if name == "hparams.json":
        try:
            hp = json.loads(path.read_bytes())
            if not isinstance(hp, dict) or "n_embd" not in hp:
                return "hparams.json has no n_embd"
        except ValueError:
            return "hparams.json is not valid JSON"
    if name == "checkpoint":
        with open(path, "rb") as f:
            if not f.read(32).startswith(b"model_checkpoint_path"):
                return "it does not start with model_checkpoint_path"
    return None


def _estimates(size: str) -> dict[str, int]:
    same = {n: b for n, b in KNOWN_SIZES["124M"].items() if not n.startswith("model.ckpt")}  # vocabulary, ...
    return {**same, DATA_FILE: ESTIMATED_DATA_BYTES.get(size, 0)}


def download_gpt2(size: str, models_dir: str | os.PathLike, *, progress: ProgressFn | None = None,
                  base_urls: Sequence[str] | None = None, timeout: float = 30.0, retries: int = 5,
                  deadline: float | None = None, backoff: float = 1.0) -> Path:
    """Download GPT-2 `size` ("124M", "355M", "774M", "1558M") into `models_dir/size`.

    Complete, verified files are skipped. `timeout` is per network operation, `retries` the
    transient failures allowed per file (resuming each time, with backoff 1, 2, 4 ... s times
    `backoff`), `deadline` an overall limit in seconds. Returns the folder. Raises DownloadError."""
    if size not in GPT2_SIZES:
        raise ValueError(f"unknown GPT-2 size {size!r}; choose one of {', '.join(GPT2_SIZES)}")
    bases = tuple(base_urls) if base_urls is not None else GPT2_BASE_URLS
    return download_files(Path(models_dir) / size, GPT2_FILES, [f"{b.rstrip('/')}/{size}" for b in bases],
                          what=f"GPT-2 {size}", expected=KNOWN_SIZES.get(size, {}), estimate=_estimates(size),
                          sha256=KNOWN_SHA256.get(size), check=_check_content, hint=OFFLINE_HINT,
                          progress=progress, timeout=timeout, retries=retries, deadline=deadline, backoff=backoff)


def release_verified(folder: str | os.PathLike, size: str) -> bool:
    """Every file of the release of `size` in `folder` verified (by its known size and checksum
    where known, else as downloaded or imported) and unchanged since."""
    known, sha = KNOWN_SIZES.get(size, {}), KNOWN_SHA256.get(size, {})
    return all(is_verified(Path(folder) / n, size=known.get(n), sha256=sha.get(n)) for n in GPT2_FILES)


# --- checks before TensorFlow reads anything ---------------------------------------------
def read_hparams(path: str | os.PathLike) -> dict[str, int]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise GPT2LoadError(f"{path} is missing; a GPT-2 folder needs hparams.json") from None
    if looks_like_markup(raw[:64]):
        raise GPT2LoadError(f"{path} is an HTML/XML page (a server's error message), not hparams.json; download it again")
    try:
        hp = json.loads(raw)
    except ValueError:
        raise GPT2LoadError(f"{path} is not valid JSON") from None
    try:
        return conv.check_hparams(hp, where=str(path))
    except ValueError as e:
        raise GPT2LoadError(str(e)) from None


def check_release_folder(folder: str | os.PathLike) -> dict[str, int]:
    """Sizes and consistency of a release folder, without TensorFlow. Returns its hparams."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GPT2LoadError(f"{folder} is not a folder")
    return check_release_files({n: folder / n for n in REQUIRED_FILES if (folder / n).is_file()}, where=str(folder))


def check_release_files(files: Mapping[str, Path], *, where: str = "the given files",
                        hparams: Mapping[str, int] | None = None) -> dict[str, int]:
    """The same checks on {release file name: path}, e.g. uploaded files. `hparams` given
    (the book passes `settings`) stand in for hparams.json."""
    missing = [n for n in REQUIRED_FILES if n not in files and not (hparams and n == "hparams.json")]
    if missing:
        raise GPT2LoadError(f"{where} lacks {', '.join(missing)}; a GPT-2 release folder has hparams.json, "
                            f"{INDEX_FILE} and {DATA_FILE} (download it, or copy the release's 7 files there)")
    hp = dict(hparams) if hparams else read_hparams(files["hparams.json"])
    for name in (INDEX_FILE, DATA_FILE):
        with open(files[name], "rb") as f:
            if looks_like_markup(f.read(64)):
                raise GPT2LoadError(f"{files[name]} is an HTML/XML page (a server's error message), "
                                    "not part of the checkpoint; download it again")
    need = 4 * n_floats(hp)
    have = files[DATA_FILE].stat().st_size
    if have < need:
        raise GPT2LoadError(
            f"{files[DATA_FILE]} has {have:,} bytes but the GPT-2 in hparams.json needs {need:,} "
            f"(float32): the file is incomplete (an interrupted download or copy). Download it again "
            f"(python -m gpt_core download SIZE) or copy it again.")
    with open(files[INDEX_FILE], "rb") as f:
        f.seek(0, os.SEEK_END)
        n = f.tell()
        f.seek(max(0, n - 8))
        tail = f.read(8)
    if n < 48 or tail != _TABLE_MAGIC:
        raise GPT2LoadError(f"{files[INDEX_FILE]} is damaged or incomplete (it does not end like a TensorFlow "
                            "index); download or copy it again")
    return hp


def source_fingerprint(folder: Path) -> dict[str, Any]:
    """What the cache was made from: sizes and mtimes, and the hash of the small files."""
    fp: dict[str, Any] = {"kind": "tensorflow"}
    for name in REQUIRED_FILES:
        st = (folder / name).stat()
        fp[name] = [st.st_size, st.st_mtime_ns]
    for name in ("hparams.json", INDEX_FILE):
        fp[name].append(hashlib.sha256((folder / name).read_bytes()).hexdigest())
    return fp


