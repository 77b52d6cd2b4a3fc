"""The CUDA check, in one command that ends in under 5 minutes on one GPU.

1. Runs the tests that need CUDA (tests/test_precision.py's, skipped on machines without one).
2. Trains the book's GPT_CONFIG_124M at context 1024 (dropout 0, as the book's speed tips
   measure it) with our Trainer on random token ids, in float32, TF32, bfloat16 and
   bfloat16 + torch.compile, and prints tokens/s over the steps after the warm-up (the
   compiler's first steps not counted), achieved FLOP/s, the share of the measured peak and
   the peak GPU memory of each.
3. Greedy generation of 200 tokens on the GPT-2 124M shape in float32 and bfloat16 (tokens/s).

Targets: bfloat16 + compile above the book's 142,156 tokens/s on an A100 (at least 150,000 on
an H200).

    python benchmarks/gpu_check.py [--batch-size 16] [--steps 12] [--skip-tests] [--skip-compile]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from gpt_core.config import GPT2_SIZES, GPT_CONFIG_124M, GPTConfig, TrainConfig  # noqa: E402
from gpt_core.generate import generate  # noqa: E402
from gpt_core.model import GPTModel  # noqa: E402
from gpt_core.prepare import make_optimizer  # noqa: E402
from gpt_core.schedule import EpochLoaderSchedule  # noqa: E402
from gpt_core.train import Trainer  # noqa: E402
from gpt_core.train_events import StepEvent  # noqa: E402
from gpt_core.utilisation import format_flops  # noqa: E402

BOOK_A100_TOKENS_PER_S = 142_156
CONTEXT = 1024


def run_cuda_tests() -> int:
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "tests/test_precision.py", "-k", "cuda"]
    print("$ " + " ".join(cmd[2:]), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def synthetic_loader(batch_size: int, batches: int, vocab: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch_size * batches, CONTEXT + 1), generator=g)
    # Pinned, so the Trainer's non-blocking copies overlap the previous step.
    return DataLoader(TensorDataset(ids[:, :-1], ids[:, 1:]), batch_size=batch_size, shuffle=False,
                      drop_last=True, pin_memory=True)


def train_row(name: str, precision: str, compile_: bool, batch_size: int, steps: int, warmup: int) -> dict:
    cfg = GPTConfig.from_dict({**GPT_CONFIG_124M, "context_length": CONTEXT, "drop_rate": 0.0})
    torch.manual_seed(123)
    model = GPTModel(cfg).cuda()
    config = TrainConfig(num_epochs=1, eval_freq=10**9, sample_tokens=0, seed=None, precision=precision,
                         compile=compile_, device="cuda")
    optimizer = make_optimizer(model, config)
    loader = synthetic_loader(batch_size, warmup + steps, cfg.vocab_size)
    torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model, optimizer, EpochLoaderSchedule(loader, loader, 1), config=config, device="cuda")
    start = time.perf_counter()
    marks, last = [], None
    for event in trainer.run():
        if isinstance(event, StepEvent):  # each step's loss.item() has synchronised the GPU
            marks.append(time.perf_counter())
            last = event
        elif event.kind == "error":
            raise RuntimeError(event.message)
    timed = marks[warmup:]
    tokens_per_s = (len(timed) - 1) * batch_size * CONTEXT / (timed[-1] - timed[0])
    flops = tokens_per_s / last.tokens_per_sec * last.flops_per_sec
    row = dict(name=name, precision=trainer.precision.name, tokens_per_s=tokens_per_s, flops=flops,
               share=flops / last.peak_flops, peak=last.peak_flops, memory=torch.cuda.max_memory_allocated(),
               seconds=time.perf_counter() - start, loss=last.loss)
    print(f"  {name:<18} {tokens_per_s:10,.0f} tok/s  {format_flops(flops):>13}  {row['share']:5.1%} of "
          f"{format_flops(row['peak'])}  peak memory {row['memory'] / 2**30:5.1f} GiB  ({row['seconds']:.0f} s, "
          f"last loss {last.loss:.3f})", flush=True)
    del trainer, model, optimizer
    torch.cuda.empty_cache()
    return row


def generation_rows(tokens: int) -> list[tuple[str, float]]:
    torch.manual_seed(123)
    model = GPTModel(GPT2_SIZES["124M"]).cuda().eval()
    idx = torch.tensor([[15496, 11, 314, 716, 257, 3303, 2746, 11]], device="cuda")
    rows = []
    for precision in ("float32", "bfloat16"):
        generate(model, idx, 4, precision=precision)  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = generate(model, idx, tokens, precision=precision)
        torch.cuda.synchronize()
        rows.append((precision, tokens / (time.perf_counter() - t0)))
        assert out.shape == (1, idx.shape[1] + tokens)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=12, help="timed training steps per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (the compiler's)")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU here: nothing to check (the CUDA rules are tested on CPU by tests/test_precision.py)")
        return 2
    began = time.perf_counter()
    print(f"{torch.cuda.get_device_name()} (compute capability {'.'.join(map(str, torch.cuda.get_device_capability()))}), "
          f"torch {torch.__version__}, CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}")
    code = 0 if args.skip_tests else run_cuda_tests()
    print(f"\ntraining GPT_CONFIG_124M at context {CONTEXT}, batch {args.batch_size}, {args.steps} timed steps "
          f"after {args.warmup}:", flush=True)
    plan = [("float32", "float32", False), ("TF32", "tf32", False), ("bfloat16", "bfloat16", False)]
    if not args.skip_compile:
        plan.append(("bfloat16 + compile", "bfloat16", True))
    rows = [train_row(name, p, c, args.batch_size, args.steps, args.warmup) for name, p, c in plan]
    print("\ngreedy generation, GPT-2 124M shape:", flush=True)
    gen = generation_rows(args.tokens)
    print()
    print("| training run | tokens/s | achieved | share of measured peak | peak GPU memory |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['tokens_per_s']:,.0f} | {format_flops(r['flops'])} | {r['share']:.1%} of "
              f"{format_flops(r['peak'])} | {r['memory'] / 2**30:.1f} GiB |")
    print()
    print("| greedy generation | tokens/s |")
    print("|---|---:|")
    for precision, speed in gen:
        print(f"| {precision} | {speed:,.1f} |")
    best = max(r["tokens_per_s"] for r in rows)
    print(f"\nfastest training: {best:,.0f} tokens/s ({best / BOOK_A100_TOKENS_PER_S:.2f}x the book's A100 "
          f"figure of {BOOK_A100_TOKENS_PER_S:,}); tests exit code {code}; "
          f"{time.perf_counter() - began:.0f} s in all")
    return code


if __name__ == "__main__":
    sys.exit(main())
