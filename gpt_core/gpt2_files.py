"""GPT-2 weights on disk: release-folder checks made before TensorFlow reads anything, and the
safetensors cache -- its validation and the zero-copy mapping of it into a GPTModel."""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import gpt2_convert as conv
from .config import GPT2_SIZES, GPTConfig
from .download import looks_like_markup
from .gpt2_convert import GPT2LoadError
from .model import GPTModel

CACHE_NAME = "gpt_core_weights.safetensors"
INDEX_FILE = "model.ckpt.index"
DATA_FILE = "model.ckpt.data-00000-of-00001"
REQUIRED_FILES = ("hparams.json", INDEX_FILE, DATA_FILE)
# LevelDB/TensorFlow table footer magic: the last 8 bytes of a whole .index file.
_TABLE_MAGIC = struct.pack("<Q", 0xDB4775248B80FB57)


def config_from_hparams(hp: Mapping[str, Any], *, drop_rate: float = 0.1) -> GPTConfig:
    """hparams.json -> GPTConfig as the book builds it for GPT-2: qkv bias, tied head."""
    hp = conv.check_hparams(hp)
    return GPTConfig(vocab_size=hp["n_vocab"], context_length=hp["n_ctx"], emb_dim=hp["n_embd"],
                     n_heads=hp["n_head"], n_layers=hp["n_layer"], drop_rate=drop_rate,
                     qkv_bias=True, tie_weights=True)


def hparams_size_name(hp: Mapping[str, int]) -> str | None:
    for size, cfg in GPT2_SIZES.items():
        if (cfg.vocab_size, cfg.context_length, cfg.emb_dim, cfg.n_heads, cfg.n_layers) == tuple(
                hp[k] for k in conv.HPARAMS_KEYS):
            return size
    return None


def n_floats(hp: Mapping[str, int]) -> int:
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


# --- safetensors cache: header checks and zero-copy mapping ------------------------------
def read_header(path: Path) -> tuple[dict[str, Any], int]:
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


def cache_hparams(path: Path, header: Mapping[str, Any], data_start: int) -> dict[str, int] | None:
    """hparams if `path` is a complete cache of ours whose layout matches them, else None."""
    meta = header.get("__metadata__") or {}
    if meta.get("format") != conv.CACHE_FORMAT or meta.get("version") != conv.CACHE_VERSION:
        return None
    try:
        hp = conv.check_hparams(json.loads(meta["hparams"]))
    except (KeyError, ValueError, TypeError):
        return None
    expected_header, data_bytes = conv.safetensors_header(conv.cache_layout(hp), meta)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if data_start + data_bytes != path.stat().st_size or tensors != {
            k: v for k, v in json.loads(expected_header[8:]).items() if k != "__metadata__"}:
        return None
    return hp


def valid_cache(path: Path, fingerprint: Mapping[str, Any] | None) -> bool:
    try:
        header, start = read_header(path)
    except (OSError, GPT2LoadError):
        return False
    if cache_hparams(path, header, start) is None:
        return False
    if fingerprint is None:
        return True
    try:
        return json.loads(header["__metadata__"]["source"]) == json.loads(json.dumps(fingerprint))
    except (KeyError, ValueError, TypeError):
        return False


def user_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpt-playground" / "gpt2-cache"


def cache_candidates(folder: Path, cache_dir: str | os.PathLike | None, stem: str = "") -> list[Path]:
    """Beside the source first; a per-user cache folder when that one is read-only."""
    key = hashlib.sha256(str(folder.resolve() / stem).encode()).hexdigest()[:16]
    fallback = Path(cache_dir or user_cache_dir()) / f"{key}-{CACHE_NAME}"
    beside = folder / (f"{stem}.{CACHE_NAME}" if stem else CACHE_NAME)
    return [fallback] if cache_dir else [beside, fallback]


def writable_dir(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


class SkipInit(TorchFunctionMode):
    """Skips random initialisation while a model is built whose weights are replaced right
    after. Tensors are then only allocated (untouched pages cost no memory). Thread-local, so
    a model built at the same time in another thread (another session) is unaffected."""

    _SKIP = {torch.Tensor.normal_, torch.Tensor.uniform_, nn.init.normal_, nn.init.uniform_,
             nn.init.kaiming_uniform_, nn.init.trunc_normal_, nn.init.xavier_uniform_}

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        if func in self._SKIP:  # the tensor comes back unchanged, as the in-place init would return it
            return args[0] if args else (kwargs or {}).get("tensor")
        return func(*args, **(kwargs or {}))


def model_from_cache(path: Path, *, device: str | torch.device | None = None) -> tuple[GPTModel, GPTConfig]:
    """Build GPTModel without initialising it and make its parameters views of the mapped file.

    (Not the meta device: there, `normal_` and `triu` run torch's Python decompositions, whose
    first use imports the compiler stack -- seconds.)"""
    header, start = read_header(path)
    hp = cache_hparams(path, header, start)
    if hp is None:
        raise GPT2LoadError(f"{path} is not a complete GPT-2 weights cache of this program")
    cfg = config_from_hparams(hp)
    with open(path, "rb") as f:
        # Copy-on-write: pages are shared with the page cache (and other processes loading the
        # same file) until someone writes to a parameter, e.g. when fine-tuning.
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    with torch.device("cpu"), SkipInit():
        model = GPTModel(cfg)  # allocated, never written: replaced below
    loaded = set()
    input_major = conv.input_major_names(hp)
    for name, shape in conv.cache_layout(hp):
        s, e = header[name]["data_offsets"]
        tensor = torch.frombuffer(mm, dtype=torch.float32, count=(e - s) // 4, offset=start + s).view(shape)
        if name in input_major:  # stored [in, out]: the parameter is its [out, in] view
            tensor = tensor.t()
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
