"""OpenAI GPT-2 weights in our GPTModel: checks, a crash-proof TensorFlow read, a mmap'd cache.

The first load of a release folder checks every file's size against hparams.json, then a
child process (gpt2_convert.py) reads the TensorFlow checkpoint one tensor at a time into
`gpt_core_weights.safetensors` beside it, already in our names and layouts. The model is
built without random init and its parameters become views of that file,
memory-mapped copy-on-write: one copy of the weights, shared page cache between processes
that load the same model, and later loads take a fraction of a second. TensorFlow is never
imported by this process on that path, and a TensorFlow crash is an error message.

The book's `load_gpt2_params_from_tf_ckpt` and `load_weights_into_gpt` are here too, with
the book's signatures, driven by the same name table.
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import gpt2_convert as conv
from .config import GPT2_SIZES, GPTConfig
from .download import (GPT2_MODEL_SIZES, ProgressFn, default_models_dir, download_gpt2, file_lock,
                       looks_like_markup)
from .gpt2_convert import GPT2LoadError, WeightError
from .model import GPTModel
from .tokenizers import GPT2Tokenizer

__all__ = ["GPT2LoadError", "WeightError", "load_gpt2", "import_gpt2", "prepare_cache", "default_models_dir",
           "config_from_hparams", "load_gpt2_params_from_tf_ckpt", "load_weights_into_gpt", "CACHE_NAME"]

CACHE_NAME = "gpt_core_weights.safetensors"
INDEX_FILE = "model.ckpt.index"
DATA_FILE = "model.ckpt.data-00000-of-00001"
REQUIRED_FILES = ("hparams.json", INDEX_FILE, DATA_FILE)
# LevelDB/TensorFlow table footer magic: the last 8 bytes of a whole .index file.
_TABLE_MAGIC = struct.pack("<Q", 0xDB4775248B80FB57)
_HF_IGNORED = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers some versions save


def config_from_hparams(hp: Mapping[str, Any], *, drop_rate: float = 0.1) -> GPTConfig:
    """hparams.json -> GPTConfig as the book builds it for GPT-2: qkv bias, tied head."""
    hp = conv.check_hparams(hp)
    return GPTConfig(vocab_size=hp["n_vocab"], context_length=hp["n_ctx"], emb_dim=hp["n_embd"],
                     n_heads=hp["n_head"], n_layers=hp["n_layer"], drop_rate=drop_rate,
                     qkv_bias=True, tie_weights=True)


def _hparams_size_name(hp: Mapping[str, int]) -> str | None:
    for size, cfg in GPT2_SIZES.items():
        if (cfg.vocab_size, cfg.context_length, cfg.emb_dim, cfg.n_heads, cfg.n_layers) == tuple(
                hp[k] for k in conv.HPARAMS_KEYS):
            return size
    return None


def _n_floats(hp: Mapping[str, int]) -> int:
    return sum(int(np.prod(r.shape)) for r in conv.weight_rows(hp))


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


def check_release_files(files: Mapping[str, Path], *, where: str = "the given files") -> dict[str, int]:
    """The same checks on {release file name: path}, e.g. uploaded files."""
    missing = [n for n in REQUIRED_FILES if n not in files]
    if missing:
        raise GPT2LoadError(f"{where} lacks {', '.join(missing)}; a GPT-2 release folder has hparams.json, "
                            f"{INDEX_FILE} and {DATA_FILE} (download it, or copy the release's 7 files there)")
    hp = read_hparams(files["hparams.json"])
    for name in (INDEX_FILE, DATA_FILE):
        with open(files[name], "rb") as f:
            if looks_like_markup(f.read(64)):
                raise GPT2LoadError(f"{files[name]} is an HTML/XML page (a server's error message), "
                                    "not part of the checkpoint; download it again")
    need = 4 * _n_floats(hp)
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


def _source_fingerprint(folder: Path) -> dict[str, Any]:
    """What the cache was made from: sizes and mtimes, and the hash of the small files."""
    fp: dict[str, Any] = {"kind": "tensorflow"}
    for name in REQUIRED_FILES:
        st = (folder / name).stat()
        fp[name] = [st.st_size, st.st_mtime_ns]
    for name in ("hparams.json", INDEX_FILE):
        fp[name].append(hashlib.sha256((folder / name).read_bytes()).hexdigest())
    return fp


# --- safetensors cache: header checks and zero-copy mapping ------------------------------
def _read_header(path: Path) -> tuple[dict[str, Any], int]:
    """(header, data start) of a safetensors file; GPT2LoadError if it is not one."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise GPT2LoadError(f"{path} is too short to be a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        size = os.fstat(f.fileno()).st_size
        if n > min(size - 8, 100 << 20):
            raise GPT2LoadError(f"{path} is not a safetensors file (header length {n:,})")
        try:
            header = json.loads(f.read(n))
        except ValueError:
            raise GPT2LoadError(f"{path} is not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise GPT2LoadError(f"{path} is not a safetensors file")
    return header, 8 + n


def _cache_hparams(path: Path, header: Mapping[str, Any], data_start: int) -> dict[str, int] | None:
    """hparams if `path` is a complete cache of ours whose layout matches them, else None."""
    meta = header.get("__metadata__") or {}
    if meta.get("format") != conv.CACHE_FORMAT or meta.get("version") != conv.CACHE_VERSION:
        return None
    try:
        hp = conv.check_hparams(json.loads(meta["hparams"]))
    except (KeyError, ValueError, TypeError):
        return None
    expected_header, data_bytes = conv.safetensors_header(conv.our_layout(hp), meta)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if data_start + data_bytes != path.stat().st_size or tensors != {
            k: v for k, v in json.loads(expected_header[8:]).items() if k != "__metadata__"}:
        return None
    return hp


def _valid_cache(path: Path, fingerprint: Mapping[str, Any] | None) -> bool:
    try:
        header, start = _read_header(path)
    except (OSError, GPT2LoadError):
        return False
    if _cache_hparams(path, header, start) is None:
        return False
    if fingerprint is None:
        return True
    try:
        return json.loads(header["__metadata__"]["source"]) == json.loads(json.dumps(fingerprint))
    except (KeyError, ValueError, TypeError):
        return False


def _user_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpt-playground" / "gpt2-cache"


def _cache_candidates(folder: Path, cache_dir: str | os.PathLike | None, stem: str = "") -> list[Path]:
    """Beside the source first; a per-user cache folder when that one is read-only."""
    key = hashlib.sha256(str(folder.resolve() / stem).encode()).hexdigest()[:16]
    fallback = Path(cache_dir or _user_cache_dir()) / f"{key}-{CACHE_NAME}"
    beside = folder / (f"{stem}.{CACHE_NAME}" if stem else CACHE_NAME)
    return [fallback] if cache_dir else [beside, fallback]


def _writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


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
                  timeout: float | None = None) -> Path:
    """Make sure a valid fast-loading cache exists for a release folder (or a transformers
    model.safetensors) and return its path. Converts once, under a lock, in a child process
    for TensorFlow checkpoints; a cache is rebuilt when its source files change."""
    src = Path(source)
    if src.is_file() and src.suffix == ".safetensors":
        return _prepare_hf_cache(src, cache_dir=cache_dir)
    hp = check_release_folder(src)
    fingerprint = _source_fingerprint(src)
    candidates = _cache_candidates(src, cache_dir)
    for c in candidates:
        if _valid_cache(c, fingerprint):
            return c
    target = next((c for c in candidates if _writable(c.parent) or not c.parent.exists()), candidates[-1])
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.with_name(f".{target.name}.lock"), what=f"converting {src}"):
        if _valid_cache(target, fingerprint):  # another process finished it while we waited
            return target
        for stale in target.parent.glob(f"{target.name}.tmp-*"):  # left by a killed process
            stale.unlink(missing_ok=True)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        try:
            spec = json.dumps({"hparams": hp, "source": fingerprint})
            _run_child([sys.executable, conv.__file__, str(src / "model.ckpt"), str(tmp), spec],
                       what=f"reading the TensorFlow checkpoint in {src}", timeout=timeout)
            if not _valid_cache(tmp, fingerprint):
                raise GPT2LoadError(f"the converted cache {tmp} is incomplete (is the disk full?)")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


