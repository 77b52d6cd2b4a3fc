"""The fast-loading cache of GPT-2 weights: a safetensors file in our names and layouts,
made once -- by a TensorFlow child process (convert.py) from a release folder, or in process
from a transformers model.safetensors -- and memory-mapped copy-on-write into a GPTModel
whose parameters are views of it (no copy, no random init)."""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..config import GPTConfig
from ..user_cache import user_cache_root
from ..model import GPTModel
from . import convert as conv
from .convert import GPT2LoadError, WeightError
from .verified import file_lock, is_verified, record_verified
from .release import check_release_folder, config_from_hparams, heads_by_width, source_fingerprint

CACHE_NAME = "gpt_core_weights.safetensors"
_HF_IGNORED = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers some versions save


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
    return user_cache_root() / "gpt2-cache"


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


# --- making the cache ---------------------------------------------------------------------
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
        return prepare_hf_cache(src, cache_dir=cache_dir)
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
def hf_hparams(path: Path, shapes: Mapping[str, Sequence[int]], cfg_file: Path | None) -> dict[str, int]:
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
    heads = heads_by_width()
    if d not in heads:
        raise GPT2LoadError(f"{path}: width {d} is not a released GPT-2 size, so the number of heads is "
                            "unknown; put its config.json next to it")
    return {"n_vocab": V, "n_ctx": C, "n_embd": d, "n_head": heads[d], "n_layer": len(layers)}


def prepare_hf_cache(path: Path, *, cache_dir: str | os.PathLike | None = None,
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
    hp = dict(hparams) if hparams else hf_hparams(path, shapes, cfg_file if cfg_file.is_file() else None)
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


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """{key without 'transformer.': shape} from a safetensors header (no tensor is read)."""
    header, _ = read_header(path)
    try:
        return {k.removeprefix("transformer."): tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (TypeError, KeyError):
        raise GPT2LoadError(f"{path} is not a safetensors file (bad header)") from None
