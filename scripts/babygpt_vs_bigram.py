"""How much does attention buy over a lookup table? The BabyGPT notebook's two models on one corpus.

Trains the bigram baseline (AdamW lr 1e-2) and the BabyGPT preset (4 layers, 4 heads, 64 wide,
context 64, AdamW lr 1e-3) for the same number of iterations over random windows of the same
80/20 character split, then prints each model's final loss estimate (the notebook's: mean over
`--eval-iters` random batches of each split).

    python scripts/babygpt_vs_bigram.py                 # the notebook's 3,000 iterations on 论语
    python scripts/babygpt_vs_bigram.py --iters 500 --eval-iters 50 --text my_novel_gbk.txt
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# A shared CPU: idle OpenMP threads should sleep rather than spin (set before torch loads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gpt_core.bigram import BigramConfig  # noqa: E402
from gpt_core.config import (BABYGPT_ITERATIONS, PRESETS, babygpt_train_config,  # noqa: E402
                             bigram_train_config)
from gpt_core.corpus import ASSETS_DIR, read_text_file  # noqa: E402
from gpt_core.generate import generate, text_to_token_ids, token_ids_to_text  # noqa: E402
from gpt_core.prepare import prepare_training  # noqa: E402
from gpt_core.tokenizers import CharTokenizer  # noqa: E402
from gpt_core.train import estimate_loss  # noqa: E402


def train_one(name: str, text: str, tokenizer: CharTokenizer, model_config, config) -> dict:
    trainer = prepare_training(text, tokenizer=tokenizer, model_config=model_config, config=config)
    start = time.perf_counter()
    for event in trainer.run():
        if event.kind == "eval":
            print(f"  {name:7s} step {event.step + 1:5d}/{trainer.total_steps}: train {event.train_loss:.3f}"
                  f"  val {event.val_loss:.3f}  ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
        elif event.kind in ("error", "stopped"):
            raise SystemExit(f"{name}: {getattr(event, 'message', None) or event.reason}")
    seconds = time.perf_counter() - start
    final = estimate_loss(trainer.model, trainer.schedule, trainer.device)  # after the last iteration
    # The notebook's generation: sample from the softmax (temperature 1), here seeded.
    prompt = text_to_token_ids(trainer.config.start_context, tokenizer).to(trainer.device)
    sample = token_ids_to_text(generate(trainer.model, prompt, 80, temperature=1.0, seed=0), tokenizer)
    return {"name": name, "params": sum(p.numel() for p in trainer.model.parameters()),
            "train": final["train"], "val": final["val"], "best_val": min(trainer.state.val_losses + [final["val"]]),
            "seconds": seconds, "sample": sample}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", default=str(ASSETS_DIR / "lunyu.txt"), help="UTF-8 or GBK text (default: 论语)")
    p.add_argument("--iters", type=int, default=BABYGPT_ITERATIONS, help="iterations for both models")
    p.add_argument("--eval-every", type=int, default=100, help="iterations between loss estimates")
    p.add_argument("--eval-iters", type=int, default=200, help="random batches per split in an estimate")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--drop-rate", type=float, default=None,
                   help="BabyGPT's dropout (the notebook: 0); a small corpus overfits without it")
    p.add_argument("--only", choices=["bigram", "BabyGPT"], help="train just one of the two")
    args = p.parse_args(argv)

    try:
        text = read_text_file(args.text).text
        tokenizer = CharTokenizer.from_text(text)
        options = dict(max_steps=args.iters, eval_freq=args.eval_every, eval_iter=args.eval_iters,
                       batch_size=args.batch_size, seed=args.seed, threads=args.threads, device="auto")
        gpt_config = PRESETS["babygpt"].config.replace(vocab_size=tokenizer.n_vocab)
        runs = [("bigram", BigramConfig(vocab_size=tokenizer.n_vocab, context_length=gpt_config.context_length),
                 bigram_train_config(**options)),
                ("BabyGPT", gpt_config, babygpt_train_config(**options, drop_rate=args.drop_rate))]
        runs = [r for r in runs if args.only in (None, r[0])]
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{Path(args.text).name}: {len(text):,} characters, vocabulary {tokenizer.n_vocab:,} "
          f"(uniform loss ln V = {torch.log(torch.tensor(float(tokenizer.n_vocab))):.3f}); "
          f"{args.iters:,} iterations of {args.batch_size} x {gpt_config.context_length}, 80/20 split", flush=True)
    results = [train_one(name, text, tokenizer, model_config, config) for name, model_config, config in runs]

    print(f"\n{'model':8s} {'params':>10s} {'train loss':>11s} {'val loss':>9s} {'best val':>9s} {'seconds':>8s}")
    for r in results:
        print(f"{r['name']:8s} {r['params']:10,d} {r['train']:11.3f} {r['val']:9.3f} {r['best_val']:9.3f} "
              f"{r['seconds']:8.0f}")
    for r in results:
        print(f"\n{r['name']} sample: {r['sample'][:120]!r}")
    if len(results) < 2:
        return 0
    bigram, gpt = results
    gain = bigram["val"] - gpt["val"]
    verdict = "below" if gain > 0 else "NOT below"
    print(f"\nBabyGPT's final validation loss is {verdict} the bigram's by {abs(gain):.3f} nats "
          f"(perplexity {torch.exp(torch.tensor(gpt['val'])):.0f} vs {torch.exp(torch.tensor(bigram['val'])):.0f}).")
    return 0 if gain > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