class _SkipInit(TorchFunctionMode):
    """Skips random initialisation while a model is built whose weights are replaced right
    after. Tensors are then only allocated (untouched pages cost no memory). Thread-local, so
    a model built at the same time in another thread (another session) is unaffected."""

    _SKIP = {torch.Tensor.normal_, torch.Tensor.uniform_, nn.init.normal_, nn.init.uniform_,
             nn.init.kaiming_uniform_, nn.init.trunc_normal_, nn.init.xavier_uniform_}

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        if func in self._SKIP:  # the tensor comes back unchanged, as the in-place init would return it
            return args[0] if args else (kwargs or {}).get("tensor")
        return func(*args, **(kwargs or {}))


def _model_from_cache(path: Path, *, device: str | torch.device | None = None) -> tuple[GPTModel, GPTConfig]:
    """Build GPTModel without initialising it and make its parameters views of the mapped file.

    (Not the meta device: there, `normal_` and `triu` run torch's Python decompositions, whose
    first use imports the compiler stack -- seconds.)"""
    header, start = _read_header(path)
    hp = _cache_hparams(path, header, start)
    if hp is None:
        raise GPT2LoadError(f"{path} is not a complete GPT-2 weights cache of this program")
    cfg = config_from_hparams(hp)
    with open(path, "rb") as f:
        # Copy-on-write: pages are shared with the page cache (and other processes loading the
        # same file) until someone writes to a parameter, e.g. when fine-tuning.
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    with torch.device("cpu"), _SkipInit():
        model = GPTModel(cfg)  # allocated, never written: replaced below
    loaded = set()
    for name, shape in conv.our_layout(hp):
        s, e = header[name]["data_offsets"]
        tensor = torch.frombuffer(mm, dtype=torch.float32, count=(e - s) // 4, offset=start + s).view(shape)
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name)
        module._parameters[attr] = param = nn.Parameter(tensor)
        loaded.add(id(param))
    model.out_head.weight = model.tok_emb.weight  # GPT-2's tied head: the same Parameter
    # The causal mask buffer only mirrors the book's state dict; one tensor serves every block.
    mask = torch.triu(torch.ones(cfg.context_length, cfg.context_length, dtype=torch.bool), diagonal=1)
    for block in model.trf_blocks:
        block.att.register_buffer("mask", mask)
    left = [n for n, p in model.named_parameters() if id(p) not in loaded]
    if left:  # never leave uninitialised memory in a model
        raise GPT2LoadError(f"internal error: {', '.join(left[:3])} not loaded")
    if device is not None and torch.device(device).type != "cpu":
        model.to(device)
    return model.eval(), cfg


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
    candidates = [target] if target else _cache_candidates(path.parent, cache_dir, stem=path.stem)
    for c in candidates:
        if _valid_cache(c, fingerprint):
            return c
    out = target or next((c for c in candidates if _writable(c.parent)), candidates[-1])
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
            writer = conv.SafetensorsWriter(str(tmp), conv.our_layout(hp), conv.cache_metadata(hp, fingerprint))
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
    if _valid_cache(folder / CACHE_NAME, None):
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
    `model.safetensors`, or a cache file written by this module."""
    src = Path(source)
    if str(source) in GPT2_MODEL_SIZES and not src.exists():
        folder = Path(models_dir or default_models_dir()) / str(source)
        found = _locate(folder) if folder.is_dir() else None
        if found is None or (found == folder and not _release_complete(folder)):
            if not download:
                raise GPT2LoadError(f"GPT-2 {source} is not in {folder}; download it (python -m gpt_core download "
                                    f"{source}) or import a folder that has it (python -m gpt_core import FOLDER)")
            download_gpt2(str(source), folder.parent, progress=progress)
            found = folder
        src = found
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
        header, start = _read_header(src)
        cache = src if _cache_hparams(src, header, start) is not None else prepare_cache(src, cache_dir=cache_dir)
    else:
        cache = prepare_cache(src, cache_dir=cache_dir, timeout=timeout)
    model, cfg = _model_from_cache(cache, device=device)
    tok_thread.join()
    return model, cfg, tokenizer[0] if tokenizer else GPT2Tokenizer()


def _release_complete(folder: Path) -> bool:
    try:
        check_release_folder(folder)
        return True
    except GPT2LoadError:
        return False


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
        dest = root / (name or _hparams_size_name(hp) or _no_name(hp))
        dest.mkdir(parents=True, exist_ok=True)
        _prepare_hf_cache(hf[0], target=dest / CACHE_NAME, hparams=hp)
        (dest / "hparams.json").write_text(json.dumps(hp))
        return dest
    hp = check_release_files(files, where=str(source) if not isinstance(source, (list, tuple)) else "the given files")
    dest = root / (name or _hparams_size_name(hp) or _no_name(hp))
    dest.mkdir(parents=True, exist_ok=True)
    with file_lock(dest / ".download.lock", what=f"importing into {dest}"):
        for n in ("checkpoint", "encoder.json", "hparams.json", INDEX_FILE, "model.ckpt.meta", "vocab.bpe", DATA_FILE):
            if n in files:
                _copy_atomic(files[n], dest / n)
        # A folder converted before brings its cache along (still valid: same sizes and mtimes).
        if CACHE_NAME in files and _valid_cache(files[CACHE_NAME], _source_fingerprint(dest)):
            _copy_atomic(files[CACHE_NAME], dest / CACHE_NAME)
    prepare_cache(dest)
    return dest


def _no_name(hp: Mapping[str, int]) -> str:
    raise GPT2LoadError(f"these hparams ({json.dumps(dict(hp))}) match no released GPT-2 size; pass a name")


def _safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """{key without 'transformer.': shape} from a safetensors header (no tensor is read)."""
    header, _ = _read_header(path)
    try:
        return {k.removeprefix("transformer."): tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (TypeError, KeyError):
        raise GPT2LoadError(f"{path} is not a safetensors file (bad header)") from None


# --- the book's functions, table-driven ----------------------------------------------------
def _prefix(ckpt_path: str | os.PathLike) -> Path:
    p = Path(ckpt_path)
    return p / "model.ckpt" if p.is_dir() else p


def load_gpt2_params_from_tf_ckpt(ckpt_path: str | os.PathLike, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The book's params dict ({"wte", "wpe", "g", "b", "blocks": [...]}, numpy float32) read
    with TensorFlow in this process, every tensor's shape checked first. `ckpt_path` is the
    prefix (".../124M/model.ckpt", as tf.train.latest_checkpoint gives) or the folder.
    Holds the whole model in memory: `load_gpt2` is the lean path."""
    prefix = _prefix(ckpt_path)
    try:
        hp = conv.check_hparams(settings, where="settings")
    except ValueError as e:
        raise GPT2LoadError(str(e)) from None
    folder_hp = check_release_folder(prefix.parent)
    if folder_hp != hp:
        raise GPT2LoadError(f"settings {hp} differ from {prefix.parent / 'hparams.json'} {folder_hp}")
    reader = conv.open_tf_checkpoint(str(prefix))
    rows = conv.weight_rows(hp)
    conv.check_source_shapes(conv.tf_variable_shapes(reader), rows, kind="tf", what=str(prefix))
    params: dict[str, Any] = {"blocks": [{} for _ in range(hp["n_layer"])]}
    for row in rows:
        *path, last = row.book
        d = params
        for key in path:
            d = d[key] if isinstance(key, int) else d.setdefault(key, {})
        d[last] = conv.read_tf_row(reader, row)
    return params


