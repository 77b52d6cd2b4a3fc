"""`python -m gpt_core eval` and `inspect`: what a checkpoint holds and how well it predicts a text."""
from __future__ import annotations

import argparse
import json
import math

from .cli import UsageError, _positive_int, _read_text, register


# --- eval -----------------------------------------------------------------------------------------
def _add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="ours, or the book's model.pth")
    p.add_argument("--text", required=True, metavar="FILE", help="the text to measure on")
    p.add_argument("--split", choices=["all", "train", "val"], default="all",
                   help="which part of the text (split as in training, by --train-ratio)")
    p.add_argument("--train-ratio", type=float, default=0.9, help="share of the text used for training")
    p.add_argument("--batch-size", type=_positive_int, default=8, help="windows per batch")
    p.add_argument("--stride", type=_positive_int, help="window stride [default: the context length]")
    p.add_argument("--max-batches", type=_positive_int, help="measure only the first N batches")
    p.add_argument("--n-heads", type=_positive_int, help="for a bare state dict: its number of heads "
                   "[default: emb_dim/64, as GPT-2]")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=_positive_int, help="CPU threads for torch")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import CheckpointError, load_model
    from .corpus import split_text
    from .data import create_dataloader_v1
    from .losses import calc_loss_loader, perplexity
    from .prepare import select_device
    from .tokenizers import GPT2Tokenizer

    if not 0.0 < args.train_ratio < 1.0:
        raise UsageError(f"--train-ratio must be between 0 and 1, got {args.train_ratio}")
    try:
        device = select_device(args.device)
    except (ValueError, RuntimeError) as e:
        raise UsageError(f"--device: {e}") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    text = _read_text(args.text)
    try:
        model, ckpt = load_model(args.checkpoint, device=device, n_heads=args.n_heads)
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    tokenizer = ckpt.tokenizer() or GPT2Tokenizer()
    if args.split != "all":
        text = dict(zip(("train", "val"), split_text(text, args.train_ratio)))[args.split]
    ctx = model.cfg.context_length
    loader = create_dataloader_v1(text, batch_size=args.batch_size, max_length=ctx, stride=args.stride or ctx,
                                  shuffle=False, drop_last=False, tokenizer=tokenizer)
    if len(loader) == 0:
        raise UsageError(f"the {args.split} text is shorter than one window of {ctx}+1 tokens")
    model.eval()
    loss = calc_loss_loader(loader, model, device, num_batches=args.max_batches)
    batches = min(len(loader), args.max_batches or len(loader))
    result = {"checkpoint": args.checkpoint, "split": args.split, "loss": loss, "perplexity": perplexity(loss),
              "batches": batches, "windows": min(len(loader.dataset), batches * args.batch_size),
              "context_length": ctx}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.split} loss {loss:.4f}, perplexity {perplexity(loss):.2f} "
              f"({result['windows']} windows of {ctx} tokens)")
    return 0 if math.isfinite(loss) else 1


register("eval", "loss and perplexity of a checkpoint on a text", _add_eval_args, cmd_eval)


# --- inspect --------------------------------------------------------------------------------------
def _add_inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint file")


def cmd_inspect(args: argparse.Namespace) -> int:
    from .checkpoint import CheckpointError, inspect_checkpoint
    try:
        info = inspect_checkpoint(args.checkpoint)
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    print(json.dumps(info, indent=2, default=str))
    return 0


register("inspect", "what a checkpoint holds: model, tokenizer, progress, losses", _add_inspect_args, cmd_inspect)
