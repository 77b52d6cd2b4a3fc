"""From a text and options to a ready `Trainer`: device, seed, loaders, model, optimizer.

Three start points: a fresh model (random initialisation from the seed, the book's order:
seed, build the model, make the optimizer), a checkpoint to resume (`resume=`), or a model
someone already built (`model=`, e.g. GPT-2 weights to continue pretraining on the text).
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import Checkpoint, CheckpointError, load_weights, read_checkpoint
from .config import GPTConfig, TrainConfig
from .data import create_train_val_loaders
from .device import select_device
from .model import GPTModel, build_model
from .schedule import EpochLoaderSchedule, schedule_for_text
from .train import Trainer, TrainState

# Options that decide which windows make a batch: a mid-epoch resume needs them unchanged.
DATA_OPTIONS = ("batch_size", "stride", "train_ratio", "shuffle", "grad_accum_steps", "batching")


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """The book's AdamW (weight decay on every parameter), fused where the device has a
    fused kernel: the same update in one pass over the weights."""
    params = list(model.parameters())
    kwargs: dict[str, Any] = dict(lr=config.learning_rate, weight_decay=config.weight_decay, betas=config.betas)
    device_type = params[0].device.type if params else "cpu"
    if device_type in ("cuda", "cpu", "mps"):
        try:
            return torch.optim.AdamW(params, fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):  # older torch or an unsupported dtype
            pass
    return torch.optim.AdamW(params, **kwargs)


def set_dropout(model: nn.Module, p: float) -> None:
    """Set every dropout rate of `model` (our attention reads its Dropout's p when it runs)."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = p
    if isinstance(model, GPTModel):
        model.cfg = model.cfg.replace(drop_rate=p)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def text_fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_loaders(text: str, tokenizer, *, context_length: int, config: TrainConfig, dist=None):
    """The book's chapter 5 loaders (or their distributed twins), checked for emptiness."""
    if dist is not None and dist.world_size > 1:
        from .distributed import distributed_loaders
        train_loader, val_loader = distributed_loaders(
            text, tokenizer, dist, batch_size=config.batch_size, max_length=context_length,
            stride=config.stride, train_ratio=config.train_ratio, shuffle=config.shuffle,
            seed=config.seed or 0)
    else:
        train_loader, val_loader = create_train_val_loaders(
            text, tokenizer, batch_size=config.batch_size, max_length=context_length,
            stride=config.stride, train_ratio=config.train_ratio)
        if not config.shuffle:
            from torch.utils.data import DataLoader
            train_loader = DataLoader(train_loader.dataset, batch_size=config.batch_size,
                                      shuffle=False, drop_last=True)
    if len(train_loader) == 0:
        n = train_loader.dataset.token_ids.numel()
        raise ValueError(
            f"The training part of the text ({config.train_ratio:.0%}) has {n} tokens: fewer than one "
            f"batch of {config.batch_size} window(s) of {context_length}+1 tokens. Use a longer text, "
            f"a shorter context_length or a smaller batch_size.")
    if len(val_loader) == 0:  # the book's calc_loss_loader would make every val loss NaN
        n = val_loader.dataset.token_ids.numel()
        raise ValueError(
            f"The validation part of the text ({1 - config.train_ratio:.0%}) has {n} tokens, fewer than "
            f"one window of {context_length}+1: use a shorter context length or a longer text.")
    return train_loader, val_loader


def prepare_training(text: str, *, tokenizer=None, model_config: GPTConfig | None = None,
                     config: TrainConfig = TrainConfig(), model: nn.Module | None = None,
                     resume: str | Path | Checkpoint | None = None, checkpoint_dir: str | Path | None = None,
                     dist=None, device: torch.device | str | None = None) -> Trainer:
    """A Trainer for `text`, everything checked before any training work.

    resume: our checkpoint continues its run exactly (same options for the data unless at an
    epoch boundary); a book `model.pth` / `model_and_optimizer.pth` starts a new run from
    its weights. model: an already built model (its config is `model.cfg` unless given).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the training text is empty")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = torch.device(device) if device is not None else select_device(config.device)
    ckpt = resume if isinstance(resume, Checkpoint) or resume is None else read_checkpoint(resume)
    if ckpt is not None:
        stored = ckpt.tokenizer()
        if tokenizer is not None and stored is not None and stored.to_dict() != tokenizer.to_dict():
            raise ValueError("the checkpoint was trained with a different tokenizer "
                             f"({ckpt.tokenizer_dict.get('type')}); resume it with its own")
        tokenizer = stored or tokenizer
        model_config = ckpt.model_config
    if tokenizer is None:
        raise ValueError("a tokenizer is needed (GPT2Tokenizer() or CharTokenizer.from_text(text))")
    if model is not None:
        model_config = model_config or getattr(model, "cfg", None)
    if model_config is None:
        raise ValueError("give a model_config (a GPTConfig), a model or a checkpoint to resume")
    if config.drop_rate is not None:
        model_config = model_config.replace(drop_rate=config.drop_rate)
    if tokenizer.n_vocab > model_config.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.n_vocab} tokens but the model's vocab_size is "
                         f"{model_config.vocab_size}; build the model with vocab_size={tokenizer.n_vocab}")
    state, rng = None, None
    resuming = ckpt is not None and ckpt.kind == "gpt_core" and ckpt.trainer_state is not None
    if resuming:
        state = TrainState.from_dict(ckpt.trainer_state)
        old = ckpt.train_config
        changed = [k for k in DATA_OPTIONS if old is not None and getattr(old, k) != getattr(config, k)]
        if state.position > 0 and state.text_sha256 and state.text_sha256 != text_fingerprint(text):
            raise ValueError("this checkpoint stopped in the middle of an epoch on another text; resume it "
                             "on the text it was trained on (continuing on a new text works from an "
                             "epoch's end)")
        if state.position > 0 and changed:
            raise ValueError(f"this checkpoint stopped in the middle of an epoch; resuming it needs the "
                             f"same {', '.join(changed)} as before ({', '.join(f'{k}={getattr(old, k)!r}' for k in changed)})")
        rng = ckpt.rng
        if dist is not None and ckpt.rng_per_rank and len(ckpt.rng_per_rank) == dist.world_size:
            rng = ckpt.rng_per_rank[dist.rank]

    if config.batching == "random_windows":  # the BabyGPT notebook's iterations
        schedule = schedule_for_text(text, tokenizer, context_length=model_config.context_length,
                                     config=config, dist=dist)
    else:
        train_loader, val_loader = make_loaders(text, tokenizer, context_length=model_config.context_length,
                                                config=config, dist=dist)
        schedule = EpochLoaderSchedule(train_loader, val_loader, config.num_epochs)

    # The book's order: seed, build the model, make the optimizer, train.
    if config.seed is not None and not resuming:
        seed_everything(config.seed)
    if model is None:
        model = build_model(model_config)  # a GPTModel, or the notebook's bigram baseline
        if ckpt is not None:
            load_weights(model, ckpt.model_state_dict)
    elif config.drop_rate is not None:
        set_dropout(model, config.drop_rate)
    if dist is not None and dist.rank > 0 and config.seed is not None and not resuming:
        torch.manual_seed(config.seed + dist.rank)  # own dropout masks per rank; rank 0 = one process
    model.to(device)
    optimizer = make_optimizer(model, config)
    if ckpt is not None and ckpt.optimizer_state_dict is not None:
        try:
            optimizer.load_state_dict(ckpt.optimizer_state_dict)
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"the optimizer state in {Path(ckpt.path).name} does not fit this model: {e}") from None
        for g in optimizer.param_groups:  # the options of this run, not those saved
            g["lr"], g["weight_decay"], g["betas"] = config.learning_rate, config.weight_decay, config.betas

    if resuming and ckpt.schedule_state is not None:
        schedule.load_state_dict(ckpt.schedule_state)
    state = state or TrainState()
    state.text_sha256 = text_fingerprint(text)
    return Trainer(model, optimizer, schedule, config=config, device=device, tokenizer=tokenizer,
                   model_config=model_config, checkpoint_dir=checkpoint_dir, dist=dist, state=state,
                   rng_state=rng)
