"""Loading GPT-2 into GPTModel: `load_gpt2` (a size, a folder or a file) and `import_gpt2`
(weights from outside, into the models folder). A size is loaded only from files that
verified: downloaded by `download_gpt2` or imported by the operator, unchanged since."""
from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Mapping, Sequence

import torch

from ..config import GPT2_SIZES, GPTConfig
from ..model import GPTModel
from ..tokenizers import GPT2Tokenizer
from .cache import (CACHE_NAME, hf_hparams, prepare_hf_cache, safetensors_shapes, cache_hparams,
                    model_from_cache, prepare_cache, read_header, valid_cache)
from .convert import GPT2LoadError
from .download import LOCK_NAME, ProgressFn
from .verified import file_lock, is_verified, record_verified
from .release import (DATA_FILE, GPT2_FILES, INDEX_FILE, REQUIRED_FILES, check_release_files, config_from_hparams,
                      default_models_dir, download_gpt2, release_verified, size_of, source_fingerprint)


# --- public entry points ------------------------------------------------------------------
def _locate(folder: Path) -> Path | None:
    """The weights a folder offers: release checkpoint, our standalone cache, or transformers'."""
    if (folder / INDEX_FILE).exists() or (folder / DATA_FILE).exists():
        return folder
    if valid_cache(folder / CACHE_NAME, None):
        return folder / CACHE_NAME
    if (folder / "model.safetensors").is_file():
        return folder / "model.safetensors"
    return None


def load_gpt2(source: str | os.PathLike = "124M", *, models_dir: str | os.PathLike | None = None,
              device: str | torch.device | None = None, download: bool = True,
              progress: ProgressFn | None = None, cache_dir: str | os.PathLike | None = None,
              timeout: float | None = None) -> tuple[GPTModel, GPTConfig, GPT2Tokenizer]:
    """Load OpenAI's GPT-2 into GPTModel, in eval mode: `(model, config, tokenizer)`.

    `source` is a size ("124M", "355M", "774M", "1558M": looked up in `models_dir`, downloaded
    if missing and `download`), a release folder, a folder or file with a transformers
    `model.safetensors`, or a cache file written by this module.

    On CPU the parameters are copy-on-write views of the memory-mapped cache: processes that
    load the same model share its pages until one trains it. `device` moves the model."""
    src = Path(source)
    verified = False
    if isinstance(source, str) and source in GPT2_SIZES:  # a size; Path("124M") is a folder
        src = _verified_size(Path(models_dir or default_models_dir()) / source, source, download=download,
                             progress=progress)
        verified = True
    elif src.is_dir():
        found = _locate(src)
        if found is None:
            raise GPT2LoadError(f"{src} holds no GPT-2 weights: expected OpenAI's release files ({', '.join(REQUIRED_FILES)}) "
                                "or a transformers model.safetensors")
        src = found
    elif not src.is_file():
        raise GPT2LoadError(f"{source} is neither a GPT-2 size ({', '.join(GPT2_SIZES)}) nor an existing folder or file")
    # The tokenizer (about a second to build, once per process) is built while we wait for
    # the converter, which works in another process.
    tokenizer: list[GPT2Tokenizer] = []
    tok_thread = threading.Thread(target=lambda: tokenizer.append(GPT2Tokenizer()), daemon=True)
    tok_thread.start()
    if src.is_file():
        header, start = read_header(src)
        cache = src if cache_hparams(src, header, start) is not None else prepare_cache(src, cache_dir=cache_dir)
    else:
        cache = prepare_cache(src, cache_dir=cache_dir, timeout=timeout, verified=verified)
    model, cfg = model_from_cache(cache, device=device)
    tok_thread.join()
    return model, cfg, tokenizer[0] if tokenizer else GPT2Tokenizer()


