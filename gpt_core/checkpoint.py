"""Save, load and inspect checkpoints (DESIGN decisions 5 and 6).

A checkpoint is a `torch.save`d dict. The book's keys come first, so the book's code reads
our files (`model.load_state_dict(ckpt["model_state_dict"])`):

    model_state_dict      the model's state dict (a tied head is stored under both names)
    optimizer_state_dict  AdamW's state dict, or absent
    format_version        1
    model_config          GPTConfig.to_dict() (the book's dict plus tie_weights), or None;
                          the bigram baseline's BigramConfig.to_dict() (model_type "bigram")
    tokenizer             tokenizer.to_dict(), e.g. {"type": "gpt2"}, or None
    train_config          TrainConfig.to_dict(), or None
    trainer_state         TrainState.to_dict(): step, epoch, position in the epoch, tokens
                          seen, loss history, best validation loss, and the timeline (a
                          greedy sample and next-token candidates per evaluation, timeline.py;
                          absent in older files, which load with an empty one)
    scheduler             {"type": lr_schedule, "step": next optimizer step}: the learning rate
                          is a pure function of the step (schedule.lr_at)
    schedule_state        the batch schedule's state (the epoch's shuffle generator states)
    rng                   torch CPU/CUDA, Python, NumPy and generator states (rng.py)
    rng_per_rank          under torchrun: every rank's `rng`

Files are read with `torch.load(weights_only=True)` and nothing else, ever: a file holding
pickled Python objects is refused, not executed. The book's bare `model.pth` (a state dict)
and `model_and_optimizer.pth` load too; their GPTConfig is read off the tensor shapes.

Nothing is allocated for a file before it is checked (`CheckpointLimits`): its zip directory
first (how far its members expand), then, with its tensors memory-mapped rather than read,
the model its config claims, then every tensor's shape against that model built on the meta
device (checkpoint_limits.py). Only then is a real model built. Messages name the file,
never its folder.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .bigram import BigramConfig
from .checkpoint_limits import (NO_LIMITS, CheckpointError, CheckpointLimits, block_indices, check_fits, check_shapes,
                                released_on_refusal, torch_load_checked)
from .config import GPTConfig, TrainConfig
from .model import GPTModel, build_model, config_from_dict, load_book_state_dict
from .timeline import check_timeline

FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """What a checkpoint file holds, checked but not yet put into a model."""
    path: str
    kind: str  # "gpt_core", "book_model_and_optimizer" or "state_dict" (the book's model.pth)
    format_version: int | None
    model_state_dict: dict[str, torch.Tensor]
    optimizer_state_dict: dict[str, Any] | None
    model_config: GPTConfig | None
    config_inferred: bool  # True when read off the tensor shapes
    tokenizer_dict: dict[str, Any] | None
    train_config: TrainConfig | None
    trainer_state: dict[str, Any] | None
    schedule_state: dict[str, Any] | None
    rng: dict[str, Any] | None
    rng_per_rank: list[dict[str, Any]] | None

    def tokenizer(self):
        from .tokenizers import tokenizer_from_dict
        return None if self.tokenizer_dict is None else tokenizer_from_dict(self.tokenizer_dict)


# --- saving -----------------------------------------------------------------------------------
def _tokenizer_dict(tokenizer) -> dict[str, Any] | None:
    if tokenizer is None:
        return None
    if hasattr(tokenizer, "to_dict"):
        return tokenizer.to_dict()
    if getattr(tokenizer, "name", None) == "gpt2":  # the book's tiktoken Encoding
        return {"type": "gpt2"}
    return None


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`:
    a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    return path


def save_checkpoint(path: str | Path, *, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    model_config: GPTConfig | None = None, tokenizer=None,
                    train_config: TrainConfig | None = None, trainer_state: Mapping[str, Any] | None = None,
                    schedule_state: Mapping[str, Any] | None = None, rng: Mapping[str, Any] | None = None,
                    rng_per_rank: list | None = None) -> Path:
    """Write a checkpoint atomically; returns its path."""
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    if model_config is None:
        model_config = getattr(model, "cfg", None)
    step = int(trainer_state["step"]) + 1 if trainer_state else 0
    payload: dict[str, Any] = {
        "model_state_dict": model.state_dict(),
        "format_version": FORMAT_VERSION,
        "model_config": model_config.to_dict() if isinstance(model_config, (GPTConfig, BigramConfig)) else None,
        "tokenizer": _tokenizer_dict(tokenizer),
        "train_config": train_config.to_dict() if train_config is not None else None,
        "trainer_state": dict(trainer_state) if trainer_state is not None else None,
        "scheduler": {"type": train_config.lr_schedule if train_config else "constant", "step": step},
        "schedule_state": dict(schedule_state) if schedule_state is not None else None,
        "rng": dict(rng) if rng is not None else None,
        "rng_per_rank": rng_per_rank,
        "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "torch_version": str(torch.__version__),
    }
    if optimizer is not None:
        payload["optimizer_state_dict"] = optimizer.state_dict()
    return atomic_torch_save(payload, path)


# --- reading ----------------------------------------------------------------------------------
def _owned(obj: Any) -> Any:
    """`obj` with every tensor copied out of the memory-mapped file: what outlives the load
    (an optimizer adopts its state tensors as given) must not keep the file mapped."""
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, dict):
        return {k: _owned(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_owned(v) for v in obj)
    return obj


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def _strip_prefixes(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # DistributedDataParallel saves "module.", torch.compile "_orig_mod.".
    sd = dict(sd)
    for prefix in ("module.", "_orig_mod."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def infer_config(state_dict: Mapping[str, torch.Tensor], *, n_heads: int | None = None,
                 drop_rate: float = 0.1) -> GPTConfig:
    """The GPTConfig a state dict was made with, read off its shapes. The number of heads
    leaves no trace in the shapes: GPT-2's 64-wide heads are assumed unless given."""
    try:
        vocab_size, emb_dim = state_dict["tok_emb.weight"].shape
        context_length = state_dict["pos_emb.weight"].shape[0]
    except (KeyError, ValueError):
        raise CheckpointError("this state dict is not a GPT model's: it has no tok_emb.weight / "
                              "pos_emb.weight of the book's GPTModel") from None
    layers = block_indices(state_dict)
    if n_heads is None:
        n_heads = emb_dim // 64 if emb_dim % 64 == 0 else 1
    try:
        return GPTConfig(vocab_size=int(vocab_size), context_length=int(context_length), emb_dim=int(emb_dim),
                         n_heads=n_heads, n_layers=len(layers), drop_rate=drop_rate,
                         qkv_bias="trf_blocks.0.att.W_query.bias" in state_dict,
                         tie_weights="out_head.weight" not in state_dict)
    except ValueError as e:
        raise CheckpointError(f"cannot build a model for this state dict: {e}") from None


