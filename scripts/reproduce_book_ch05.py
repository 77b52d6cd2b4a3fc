"""The book's chapter 5 pretraining run, on our engine.

GPT_CONFIG_124M (context 256, dropout 0.1, no qkv bias), AdamW lr 4e-4 and weight decay 0.1,
batch 2, 10 epochs, an evaluation every 5 steps on 5 batches, seed 123, The Verdict split
90/10 by characters. The book reports the training loss falling from about 9.8 to below 1
while the validation loss bottoms out near 6.1-6.2 and rises again (overfitting), and a final
sample that reads like The Verdict.

Prints the book's lines as they come, then a table of every evaluation and the final sample.
Takes many minutes on a laptop CPU.

`--precision bfloat16` runs the same in mixed precision (precision.py) to compare with the
book's float32 numbers; the default, float32, is the book's run bit for bit.

    python scripts/reproduce_book_ch05.py [--epochs 10] [--threads N] [--out DIR] [--precision bfloat16]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gpt_core.config import GPT_CONFIG_124M, GPTConfig, TrainConfig  # noqa: E402
from gpt_core.corpus import ASSETS_DIR  # noqa: E402
from gpt_core.prepare import prepare_training  # noqa: E402
from gpt_core.tokenizers import GPT2Tokenizer  # noqa: E402
from gpt_core.train_events import (CheckpointEvent, DoneEvent, ErrorEvent, EvalEvent, SampleEvent,  # noqa: E402
                                   StoppedEvent, format_event)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="save the final checkpoint in this folder")
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16", "auto"],
                        help="float32: the book's numbers; bfloat16: mixed precision (default: %(default)s)")
    args = parser.parse_args()

    text = (ASSETS_DIR / "the-verdict.txt").read_text(encoding="utf-8")
    config = TrainConfig(num_epochs=args.epochs, batch_size=2, learning_rate=4e-4, weight_decay=0.1,
                         eval_freq=5, eval_iter=5, start_context="Every effort moves you", seed=123,
                         train_ratio=0.9, device="cpu", threads=args.threads, precision=args.precision)
    model_config = GPTConfig.from_dict(GPT_CONFIG_124M)
    trainer = prepare_training(text, tokenizer=GPT2Tokenizer(), model_config=model_config, config=config,
                               checkpoint_dir=args.out)
    print(f"book chapter 5 run: {sum(p.numel() for p in trainer.model.parameters()):,} parameters, "
          f"{trainer.total_steps} steps, {torch.get_num_threads()} threads, precision {trainer.precision.name} "
          f"({trainer.precision.reason})", flush=True)
    start = time.perf_counter()
    evals: list[EvalEvent] = []
    samples: list[SampleEvent] = []
    for event in trainer.run():
        if isinstance(event, (EvalEvent, SampleEvent, StoppedEvent, ErrorEvent, CheckpointEvent)):
            print(format_event(event), flush=True)
        if isinstance(event, EvalEvent):
            evals.append(event)
        elif isinstance(event, SampleEvent):
            samples.append(event)
        elif isinstance(event, ErrorEvent):
            return 1
        elif isinstance(event, DoneEvent):
            print(f"done in {time.perf_counter() - start:.0f} s", flush=True)

    print("\n| epoch | step | tokens seen | train loss | val loss | val ppl |")
    print("|------:|-----:|------------:|-----------:|---------:|--------:|")
    for e in evals:
        print(f"| {e.epoch:5d} | {e.step:4d} | {e.tokens_seen:11,d} | {e.train_loss:10.3f} | "
              f"{e.val_loss:8.3f} | {e.val_ppl:7.1f} |")
    best = min(evals, key=lambda e: e.val_loss)
    print(f"\nfirst train loss {evals[0].train_loss:.3f} -> last {evals[-1].train_loss:.3f}; "
          f"best val loss {best.val_loss:.3f} at epoch {best.epoch} (step {best.step}), "
          f"last val loss {evals[-1].val_loss:.3f}")
    if samples:
        print(f"final sample: {samples[-1].text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
