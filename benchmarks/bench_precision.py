"""Exact against fast on this CPU: training and generation in float32 and bfloat16, side by side.

Training: the book's GPT_CONFIG_124M (context 256), batch 2, AdamW lr 4e-4 / weight decay 0.1
on The Verdict, `--steps` steps a run on a fixed set of batches; the book's
`llms_from_scratch.ch05.train_model_simple`, our Trainer in float32 (exact) and in bfloat16,
interleaved (book, exact, bf16, book, ...) so a busy shared machine slows all three alike.
Evaluation and samples are off in all three. The ratios are of each round's runs.

Memory: each precision trains `--steps` steps in a fresh child process, which reports its peak
resident memory (VmHWM); the same model, data and optimizer.

Generation: greedy decoding of `--tokens` tokens on the GPT-2 124M shape, a model built from
`GPTModel(cfg)` (every model a user trains) and the same weights loaded as the app loads GPT-2
(input-major cache), in float32 and bfloat16, against transformers' GPT2LMHeadModel.generate
(float32, its own KV cache), interleaved. Exact greedy tokens must equal transformers'.

    python benchmarks/bench_precision.py [--steps 3] [--reps 2] [--tokens 200] [--threads N]
    python benchmarks/bench_precision.py --skip-generation   # training and memory only
    python benchmarks/bench_precision.py --threads 1 --clock cpu   # on a host shared with other work
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402

import bench_train  # noqa: E402
from bench_train import fixed_loader, time_book, time_ours  # noqa: E402
from gpt_core import bf16_matvec  # noqa: E402
from gpt_core.config import GPT2_SIZES, GPT_CONFIG_124M, GPTConfig, TrainConfig  # noqa: E402
from gpt_core.generate import generate  # noqa: E402
from gpt_core.model import GPTModel  # noqa: E402
from gpt_core.precision import precision_for  # noqa: E402
from gpt_core.prepare import make_optimizer  # noqa: E402

PROMPT_IDS = [15496, 11, 314, 716, 257, 3303, 2746, 11]  # "Hello, I am a language model,"


def _ours(seed: int = 123):
    torch.manual_seed(seed)
    model = GPTModel(GPTConfig.from_dict(GPT_CONFIG_124M))
    return model, make_optimizer(model, TrainConfig())


def train_rounds(steps: int, reps: int) -> None:
    from llms_from_scratch.ch04 import GPTModel as BookGPTModel
    loader = fixed_loader(steps)
    tokens = steps * 2 * 256
    torch.manual_seed(123)
    book = BookGPTModel(GPT_CONFIG_124M)
    book_opt = torch.optim.AdamW(book.parameters(), lr=4e-4, weight_decay=0.1)
    runs = {"book train_model_simple": lambda: time_book(book, book_opt, loader)}
    for precision in ("float32", "bfloat16"):
        model, opt = _ours()
        time_ours(model, opt, fixed_loader(1), precision=precision)  # warm-up: optimizer state, kernels
        runs[f"ours {precision}"] = (lambda m=model, o=opt, p=precision: time_ours(m, o, loader, precision=p))
    time_book(book, book_opt, fixed_loader(1))
    times: dict[str, list[float]] = {name: [] for name in runs}
    print(f"training: GPT_CONFIG_124M, batch 2, context 256, {steps} steps a run, {reps} rounds, "
          f"{torch.get_num_threads()} threads; {precision_for('bfloat16', 'cpu').reason}")
    for r in range(reps):
        line = []
        for name, fn in runs.items():
            seconds = fn()
            times[name].append(seconds)
            line.append(f"{name} {tokens / seconds:6.0f} tok/s")
        book_s = times["book train_model_simple"][-1]
        print(f"  round {r + 1}: " + " | ".join(line) + f" | exact {book_s / times['ours float32'][-1]:.2f}x, "
              f"bf16 {book_s / times['ours bfloat16'][-1]:.2f}x the book", flush=True)
    print()
    print("| trainer | tokens/s (median) | s/step | x the book (median of rounds) |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        ratio = statistics.median(b / t for b, t in zip(times["book train_model_simple"], ts))
        print(f"| {name} | {tokens / statistics.median(ts):.0f} | {statistics.median(ts) / steps:.2f} | {ratio:.2f}x |")


def memory_child(precision: str, steps: int) -> None:
    """(In a child process) train `steps` steps and print the peak resident memory as JSON."""
    model, opt = _ours()
    time_ours(model, opt, fixed_loader(steps), precision=precision)
    # VmHWM: this process image's own peak (ru_maxrss would carry the parent's across exec).
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"precision": precision, "peak_mb": peak_kb / 1024}))


def memory_rounds(steps: int, threads: int | None) -> None:
    peaks = {}
    for precision in ("float32", "bfloat16"):
        cmd = [sys.executable, __file__, "--memory-child", precision, "--steps", str(steps)]
        if threads:
            cmd += ["--threads", str(threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        peaks[precision] = json.loads(out.strip().splitlines()[-1])["peak_mb"]
    print(f"training memory (peak RSS of a fresh process, {steps} steps): float32 {peaks['float32']:,.0f} MB, "
          f"bfloat16 {peaks['bfloat16']:,.0f} MB ({peaks['bfloat16'] / peaks['float32']:.2f}x)")


def generation_rounds(tokens: int, reps: int) -> None:
    from bench_generate import load_as_the_app_does

    cfg = GPT2_SIZES["124M"]
    torch.manual_seed(123)
    own = GPTModel(cfg).eval()  # a model as a user builds one: nn.Linear's [out, in] layout
    folder = tempfile.TemporaryDirectory(prefix="bench-precision-")
    loaded, hf = load_as_the_app_does(own, folder.name)
    idx = torch.tensor([PROMPT_IDS])
    # One model per precision: each keeps its decoding weights between generations, as a
    # session that generates again in the same precision does (switching makes them anew).
    own_bf16, loaded_bf16 = copy.deepcopy(own), copy.deepcopy(loaded)
    runs = {
        "transformers float32": lambda: hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=tokens,
                                                    min_new_tokens=tokens, do_sample=False),
        "own model float32": lambda: generate(own, idx, tokens),
        "own model bfloat16": lambda: generate(own_bf16, idx, tokens, precision="bfloat16"),
        "GPT-2 loaded float32": lambda: generate(loaded, idx, tokens),
        "GPT-2 loaded bfloat16": lambda: generate(loaded_bf16, idx, tokens, precision="bfloat16"),
    }
    with torch.inference_mode():
        hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=2, do_sample=False)
    for model, precision in ((own, "float32"), (loaded, "float32"), (own_bf16, "bfloat16"), (loaded_bf16, "bfloat16")):
        generate(model, idx, 2, precision=precision)  # warm-up: kernels, decoding weights
    times: dict[str, list[float]] = {name: [] for name in runs}
    outputs = {}
    print(f"\ngeneration: GPT-2 124M shape, greedy, {tokens} new tokens, {reps} rounds, "
          f"{torch.get_num_threads()} threads; {bf16_matvec.status()}")
    for r in range(reps):
        line = []
        for name, fn in runs.items():
            t0 = bench_train.CLOCK()
            outputs[name] = fn()
            times[name].append(bench_train.CLOCK() - t0)
            line.append(f"{name} {tokens / times[name][-1]:5.1f}")
        print(f"  round {r + 1} (tok/s): " + " | ".join(line), flush=True)
    reference = outputs["transformers float32"]
    for name in ("own model float32", "GPT-2 loaded float32"):
        assert torch.equal(outputs[name], reference), f"{name}: exact greedy tokens differ from transformers'"
    same = {name: float((outputs[name] == reference).float().mean()) for name in runs if "bfloat16" in name}
    print(f"check: exact greedy tokens identical to transformers' (own model and GPT-2 loaded); bfloat16 "
          f"agrees on {', '.join(f'{v:.0%} ({k})' for k, v in same.items())} of the positions")
    print()
    print("| run | tokens/s (median) | x transformers (median of rounds) |")
    print("|---|---:|---:|")
    base = times["transformers float32"]
    for name, ts in times.items():
        ratio = statistics.median(b / t for b, t in zip(base, ts))
        print(f"| {name} | {tokens / statistics.median(ts):.1f} | {ratio:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="training steps a run")
    parser.add_argument("--reps", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--tokens", type=int, default=200, help="generated tokens a run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or the process's CPU time: steadier on a shared host (use --threads 1)")
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--memory-child", choices=["float32", "bfloat16"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        bench_train.CLOCK = time.process_time
    if args.memory_child:
        memory_child(args.memory_child, args.steps)
        return
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{args.clock} clock")
    if not args.skip_training:
        memory_rounds(args.steps, args.threads)
        train_rounds(args.steps, args.reps)
    if not args.skip_generation:
        generation_rounds(args.tokens, args.reps)


if __name__ == "__main__":
    main()
