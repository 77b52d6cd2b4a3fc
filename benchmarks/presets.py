"""What each model preset costs: parameters, memory, and seconds per epoch on The Verdict.

For every preset in gpt_core.config.PRESETS: parameters counted as the book counts them
(`sum(p.numel())`, a tied head once), float32 weights, and the training-memory estimate of
`GPTConfig.training_memory_bytes` at batch 2. The presets that train on a CPU (all but
the GPT-2 shapes: demo, char, babygpt, book-124M) are also timed on The Verdict with the
book's chapter 5 settings: batch 2, stride = context, 90/10 character split, AdamW(lr 4e-4,
weight decay 0.1; fused, as the trainer builds it), `calc_loss_batch`, the preset's dropout.
Character presets use The Verdict's characters as vocabulary; babygpt is timed like the
others, not with its notebook's batches of 128 random windows. Figures per preset:

  train s/epoch   the optimizer steps of one epoch alone
  +eval s/epoch   plus the book's evaluation schedule (every 5 steps, 5 train and 5
                  validation batches in eval mode); sample generation not included
  cpu s/epoch     process CPU seconds of the same (all threads): the work done, which a
                  busy machine stretches less than the wall time

The small presets run whole epochs after a 3-step warm-up (not timed); book-124M
times 2 steps after one warm-up step and extrapolates to the epoch's 9 batches (its
evaluation figure is likewise extrapolated from 2 timed evaluation batches). The GPT-2
sizes get parameters and memory only. The load average is printed beside each timing:
on a shared machine the figures are only as good as the CPU time the run got.

    python benchmarks/presets.py [--epochs 1] [--only demo,char] [--demo-candidates] [--threads N]
                                 [--compare-loss]

--compare-loss times each preset twice, interleaved: with our calc_loss_batch (the fused
output head + cross-entropy) and with the book's formula (full logits, F.cross_entropy).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gpt_core.config import PRESETS, GPTConfig  # noqa: E402
from gpt_core.corpus import load_sample  # noqa: E402
from gpt_core.data import create_train_val_loaders  # noqa: E402
from gpt_core.losses import calc_loss_batch  # noqa: E402
from gpt_core.model import GPTModel  # noqa: E402
from gpt_core.tokenizers import CharTokenizer, GPT2Tokenizer  # noqa: E402
from playground.formatting import format_bytes, format_count  # noqa: E402

def trainable_on_cpu(name: str) -> bool:
    return not name.startswith("gpt2-")  # GPT-2 shapes: parameters and memory only
EVAL_FREQ, EVAL_ITER = 5, 5  # the book's chapter 5 run

# Alternatives for the demo preset ("10 epochs of The Verdict in about a minute").
DEMO_CANDIDATES = {
    "ctx64-d128-L2": GPTConfig(context_length=64, emb_dim=128, n_heads=4, n_layers=2, tie_weights=True),
    "ctx128-d192-L3": GPTConfig(context_length=128, emb_dim=192, n_heads=6, n_layers=3, tie_weights=True),
    "ctx128-d256-L4": GPTConfig(context_length=128, emb_dim=256, n_heads=8, n_layers=4, tie_weights=True),
    "ctx256-d256-L4": GPTConfig(context_length=256, emb_dim=256, n_heads=8, n_layers=4, tie_weights=True),
}


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def make_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    try:
        return torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1, fused=True)
    except (RuntimeError, ValueError, TypeError):  # a torch without the fused CPU kernel
        return torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)


def book_loss_batch(input_batch, target_batch, model, device):
    """The book's calc_loss_batch: full logits, then cross-entropy (for --compare-loss)."""
    logits = model(input_batch.to(device))
    return F.cross_entropy(logits.flatten(0, 1), target_batch.to(device).flatten())


LOSS = {"ours": calc_loss_batch, "book": book_loss_batch}
loss_batch = calc_loss_batch


def train_step(model, optimizer, x, y) -> None:
    optimizer.zero_grad()
    loss_batch(x, y, model, "cpu").backward()
    optimizer.step()


def evaluate(model, train_loader, val_loader) -> None:
    model.eval()
    with torch.no_grad():
        for loader in (train_loader, val_loader):
            for i, (x, y) in enumerate(loader):
                if i >= EVAL_ITER:
                    break
                loss_batch(x, y, model, "cpu").item()
    model.train()


