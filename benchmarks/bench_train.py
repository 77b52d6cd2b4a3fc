"""Training throughput: our Trainer against the book's `train_model_simple`, same data.

The book's GPT_CONFIG_124M (context 256), batch 2, AdamW lr 4e-4 / weight decay 0.1, on
The Verdict. Runs alternate (book, ours, book, ours, ...) so a busy machine slows both alike;
each run trains `--steps` steps on a fixed set of batches. Evaluation and the end-of-epoch
sample are switched off in both (they are not training), so the time is the steps alone,
with each trainer's own per-step work (ours also measures the gradient norm).

Also: seconds from nothing to the first evaluation event for the demo preset (tokenizer,
data, model, the first step and its evaluation), as a user of the app waits for it.

    python benchmarks/bench_train.py [--steps 4] [--reps 3] [--threads N]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402
from torch.utils.data import DataLoader, Subset  # noqa: E402

from gpt_core import train as our_train  # noqa: E402
from gpt_core.config import GPT_CONFIG_124M, GPTConfig, TrainConfig, get_preset  # noqa: E402
from gpt_core.corpus import ASSETS_DIR  # noqa: E402
from gpt_core.data import GPTDatasetV1  # noqa: E402
from gpt_core.model import GPTModel  # noqa: E402
from gpt_core.prepare import make_optimizer, prepare_training  # noqa: E402
from gpt_core.schedule import EpochLoaderSchedule  # noqa: E402
from gpt_core.tokenizers import GPT2Tokenizer  # noqa: E402
from gpt_core.train_events import EvalEvent  # noqa: E402

TEXT = (ASSETS_DIR / "the-verdict.txt").read_text(encoding="utf-8")
# The clock of time_book / time_ours: wall time, or the process's CPU time (bench_precision.py
# --clock cpu), which a host busy with other work disturbs far less at one thread.
CLOCK = time.perf_counter


def fixed_loader(steps: int, batch_size: int = 2, ctx: int = 256) -> DataLoader:
    dataset = GPTDatasetV1(TEXT, GPT2Tokenizer(), ctx, ctx)
    return DataLoader(Subset(dataset, range(steps * batch_size)), batch_size=batch_size, shuffle=False, drop_last=True)


def time_book(model, optimizer, loader) -> float:
    from llms_from_scratch import ch05
    saved = ch05.evaluate_model, ch05.generate_and_print_sample
    ch05.evaluate_model = lambda *a, **k: (float("nan"), float("nan"))
    ch05.generate_and_print_sample = lambda *a, **k: None
    try:
        t0 = CLOCK()
        with redirect_stdout(io.StringIO()):
            ch05.train_model_simple(model, loader, loader, optimizer, "cpu", 1, 10**9, 1, "Every effort", None)
        return CLOCK() - t0
    finally:
        ch05.evaluate_model, ch05.generate_and_print_sample = saved


def time_ours(model, optimizer, loader, **options) -> float:
    """Seconds our Trainer takes over `loader`; `options`: TrainConfig fields (precision=...)."""
    saved = our_train.evaluate_model
    our_train.evaluate_model = lambda *a, **k: (float("nan"), float("nan"))
    try:
        config = TrainConfig(num_epochs=1, eval_freq=10**9, sample_tokens=0, seed=None, **options)
        trainer = our_train.Trainer(model, optimizer, EpochLoaderSchedule(loader, loader, 1), config=config,
                                    device="cpu")
        t0 = CLOCK()
        for _ in trainer.run():
            pass
        return CLOCK() - t0
    finally:
        our_train.evaluate_model = saved


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm")


def matmul_seconds(model, optimizer, loader) -> tuple[float, float]:
    """(seconds in matrix multiplies, seconds in all) of one of our training runs, profiled.

    Every implementation in float32 does at least these multiplies (the same shapes, the
    same count), so `book time / matmul time` bounds the speed-up any trainer can reach on
    this machine's BLAS; the rest of our step is what there is left to win."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        time_ours(model, optimizer, loader)
        total = time.perf_counter() - t0
    mm = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in MATMUL_OPS) / 1e6
    return mm, total


def first_eval_seconds() -> tuple[float, int]:
    t0 = time.perf_counter()
    preset = get_preset("demo")
    trainer = prepare_training(TEXT, tokenizer=GPT2Tokenizer(), model_config=preset.config, config=TrainConfig())
    for event in trainer.run():
        if isinstance(event, EvalEvent):
            return time.perf_counter() - t0, trainer.total_steps
    raise RuntimeError("no evaluation event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from llms_from_scratch.ch04 import GPTModel as BookGPTModel
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; book GPT_CONFIG_124M, batch 2, "
          f"context 256, {args.steps} steps a run, {args.reps} runs each, interleaved")
    loader = fixed_loader(args.steps)
    tokens = args.steps * 2 * 256
    torch.manual_seed(123)
    book = BookGPTModel(GPT_CONFIG_124M)
    book_opt = torch.optim.AdamW(book.parameters(), lr=4e-4, weight_decay=0.1)
    torch.manual_seed(123)
    ours = GPTModel(GPTConfig.from_dict(GPT_CONFIG_124M))
    ours_opt = make_optimizer(ours, TrainConfig())
    # One warm-up step each (allocator, lazily created optimizer state).
    time_book(book, book_opt, fixed_loader(1))
    time_ours(ours, ours_opt, fixed_loader(1))

    rows = []
    for rep in range(args.reps):
        b = time_book(book, book_opt, loader)
        o = time_ours(ours, ours_opt, loader)
        rows.append((b, o))
        print(f"  run {rep + 1}: book {tokens / b:8.0f} tok/s   ours {tokens / o:8.0f} tok/s   ratio {b / o:.2f}x",
              flush=True)
    book_tps = tokens / statistics.median(b for b, _ in rows)
    our_tps = tokens / statistics.median(o for _, o in rows)
    print()
    print("| trainer                                   | tokens/s (median) | s/step |")
    print("|-------------------------------------------|------------------:|-------:|")
    print(f"| book train_model_simple (ch04 GPTModel)   | {book_tps:17.0f} | {tokens / book_tps / args.steps:6.2f} |")
    print(f"| gpt_core Trainer (fused loss/AdamW, SDPA) | {our_tps:17.0f} | {tokens / our_tps / args.steps:6.2f} |")
    print(f"speed-up: {our_tps / book_tps:.2f}x (median of per-run ratios {statistics.median(b / o for b, o in rows):.2f}x)")
    mm, total = matmul_seconds(ours, ours_opt, loader)
    # The profiler counts CPU time of the calling thread's ops; the multiplies use every
    # thread but are timed once, on the thread that launched them.
    book_step = tokens / book_tps / args.steps
    print(f"matrix multiplies: {mm / args.steps:.2f} s of our {total / args.steps:.2f} s step "
          f"({100 * mm / total:.0f}%); a trainer doing nothing but them would be "
          f"{book_step / (mm / args.steps):.2f}x the book")
    del book, book_opt, ours, ours_opt

    seconds, steps = first_eval_seconds()
    print(f"demo preset: first evaluation event {seconds:.2f} s after start "
          f"(tokenize The Verdict, build model + optimizer, step 0, evaluation; the run has {steps} steps)")


if __name__ == "__main__":
    main()