def _book_get(params: Mapping[str, Any], row: conv.Row) -> np.ndarray:
    node: Any = params
    try:
        for key in row.book:
            node = node[key]
    except (KeyError, IndexError, TypeError):
        raise WeightError(f"params has no {row.book_name} (OpenAI's {row.tf})") from None
    if isinstance(node, torch.Tensor):
        node = node.detach().cpu().numpy()
    array = np.asarray(node)
    if tuple(array.shape) != row.shape:
        raise WeightError(f"params {row.book_name} ({row.tf}) has shape "
                          f"{list(array.shape)} but the model needs {list(row.shape)}")
    return array


def load_weights_into_gpt(gpt: nn.Module, params: Mapping[str, Any]) -> None:
    """Copy the book's GPT-2 `params` into `gpt` (ours or the book's GPTModel), in place.

    Every tensor's shape is checked before anything is written, so on error the model is
    unchanged. A tied head stays tied; an untied one gets `wte` as the book does."""
    V, d = gpt.tok_emb.weight.shape
    hp = {"n_vocab": V, "n_ctx": gpt.pos_emb.weight.shape[0], "n_embd": d, "n_head": 1, "n_layer": len(gpt.trf_blocks)}
    blocks = params.get("blocks") if isinstance(params, Mapping) else None
    if not isinstance(blocks, Sequence) or len(blocks) != hp["n_layer"]:
        n = len(blocks) if isinstance(blocks, Sequence) else "no"
        raise WeightError(f"params has {n} blocks but the model has {hp['n_layer']} layers")
    plan: list[tuple[nn.Module, str, torch.Tensor | np.ndarray]] = []
    for row in conv.weight_rows(hp):
        array = _book_get(params, row)
        for t in row.targets:
            module_name, _, attr = t.name.rpartition(".")
            module = gpt.get_submodule(module_name)
            current = getattr(module, attr, None)
            if current is None:
                raise WeightError(f"the model has no {t.name}: GPT-2 needs qkv_bias=True")
            if tuple(current.shape) != conv.target_shape(row, t):
                raise WeightError(f"model parameter {t.name} has shape {list(current.shape)}, GPT-2's "
                                  f"{row.tf} gives {list(conv.target_shape(row, t))}")
            plan.append((module, attr, conv.apply_target(row, t, array)))
    if gpt.out_head.weight is not gpt.tok_emb.weight:
        if tuple(gpt.out_head.weight.shape) != (V, d):
            raise WeightError(f"out_head.weight has shape {list(gpt.out_head.weight.shape)}, expected {[V, d]}")
        plan.append((gpt.out_head, "weight", plan[0][2]))
    with torch.no_grad():
        for module, attr, array in plan:
            src = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
            param = getattr(module, attr)
            if param.is_meta:
                setattr(module, attr, nn.Parameter(src.clone()))
            else:
                param.copy_(src)
    if gpt.out_head.weight is not gpt.tok_emb.weight and getattr(getattr(gpt, "cfg", None), "tie_weights", False):
        gpt.out_head.weight = gpt.tok_emb.weight