@released_on_refusal
def read_checkpoint(path: str | Path, *, n_heads: int | None = None,
                    limits: CheckpointLimits | None = None) -> Checkpoint:
    """Read and check a checkpoint file (ours, or the book's) without building a model.

    Its zip directory is checked against `limits` before anything is read, its tensors are
    memory-mapped, and its model config (stored, or read off the shapes) and every tensor's
    shape are checked before anything is built. A refused file's memory is released at once."""
    path = Path(path)
    name = path.name
    limits = limits or NO_LIMITS
    obj, mapped = torch_load_checked(path, limits)
    fields: dict[str, Any] = {}
    if isinstance(obj, Mapping) and "model_state_dict" in obj:
        version = obj.get("format_version")
        if version is None:
            kind = "book_model_and_optimizer"
        elif isinstance(version, int) and 1 <= version <= FORMAT_VERSION:
            kind = "gpt_core"
        else:
            raise CheckpointError(f"{name} has checkpoint format {version!r}; this program reads "
                                  f"format {FORMAT_VERSION} (and the book's files)")
        sd = obj["model_state_dict"]
        fields = {k: v for k, v in obj.items() if k != "model_state_dict"}
        if mapped:  # the model's tensors are copied into a model; the rest is adopted as is
            fields = _owned(fields)
    elif _is_state_dict(obj):
        kind, version, sd = "state_dict", None, obj
    else:
        keys = ", ".join(map(str, list(obj)[:6])) if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(f"{name} is not a model checkpoint: found {keys!s:.100} instead of a "
                              f"state dict or a dict with 'model_state_dict'")
    if not _is_state_dict(sd):
        raise CheckpointError(f"{name}: 'model_state_dict' is not a dict of named tensors")
    sd = _strip_prefixes(sd)
    inferred = fields.get("model_config") is None
    try:
        config = infer_config(sd, n_heads=n_heads) if inferred else config_from_dict(fields["model_config"])
    except ValueError as e:
        raise CheckpointError(f"{name}: its model config is not valid: {e}") from None
    check_fits(config, sd, limits=limits, name=name)
    trainer_state = fields.get("trainer_state")
    if trainer_state is not None:
        if not isinstance(trainer_state, Mapping):
            raise CheckpointError(f"{name}: its training state is not a dict")
        try:
            check_timeline(trainer_state.get("timeline"))
        except ValueError as e:
            raise CheckpointError(f"{name}: its timeline is not valid: {e}") from None
    train_config = None
    if fields.get("train_config") is not None:
        try:
            train_config = TrainConfig.from_dict(fields["train_config"])
        except (ValueError, TypeError) as e:
            raise CheckpointError(f"{name}: its training options are not valid: {e}") from None
    return Checkpoint(
        path=str(path), kind=kind, format_version=version, model_state_dict=sd,
        optimizer_state_dict=fields.get("optimizer_state_dict"), model_config=config,
        config_inferred=inferred, tokenizer_dict=fields.get("tokenizer"), train_config=train_config,
        trainer_state=trainer_state, schedule_state=fields.get("schedule_state"),
        rng=fields.get("rng"), rng_per_rank=fields.get("rng_per_rank"),
    )


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise CheckpointError naming the first tensor whose name or shape does not fit."""
    model = getattr(model, "module", model)
    expected = {name: tensor.shape for name, tensor in model.state_dict().items()}
    check_shapes(expected, state_dict, tied=bool(getattr(getattr(model, "cfg", None), "tie_weights", False)))


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Check every name and shape first, then load (a failed check changes nothing)."""
    check_state_dict(model, state_dict)
    target = getattr(model, "module", model)
    try:
        if isinstance(target, GPTModel):
            load_book_state_dict(target, state_dict)
        else:
            target.load_state_dict(dict(state_dict), strict=True)
    except (ValueError, RuntimeError) as e:
        raise CheckpointError(str(e)) from None


