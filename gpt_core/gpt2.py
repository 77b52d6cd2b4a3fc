"""OpenAI GPT-2 weights in our GPTModel: checks, a crash-proof TensorFlow read, a mmap'd cache.

The first load of a release folder checks every file's size against hparams.json, then a
child process (gpt2_convert.py) reads the TensorFlow checkpoint one tensor at a time into
`gpt_core_weights.safetensors` beside it, already in our names and layouts. The model is
built without random init and its parameters become views of that file,
memory-mapped copy-on-write: one copy of the weights, shared page cache between processes
that load the same model, and later loads take a fraction of a second. TensorFlow is never
imported by this process on that path, and a TensorFlow crash is an error message.

Here: the converter child's runner, the cache's preparation (TensorFlow checkpoint or a
transformers model.safetensors), `load_gpt2` and `import_gpt2`. gpt2_files.py holds the checks
and the cache mapping, gpt2_convert.py the name table and the converter, gpt2_book.py the
book's `load_gpt2_params_from_tf_ckpt` and `load_weights_into_gpt` (re-exported here).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Mapping, Sequence

import torch

from . import gpt2_convert as conv
from .config import GPTConfig
from .download import (GPT2_FILES, GPT2_MODEL_SIZES, ProgressFn, default_models_dir, download_gpt2, file_lock,
                       is_verified, record_verified, release_verified)
from .gpt2_book import load_gpt2_params_from_tf_ckpt, load_weights_into_gpt
from .gpt2_convert import GPT2LoadError, WeightError
from .gpt2_files import (CACHE_NAME, DATA_FILE, INDEX_FILE, REQUIRED_FILES, cache_candidates, cache_hparams,
                         check_release_files, check_release_folder, config_from_hparams, hparams_size_name,
                         model_from_cache, read_hparams, read_header, source_fingerprint, valid_cache, writable_dir)
from .model import GPTModel
from .tokenizers import GPT2Tokenizer

__all__ = ["GPT2LoadError", "WeightError", "load_gpt2", "import_gpt2", "prepare_cache", "default_models_dir",
           "config_from_hparams", "read_hparams", "check_release_folder", "check_release_files",
           "load_gpt2_params_from_tf_ckpt", "load_weights_into_gpt", "CACHE_NAME"]

_HF_IGNORED = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers some versions save


def _run_child(cmd: Sequence[str], *, what: str, timeout: float | None = None) -> None:
    """Run a converter child; its clean error, a crash or a timeout become GPT2LoadError."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, errors="replace",
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise GPT2LoadError(f"{what} took longer than {timeout} s and was stopped") from None
    results = list(conv.iter_result_lines(proc.stdout))
    if proc.returncode == 0 and results and results[-1].get("ok"):
        return
    if results and not results[-1].get("ok"):
        err = results[-1].get("error", "unknown error")
        if results[-1].get("shape_error"):
            raise WeightError(err.split(": ", 1)[-1])
        raise GPT2LoadError(f"{what} failed: {err[:600]}. The files may be damaged: download them again "
                            "or import an intact copy.")
    if proc.returncode < 0:
        try:
            how = f"crashed ({signal.Signals(-proc.returncode).name})"
            if -proc.returncode == signal.SIGKILL:
                how += " -- killed, most likely for lack of memory"
        except ValueError:
            how = f"was killed by signal {-proc.returncode}"
    else:
        how = f"exited with code {proc.returncode}"
    tail = " | ".join(proc.stderr.strip().splitlines()[-3:])[-500:]
    raise GPT2LoadError(f"{what} {how}; the checkpoint is probably damaged: download it again or import an "
                        f"intact copy. Last output: {tail or '(none)'}")