class Clock:
    """Wall and process-CPU seconds: on a shared machine the CPU time shows the work done."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> "Clock":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu


def time_whole_epochs(cfg: GPTConfig, tokenizer, text: str, epochs: int) -> dict:
    """A warm-up of 3 steps and one evaluation, then `epochs` timed epochs (mean reported)."""
    torch.manual_seed(123)
    model = GPTModel(cfg).train()
    optimizer = make_optimizer(model)
    train_loader, val_loader = create_train_val_loaders(
        text, tokenizer, batch_size=2, max_length=cfg.context_length)
    for x, y in list(train_loader)[:3]:
        train_step(model, optimizer, x, y)
    evaluate(model, train_loader, val_loader)
    train, evals = Clock(), Clock()
    step = -1
    for _ in range(epochs):
        for x, y in train_loader:
            with train:
                train_step(model, optimizer, x, y)
            step += 1
            if step % EVAL_FREQ == 0:
                with evals:
                    evaluate(model, train_loader, val_loader)
    return dict(batches=len(train_loader), train_s=train.wall / epochs, eval_s=evals.wall / epochs,
                cpu_s=(train.cpu + evals.cpu) / epochs, how=f"mean of {epochs} epoch(s)")


def time_extrapolated(cfg: GPTConfig, tokenizer, text: str, steps: int = 2) -> dict:
    """One warm-up step, then `steps` timed steps and evaluation batches, scaled to an epoch."""
    torch.manual_seed(123)
    model = GPTModel(cfg).train()
    optimizer = make_optimizer(model)
    train_loader, val_loader = create_train_val_loaders(
        text, tokenizer, batch_size=2, max_length=cfg.context_length)
    batches = list(train_loader)
    train_step(model, optimizer, *batches[0])
    train, evals = Clock(), Clock()
    with train:
        for x, y in batches[1:1 + steps]:
            train_step(model, optimizer, x, y)
    model.eval()
    with evals, torch.no_grad():
        for x, y in batches[:steps]:
            loss_batch(x, y, model, "cpu")
    n = len(batches)
    evaluations = math.ceil(n / EVAL_FREQ)
    eval_batches = evaluations * (min(EVAL_ITER, n) + min(EVAL_ITER, len(val_loader)))
    return dict(batches=n, train_s=train.wall / steps * n, eval_s=evals.wall / steps * eval_batches,
                cpu_s=train.cpu / steps * n + evals.cpu / steps * eval_batches,
                how=f"{steps} steps x {n} batches")


def corpus_and_tokenizer(preset_tokenizer: str, text: str):
    if preset_tokenizer == "char":
        return CharTokenizer.from_text(text)
    return GPT2Tokenizer()


def row(name: str, cfg: GPTConfig, timing: dict | None, load_avg: str) -> str:
    params = format_count(cfg.num_parameters())
    weights = format_bytes(cfg.memory_bytes())
    train_mem = format_bytes(cfg.training_memory_bytes(2))
    shape = f"ctx {cfg.context_length}, d {cfg.emb_dim}, {cfg.n_heads}h, {cfg.n_layers}L" + (", tied" if cfg.tie_weights else "")
    if timing is None:
        timed = f"{'-':>8} {'-':>8} {'-':>8} {'-':>9}  {'-':<20}"
    else:
        total = timing["train_s"] + timing["eval_s"]
        timed = (f"{timing['train_s']:8.1f} {total:8.1f} {timing['cpu_s']:8.1f} {10 * total:9.0f}  "
                 f"{timing['how']:<20} load {load_avg}")
    return f"{name:<22} {shape:<34} {params:>7} {weights:>9} {train_mem:>9} {timed}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per preset (after a short warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--only", default="", help="comma-separated preset names to time (default: all CPU presets)")
    parser.add_argument("--demo-candidates", action="store_true", help="also time alternative demo configs")
    parser.add_argument("--compare-loss", action="store_true",
                        help="time each preset twice, interleaved: our calc_loss_batch and the book's")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    if args.threads:
        torch.set_num_threads(args.threads)

    text = load_sample()
    print(f"The Verdict: {len(text):,} characters; batch 2, stride = context, 90/10 split; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    header = (f"{'preset':<22} {'shape':<34} {'params':>7} {'weights':>9} {'train mem':>9} "
              f"{'train s':>8} {'+eval s':>8} {'cpu s':>8} {'10 ep s':>9}  how")
    print(header)
    print("-" * len(header))
    global loss_batch
    losses = ("ours", "book") if args.compare_loss else ("ours",)
    for name, preset in PRESETS.items():
        cfg = preset.config
        if not (trainable_on_cpu(name) and (not only or name in only)):
            print(row(name, cfg, None, ""), flush=True)
            continue
        tokenizer = corpus_and_tokenizer(preset.tokenizer, text)
        cfg = cfg.replace(vocab_size=tokenizer.n_vocab)
        for loss in losses:
            loss_batch = LOSS[loss]
            if name == "book-124M":
                timing = time_extrapolated(cfg, tokenizer, text)
            else:
                timing = time_whole_epochs(cfg, tokenizer, text, args.epochs)
            label = name if len(losses) == 1 else f"{name} ({loss} loss)"
            print(row(label, cfg, timing, load()), flush=True)
    if args.demo_candidates:
        print("\ndemo candidates (GPT-2 BPE, tied):")
        for name, cfg in DEMO_CANDIDATES.items():
            for loss in losses:
                loss_batch = LOSS[loss]
                timing = time_whole_epochs(cfg, GPT2Tokenizer(), text, args.epochs)
                label = name if len(losses) == 1 else f"{name} ({loss})"
                print(row(label, cfg, timing, load()), flush=True)
    print("\nparams: sum(p.numel()) as the book counts (tied head once); weights: float32; "
          "train mem: estimate at batch 2 (weights, grads, AdamW moments, activations);\n"
          "train s: one epoch of optimizer steps (wall); +eval s: with the book's evaluation every 5 steps;\n"
          "cpu s: process CPU seconds of the epoch with evaluation (all threads); 10 ep s: ten epochs "
          "with evaluation (wall); load: 1/5/15-minute load average after timing.")


if __name__ == "__main__":
    main()