def _verified_size(folder: Path, size: str, *, download: bool, progress: ProgressFn | None) -> Path:
    """What GPT-2 `size` in `folder` may be loaded from: the release's files as downloaded (sizes
    checked, checksums recorded) or imported by `import_gpt2`, unchanged since; else the
    download, which re-verifies them. Any other file there (a model.safetensors, a cache this
    program did not record) is never loaded as this size."""
    if release_verified(folder, size):
        return folder
    release_here = any((folder / n).exists() for n in GPT2_FILES if n != "hparams.json")
    if not release_here and is_verified(folder / CACHE_NAME):  # imported from a transformers model
        return folder / CACHE_NAME
    if not download:
        there = "is not verified in" if release_here or (folder / CACHE_NAME).exists() else "is not in"
        raise GPT2LoadError(f"GPT-2 {size} {there} {folder}; download it (python -m gpt_core download "
                            f"{size}) or import a folder that has it (python -m gpt_core import FOLDER)")
    download_gpt2(size, folder.parent, progress=progress)
    return folder


def _copy_atomic(src: Path, dest: Path) -> None:
    """Copy with its mtime (copy2), so a cache made from `src` stays valid for `dest`."""
    if dest.exists() and (os.path.samefile(src, dest) or (
            dest.stat().st_size == src.stat().st_size and dest.stat().st_mtime_ns == src.stat().st_mtime_ns)):
        return
    tmp = dest.with_name(dest.name + ".part")
    shutil.copy2(src, tmp)
    os.replace(tmp, dest)


def import_gpt2(source: str | os.PathLike | Sequence[str | os.PathLike], *,
                models_dir: str | os.PathLike | None = None, name: str | None = None) -> Path:
    """Bring GPT-2 weights from outside into `models_dir/NAME`, so `load_gpt2(NAME)` finds them
    offline. `source`: a folder in the release layout, a list of its files (e.g. uploads,
    matched by file name), or a transformers `model.safetensors` (file or its folder).
    NAME defaults to the size the hparams describe ("124M", ...). Returns the folder."""
    if isinstance(source, (list, tuple)):
        files = {Path(p).name: Path(p) for p in source}
        hf = [] if INDEX_FILE in files else [p for n, p in files.items() if n.endswith(".safetensors")]
    else:
        src = Path(source)
        if src.is_file() and src.suffix == ".safetensors":
            files, hf = {}, [src]
        elif src.is_dir():
            files = {p.name: p for p in src.iterdir() if p.is_file()}
            hf = [] if INDEX_FILE in files else [p for n, p in files.items() if n == "model.safetensors"]
        else:
            raise GPT2LoadError(f"{src} is neither a folder nor a .safetensors file")
    if name is not None and (not name or "/" in name or "\\" in name or name in (".", "..")):
        raise ValueError(f"name must be a plain folder name, got {name!r}")
    root = Path(models_dir or default_models_dir())
    if hf:
        if len(hf) > 1:
            raise GPT2LoadError("give one model.safetensors at a time")
        config = files.get("config.json") or hf[0].parent / "config.json"
        hp = hf_hparams(hf[0], safetensors_shapes(hf[0]), config if config.is_file() else None)
        dest = root / (name or size_of(config_from_hparams(hp)) or _no_name(hp))
        dest.mkdir(parents=True, exist_ok=True)
        prepare_hf_cache(hf[0], target=dest / CACHE_NAME, hparams=hp)
        (dest / "hparams.json").write_text(json.dumps(hp))
        record_verified(dest / CACHE_NAME)  # importing is the operator's decision to trust it
        return dest
    hp = check_release_files(files, where=str(source) if not isinstance(source, (list, tuple)) else "the given files")
    dest = root / (name or size_of(config_from_hparams(hp)) or _no_name(hp))
    dest.mkdir(parents=True, exist_ok=True)
    with file_lock(dest / LOCK_NAME, what=f"importing into {dest}"):
        # Importing is the operator's decision to trust these files: recorded as verified.
        for n in GPT2_FILES:
            if n in files:
                _copy_atomic(files[n], dest / n)
                record_verified(dest / n)
        # A folder converted before brings its cache along (still valid: same sizes and mtimes).
        if CACHE_NAME in files and valid_cache(files[CACHE_NAME], source_fingerprint(dest)):
            _copy_atomic(files[CACHE_NAME], dest / CACHE_NAME)
            record_verified(dest / CACHE_NAME)
    prepare_cache(dest, verified=True)
    return dest


def _no_name(hp: Mapping[str, int]) -> str:
    raise GPT2LoadError(f"these hparams ({json.dumps(dict(hp))}) match no released GPT-2 size; pass a name")


