"""What the trainer measures between steps: the book's `evaluate_model`, the notebook's
`estimate_loss`, the book's end-of-epoch sample, and the one overfitting rule."""
from __future__ import annotations

import math

import torch
from torch import nn

from . import losses
from .generate import generate, generate_text_simple, text_to_token_ids, token_ids_to_text
from .schedule import BatchSchedule


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel keeps the model here


def context_size_of(model: nn.Module, default: int = 1024) -> int:
    """The window the model sees: the book reads `pos_emb.weight.shape[0]`; other models
    may say `cfg.context_length` or `context_length`."""
    model = _unwrap(model)
    pos_emb = getattr(model, "pos_emb", None)
    if isinstance(pos_emb, nn.Embedding):
        return pos_emb.weight.shape[0]
    cfg = getattr(model, "cfg", None)
    return int(getattr(cfg, "context_length", None) or getattr(model, "context_length", None) or default)


def evaluate_model(model: nn.Module, train_loader, val_loader, device, eval_iter: int) -> tuple[float, float]:
    """The book's: mean loss of the first `eval_iter` batches of each loader, in eval mode.
    Leaves the model in the mode it was in (the book always returns to train mode)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            train_loss = losses.calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
            val_loss = losses.calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    finally:
        model.train(was_training)
    return train_loss, val_loss


@torch.no_grad()
def estimate_loss(model: nn.Module, schedule: BatchSchedule, device: torch.device | str = "cpu") -> dict[str, float]:
    """The notebook's `estimate_loss()`: {"train": mean loss, "val": mean loss} over
    `eval_iters` fresh random batches of each split, in eval mode; the model is left in the
    mode it was in."""
    train_src, val_src = schedule.eval_sources()
    train_loss, val_loss = evaluate_model(model, train_src, val_src, device, len(train_src))
    return {"train": train_loss, "val": val_loss}


def generate_sample(model: nn.Module, tokenizer, device, start_context: str, max_new_tokens: int = 50,
                    precision: str = "float32") -> str:
    """The book's `generate_and_print_sample`, returning the text instead of printing it.
    In float32 it decodes with the book's `generate_text_simple`, so an exact run's samples are
    the book's tokens bit for bit. In another precision (a Fast run) it decodes with the cached
    decoder in that precision, as the run's replay frames and the Generate tab do: the book's
    function recomputes the whole window and its vocabulary-wide head for every new token,
    which on a small model costs more than the epoch's training steps."""
    was_training = model.training
    model.eval()
    try:
        encoded = text_to_token_ids(start_context, tokenizer).to(device)
        if precision == "float32":
            token_ids = generate_text_simple(model=model, idx=encoded, max_new_tokens=max_new_tokens,
                                             context_size=context_size_of(model))
        else:
            token_ids = generate(model, encoded, max_new_tokens, temperature=0.0, precision=precision)
        return token_ids_to_text(token_ids, tokenizer)
    finally:
        model.train(was_training)


# An evaluation averaged over a single batch is too noisy to call a rise of the validation loss
# (unless that batch is the whole validation part).
MIN_OVERFIT_EVAL_BATCHES = 2


def is_overfitting(train_losses: list[float], val_losses: list[float], patience: int = 2, *,
                   eval_batches: int = MIN_OVERFIT_EVAL_BATCHES, whole_split: bool = False,
                   tokens_seen: list[int] | None = None, tokens_per_pass: int = 0) -> bool:
    """The one overfitting rule, the trainer's, the CLI's and the page's chart's: the validation
    loss rose at each of the last `patience` evaluations (at least two) while the training loss
    fell over them. Only on evidence: each evaluation averaged at least
    `MIN_OVERFIT_EVAL_BATCHES` batches of each split, or the whole validation part
    (`whole_split`); and, given the `tokens_seen` at each evaluation, the rise began once the
    model had read `tokens_per_pass` tokens (the training part once): before that every batch
    is new text, and nothing can have been memorised yet."""
    rises = max(2, patience)
    if not (eval_batches >= MIN_OVERFIT_EVAL_BATCHES or whole_split) or len(val_losses) <= rises:
        return False
    if tokens_seen is not None and tokens_seen[-(rises + 1)] < tokens_per_pass:
        return False
    val, train = val_losses[-(rises + 1):], train_losses[-(rises + 1):]
    if not all(math.isfinite(v) for v in val):
        return False
    return all(later > earlier for earlier, later in zip(val, val[1:])) and train[-1] < train[0]
