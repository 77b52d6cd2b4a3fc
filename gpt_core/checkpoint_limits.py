"""What a checkpoint file must pass before anything is built for it (DESIGN decision 5).

`checkpoint.read_checkpoint` and `load_model` call these: the zip's directory against
`CheckpointLimits` first (how many members, how far they expand, how much pickle), then
`torch.load(weights_only=True, mmap=True)` so stored tensors are mapped rather than copied,
then what the model config claims (context, blocks, parameters, memory) and every tensor's
shape against that model built on the meta device. Messages name the file, never its folder.
"""
from __future__ import annotations

import functools
import gc
import os
import pickle
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from .config import GPTConfig
from .model import ModelConfig, build_model
from .units import MB, format_bytes


class CheckpointError(ValueError):
    """The file is not a checkpoint we can use; the message says why."""


# --- limits -----------------------------------------------------------------------------------
# No checkpoint of ours or the book's holds more than a few thousand arrays (GPT-2 1558M with
# its AdamW state: ~2,300); the zip's directory of a file with millions would itself take GBs.
MAX_ZIP_MEMBERS = 100_000
# torch.save never compresses. A re-zipped file of zeros deflates ~1000:1: past this ratio a
# member of a MB or more is a decompression bomb, not a checkpoint.
MAX_COMPRESSION_RATIO = 100


@dataclass(frozen=True)
class CheckpointLimits:
    """What a checkpoint may claim, checked before anything is allocated for it (None: no limit).

    max_parameters, max_context_length: the model it describes (its stored config, or the one
        read off its shapes), checked before that model is built.
    max_tensor_bytes: the file's contents once expanded (tensors, optimizer state, all of it),
        and the memory the model it describes would take; checked from the zip's directory
        before anything is read.
    max_pickle_bytes: the pickle that names the tensors; unpickling costs several times its
        size in Python objects (a legitimate one is a few hundred KB).
    """
    max_parameters: int | None = None
    max_context_length: int | None = None
    max_tensor_bytes: int | None = None
    max_pickle_bytes: int | None = None
    # A config within the parameter limit can still claim tens of thousands of tiny layers,
    # each a Python module to build.
    max_layers: int | None = None

    @classmethod
    def for_models_up_to(cls, max_parameters: int, *, max_context_length: int | None = None,
                         max_layers: int | None = None) -> "CheckpointLimits":
        """The limits that fit a checkpoint of a model with up to `max_parameters`: float32
        weights plus AdamW's two moments (12 bytes a parameter), rounded up to 16 for the
        attention masks (the book stores them as float32) and the run's state, plus 256 MB."""
        return cls(max_parameters=max_parameters, max_context_length=max_context_length,
                   max_tensor_bytes=16 * max_parameters + 256 * MB, max_pickle_bytes=16 * MB,
                   max_layers=max_layers)


NO_LIMITS = CheckpointLimits()


def released_on_refusal(fn):
    """A refused file must not stay in memory. The exception's traceback holds the frames that
    hold what was read (tensors, a pickle's objects) for as long as the caller keeps it, so
    drop the traceback and its chained errors, and collect now."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CheckpointError as e:
            error = e
        error.__traceback__, error.__context__, error.__cause__ = None, None, None
        gc.collect()
        raise error
    return wrapper


_EOCD = struct.Struct("<4s4H2LH")  # end of central directory: signature ... entries, size, offset
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")


def _zip_member_count(path: Path) -> int | None:
    """How many members the zip's directory lists, read from its last record (zip64 too)
    before `zipfile` builds an object for each; None when the file has no such record."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        tail_len = min(size, _EOCD.size + 0xFFFF + _ZIP64_LOCATOR.size)  # the comment is <= 64 KB
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < _EOCD.size:
            return None
        entries = _EOCD.unpack_from(tail, at)[4]
        if entries != 0xFFFF or at < _ZIP64_LOCATOR.size:
            return entries
        sig, _, zip64_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, at - _ZIP64_LOCATOR.size)
        if sig != b"PK\x06\x07" or zip64_offset + _ZIP64_EOCD.size > size:
            return entries
        f.seek(zip64_offset)
        record = f.read(_ZIP64_EOCD.size)
        return _ZIP64_EOCD.unpack(record)[7] if record[:4] == b"PK\x06\x06" else entries