def prepare_cache(source: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None,
                  timeout: float | None = None, verified: bool = False) -> Path:
    """Make sure a valid fast-loading cache exists for a release folder (or a transformers
    model.safetensors) and return its path. Converts once, under a lock, in a child process
    for TensorFlow checkpoints; a cache is rebuilt when its source files change.

    `verified`: the source folder's files are verified, and the cache must be one this
    program made from them (recorded as verified), never one that was merely found there."""
    src = Path(source)
    if src.is_file() and src.suffix == ".safetensors":
        return _prepare_hf_cache(src, cache_dir=cache_dir)
    hp = check_release_folder(src)
    fingerprint = source_fingerprint(src)
    candidates = cache_candidates(src, cache_dir)

    def usable(c: Path) -> bool:
        return valid_cache(c, fingerprint) and (not verified or is_verified(c))

    for c in candidates:
        if usable(c):
            return c
    target = next((c for c in candidates if writable_dir(c.parent) or not c.parent.exists()), candidates[-1])
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.with_name(f".{target.name}.lock"), what=f"converting {src}"):
        if usable(target):  # another process finished it while we waited
            return target
        for stale in target.parent.glob(f"{target.name}.tmp-*"):  # left by a killed process
            stale.unlink(missing_ok=True)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        try:
            spec = json.dumps({"hparams": hp, "source": fingerprint})
            _run_child([sys.executable, conv.__file__, str(src / "model.ckpt"), str(tmp), spec],
                       what=f"reading the TensorFlow checkpoint in {src}", timeout=timeout)
            if not valid_cache(tmp, fingerprint):
                raise GPT2LoadError(f"the converted cache {tmp} is incomplete (is the disk full?)")
            os.replace(tmp, target)
            if verified:
                record_verified(target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


# --- transformers' model.safetensors -------------------------------------------------------
_HF_HEADS = {768: 12, 1024: 16, 1280: 20, 1600: 25}


def _hf_hparams(path: Path, shapes: Mapping[str, Sequence[int]], cfg_file: Path | None) -> dict[str, int]:
    """From config.json when there is one, else from the tensor shapes (heads by width)."""
    if cfg_file is not None:
        try:
            c = json.loads(cfg_file.read_text(encoding="utf-8"))
            act = c.get("activation_function", "gelu_new")
            if act not in ("gelu_new", "gelu_pytorch_tanh"):
                raise GPT2LoadError(f"{cfg_file}: activation {act!r} is not GPT-2's tanh GELU")
            return conv.check_hparams({"n_vocab": c["vocab_size"], "n_ctx": c.get("n_positions", c.get("n_ctx")),
                                       "n_embd": c["n_embd"], "n_head": c["n_head"], "n_layer": c["n_layer"]},
                                      where=str(cfg_file))
        except (KeyError, ValueError) as e:
            raise GPT2LoadError(f"{cfg_file} is not a GPT-2 config.json ({e})") from None
    if "wte.weight" not in shapes or "wpe.weight" not in shapes:
        raise GPT2LoadError(f"{path} has no wte.weight/wpe.weight: not a GPT-2 model.safetensors")
    (V, d), (C, _) = shapes["wte.weight"], shapes["wpe.weight"]
    layers = {int(k.split(".")[1]) for k in shapes if k.startswith("h.") and k.split(".")[1].isdigit()}
    if d not in _HF_HEADS:
        raise GPT2LoadError(f"{path}: width {d} is not a released GPT-2 size, so the number of heads is "
                            "unknown; put its config.json next to it")
    return {"n_vocab": V, "n_ctx": C, "n_embd": d, "n_head": _HF_HEADS[d], "n_layer": len(layers)}


def _prepare_hf_cache(path: Path, *, cache_dir: str | os.PathLike | None = None,
                      target: Path | None = None, hparams: Mapping[str, int] | None = None) -> Path:
    """transformers GPT-2 safetensors -> our cache (in-process: safetensors parsing is safe)."""
    from safetensors import SafetensorError, safe_open

    st = path.stat()
    fingerprint = {"kind": "transformers", "file": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    candidates = [target] if target else cache_candidates(path.parent, cache_dir, stem=path.stem)
    for c in candidates:
        if valid_cache(c, fingerprint):
            return c
    out = target or next((c for c in candidates if writable_dir(c.parent)), candidates[-1])
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        f = safe_open(str(path), framework="pt")
    except (SafetensorError, OSError) as e:
        raise GPT2LoadError(f"{path} is not a readable safetensors file ({e})") from None
    prefix = "transformer." if any(k.startswith("transformer.") for k in f.keys()) else ""
    keys = {k.removeprefix(prefix): k for k in f.keys() if k.startswith(prefix) or k == "lm_head.weight"}
    shapes = {k: tuple(f.get_slice(full).get_shape()) for k, full in keys.items()}
    cfg_file = path.parent / "config.json"
    hp = dict(hparams) if hparams else _hf_hparams(path, shapes, cfg_file if cfg_file.is_file() else None)
    rows = conv.weight_rows(hp)
    conv.check_source_shapes(shapes, rows, kind="hf", what=str(path),
                             allow_extra=lambda n: n == "lm_head.weight" or n.endswith(_HF_IGNORED))
    if "lm_head.weight" in keys and not torch.equal(f.get_tensor(keys["lm_head.weight"]), f.get_tensor(keys["wte.weight"])):
        raise GPT2LoadError(f"{path}: lm_head.weight differs from wte.weight; GPT-2 ties them")
    with file_lock(out.with_name(f".{out.name}.lock"), what=f"converting {path}"):
        tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
        try:
            writer = conv.SafetensorsWriter(str(tmp), conv.cache_layout(hp), conv.cache_metadata(hp, fingerprint))
            conv.write_rows(writer, rows, lambda r: f.get_tensor(keys[r.hf]).to(torch.float32).numpy())
            writer.close()
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out


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
    if isinstance(source, str) and source in GPT2_MODEL_SIZES:  # a size; Path("124M") is a folder
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
        raise GPT2LoadError(f"{source} is neither a GPT-2 size ({', '.join(GPT2_MODEL_SIZES)}) nor an existing folder or file")
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
        hp = _hf_hparams(hf[0], _safetensors_shapes(hf[0]), config if config.is_file() else None)
        dest = root / (name or hparams_size_name(hp) or _no_name(hp))
        dest.mkdir(parents=True, exist_ok=True)
        _prepare_hf_cache(hf[0], target=dest / CACHE_NAME, hparams=hp)
        (dest / "hparams.json").write_text(json.dumps(hp))
        record_verified(dest / CACHE_NAME)  # importing is the operator's decision to trust it
        return dest
    hp = check_release_files(files, where=str(source) if not isinstance(source, (list, tuple)) else "the given files")
    dest = root / (name or hparams_size_name(hp) or _no_name(hp))
    dest.mkdir(parents=True, exist_ok=True)
    with file_lock(dest / ".download.lock", what=f"importing into {dest}"):
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


def _safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """{key without 'transformer.': shape} from a safetensors header (no tensor is read)."""
    header, _ = read_header(path)
    try:
        return {k.removeprefix("transformer."): tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (TypeError, KeyError):
        raise GPT2LoadError(f"{path} is not a safetensors file (bad header)") from None