@released_on_refusal
def load_model(source: str | Path | Checkpoint, *, model_config: GPTConfig | None = None,
               device: torch.device | str = "cpu", n_heads: int | None = None,
               limits: CheckpointLimits | None = None) -> tuple[GPTModel, Checkpoint]:
    """Build a GPTModel from a checkpoint (its stored or inferred config unless `model_config`
    is given) and load its weights. Returns (model, checkpoint). Nothing is built before the
    config and every shape have been checked (against `limits` too)."""
    limits = limits or NO_LIMITS
    ckpt = source if isinstance(source, Checkpoint) else read_checkpoint(source, n_heads=n_heads, limits=limits)
    config = model_config or ckpt.model_config
    if model_config is not None or isinstance(source, Checkpoint):  # not checked by read_checkpoint
        check_fits(config, ckpt.model_state_dict, limits=limits, name=Path(ckpt.path).name)
    model = build_model(config)  # a GPTModel, or the bigram baseline its config names
    load_weights(model, ckpt.model_state_dict)
    return model.to(device), ckpt


def inspect_checkpoint(path: str | Path) -> dict[str, Any]:
    """A summary for people: what model, how far trained, how well."""
    ckpt = read_checkpoint(path)
    ts = ckpt.trainer_state or {}
    cfg = ckpt.model_config
    val = [v for v in ts.get("val_losses", []) if v == v]
    return {
        "path": ckpt.path,
        "size_bytes": Path(path).stat().st_size,
        "kind": ckpt.kind,
        "format_version": ckpt.format_version,
        "model_config": cfg.to_dict() if cfg else None,
        "config_inferred": ckpt.config_inferred,
        "num_parameters": cfg.num_parameters() if cfg else None,
        "num_tensors": len(ckpt.model_state_dict),
        "tokenizer": ckpt.tokenizer_dict,
        "has_optimizer": ckpt.optimizer_state_dict is not None,
        "train_config": ckpt.train_config.to_dict() if ckpt.train_config else None,
        "steps": ts.get("step", -1) + 1 if ts else None,
        "epoch": ts.get("epoch"),
        "position_in_epoch": ts.get("position"),
        "tokens_seen": ts.get("tokens_seen"),
        "last_train_loss": (ts.get("train_losses") or [None])[-1],
        "last_val_loss": (ts.get("val_losses") or [None])[-1],
        "best_val_loss": min(val) if val else None,
        "resumable": ckpt.kind == "gpt_core" and ckpt.rng is not None and ckpt.trainer_state is not None,
    }