def _check_archive(path: Path, limits: CheckpointLimits) -> bool:
    """Check the zip's directory against `limits` before any member is read. Returns whether
    every member is stored uncompressed (then its tensors can be memory-mapped)."""
    name = path.name
    not_ours = (f"{name} is truncated or not a PyTorch checkpoint: it is not the zip archive "
                f"torch.save writes (since PyTorch 1.6), and older or other formats are not read")
    count = _zip_member_count(path)
    if count is None:
        raise CheckpointError(not_ours)
    if count > MAX_ZIP_MEMBERS:
        raise CheckpointError(f"{name} lists {count:,} files inside it; a checkpoint has at most a few "
                              f"thousand (the limit is {MAX_ZIP_MEMBERS:,})")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError, struct.error):
        raise CheckpointError(not_ours) from None
    expanded = sum(m.file_size for m in members)
    if limits.max_tensor_bytes is not None and expanded > limits.max_tensor_bytes:
        raise CheckpointError(f"{name} expands to {format_bytes(expanded)} when read, more than the "
                              f"{format_bytes(limits.max_tensor_bytes)} allowed here for a checkpoint")
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if limits.max_tensor_bytes is not None and m.file_size >= MB and ratio > MAX_COMPRESSION_RATIO:
            raise CheckpointError(f"{name} holds a member compressed {ratio:,.0f} to 1 "
                                  f"({format_bytes(m.compress_size)} expanding to {format_bytes(m.file_size)}), "
                                  f"which torch.save never writes; it is refused")
        if (limits.max_pickle_bytes is not None and m.filename.endswith("/data.pkl")
                and m.file_size > limits.max_pickle_bytes):
            raise CheckpointError(f"{name} describes its tensors in {format_bytes(m.file_size)} of pickle, "
                                  f"more than the {format_bytes(limits.max_pickle_bytes)} allowed here")
    return all(m.compress_type == zipfile.ZIP_STORED for m in members)


def torch_load_checked(path: Path, limits: CheckpointLimits) -> tuple[Any, bool]:
    """The unpickled contents, and whether their tensors are mapped from the file."""
    name = path.name
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file named {name}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{name} is empty (0 bytes): not a checkpoint")
    # Stored members are memory-mapped: reading the file copies nothing until a tensor is
    # used, so a refused file costs no memory. Compressed ones (never torch.save's own) are
    # inflated, which `_check_archive` has bounded.
    mmap = _check_archive(path, limits)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap), mmap
    except pickle.UnpicklingError as e:
        msg = str(e)
        if re.search(r"GLOBAL|Can only (create|build)|reduce", msg):  # an object, not data
            found = re.search(r"GLOBAL (\S+)", msg)
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(
                f"{name} contains pickled Python objects{what}, which could run code when "
                f"loaded; it is refused. Only tensors, numbers, strings, lists and dicts are "
                f"accepted (save model.state_dict(), not the model)") from None
        raise CheckpointError(f"{name} is truncated or not a PyTorch checkpoint "
                              f"(its contents could not be read as one)") from None
    except Exception as e:  # garbage bytes fail anywhere in the unpickler (struct.error, ...)
        detail = str(e).replace(str(path), name).replace(str(path.parent), "")
        raise CheckpointError(f"{name} is truncated or not a PyTorch checkpoint "
                              f"({type(e).__name__}: {detail[:120]})") from None


def _model_bytes(config: ModelConfig) -> int:
    """What building `config` allocates: float32 parameters, and a GPT's causal masks
    (context x context booleans a layer), which no parameter count includes."""
    masks = config.n_layers * config.context_length ** 2 if isinstance(config, GPTConfig) else 0
    return config.num_parameters() * 4 + masks


def block_indices(state_dict: Mapping[str, torch.Tensor]) -> set[int]:
    return {int(m.group(1)) for k in state_dict if (m := re.match(r"trf_blocks\.(\d+)\.", k))}


def check_claims(config: ModelConfig, state_dict: Mapping[str, torch.Tensor], *,
                 limits: CheckpointLimits = NO_LIMITS, name: str = "the checkpoint") -> None:
    """What a config claims, checked against `limits` and against the transformer blocks the
    state dict holds, from numbers alone: nothing is built (a claimed 45,000-token context
    costs nothing here and 4 GB of masks in a real model)."""
    if limits.max_context_length is not None and config.context_length > limits.max_context_length:
        raise CheckpointError(f"{name} is for a model with a context of {config.context_length:,} tokens; "
                              f"the limit here is {limits.max_context_length:,}")
    layers = getattr(config, "n_layers", 0)
    if limits.max_layers is not None and layers > limits.max_layers:
        raise CheckpointError(f"{name} is for a model with {layers:,} transformer blocks; the limit here "
                              f"is {limits.max_layers:,}")
    n = config.num_parameters()
    if limits.max_parameters is not None and n > limits.max_parameters:
        raise CheckpointError(f"{name} is for a model with {n / 1e6:,.1f}M parameters; the limit here "
                              f"is {limits.max_parameters / 1e6:,.1f}M")
    if limits.max_tensor_bytes is not None and _model_bytes(config) > limits.max_tensor_bytes:
        raise CheckpointError(f"{name} is for a model that would take {format_bytes(_model_bytes(config))} "
                              f"of memory, more than the {format_bytes(limits.max_tensor_bytes)} allowed here")
    if isinstance(config, GPTConfig):  # before a model of n_layers blocks is built, even on meta
        present, needed = block_indices(state_dict), set(range(config.n_layers))
        if present - needed:
            raise CheckpointError(f"{name} has tensors of trf_blocks.{min(present - needed)} that the model "
                                  f"does not ({len(present)} transformer blocks; the model has {config.n_layers})")
        if needed - present:
            raise CheckpointError(f"{name} has no tensors of trf_blocks.{min(needed - present)} that the model "
                                  f"needs ({len(present)} transformer blocks; the model has {config.n_layers})")


def expected_shapes(config: ModelConfig) -> dict[str, torch.Size]:
    """Every tensor of a model of `config`, by name: built on the meta device, which allocates
    no memory and draws no random numbers."""
    with torch.device("meta"):
        model = build_model(config)
    return {name: tensor.shape for name, tensor in model.state_dict().items()}


def check_shapes(expected: Mapping[str, torch.Size], state_dict: Mapping[str, torch.Tensor], *,
                  tied: bool) -> None:
    for name, shape in expected.items():
        if name not in state_dict:
            if tied and name == "out_head.weight":
                continue
            raise CheckpointError(f"the checkpoint has no tensor {name!r} that the model needs "
                                  f"(it was saved from a different model)")
        got = tuple(state_dict[name].shape)
        if got != tuple(shape):
            raise CheckpointError(
                f"tensor {name!r} has shape {got} in the checkpoint but {tuple(shape)} in "
                f"the model: the checkpoint belongs to a model of another size")
    extra = [k for k in state_dict if k not in expected]
    if extra:
        raise CheckpointError(f"the checkpoint has tensors this model does not: {', '.join(extra[:5])}")


def check_fits(config: ModelConfig, state_dict: Mapping[str, torch.Tensor], *,
               limits: CheckpointLimits = NO_LIMITS, name: str = "the checkpoint") -> None:
    """Everything a model of `config` would need from `state_dict`, checked before it is built:
    the claims against `limits`, then every tensor's name and shape."""
    check_claims(config, state_dict, limits=limits, name=name)
    check_shapes(expected_shapes(config), state_dict, tied=bool(getattr(config, "tie_weights", False)))
