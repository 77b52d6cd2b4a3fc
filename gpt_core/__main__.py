"""`python -m gpt_core COMMAND ...`: the playground's engine from a terminal.

    python -m gpt_core train --text the-verdict.txt --preset demo --epochs 10 --out runs/demo
    python -m gpt_core train --text the-verdict.txt --resume runs/demo/checkpoint.pt --epochs 20
    python -m gpt_core eval --checkpoint runs/demo/checkpoint.pt --text the-verdict.txt
    torchrun --nproc_per_node=2 -m gpt_core train --text the-verdict.txt --out runs/ddp

A command is two functions, registered with `register`: one adding its options to an
argparse parser, one running it and returning the exit code. Bad input exits with code 2
and a one-line message before any work; a failed run exits with 1.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from dataclasses import dataclass
from typing import Callable


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None],
             run: Callable[[argparse.Namespace], int]) -> None:
    COMMANDS[name] = Command(help, add_arguments, run)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" only where there is a default worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpt_core", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help,
                           formatter_class=_HelpFormatter)
        cmd.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


# --- shared helpers -----------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _read_text(path: str) -> str:
    from .corpus import CorpusError, read_text_file
    try:
        return read_text_file(path).text
    except FileNotFoundError:
        raise UsageError(f"no such text file: {path}") from None
    except (CorpusError, OSError) as e:
        raise UsageError(f"{path}: {e}") from None


# --- train ----------------------------------------------------------------------------------------
# (option, TrainConfig field, type, help). Defaults come from the preset (gpt_core.config.PRESETS,
# the table the page reads too), from TrainConfig (the book's run) with --gpt2, or, on
# --resume, from the checkpoint: only options given on the command line change them.
TRAIN_OPTIONS = [
    ("--epochs", "num_epochs", int, "passes over the training text"),
    ("--batch-size", "batch_size", int, "windows per batch (per process under torchrun)"),
    ("--lr", "learning_rate", float, "AdamW learning rate (the peak with warmup/cosine)"),
    ("--weight-decay", "weight_decay", float, "AdamW weight decay"),
    ("--eval-freq", "eval_freq", int, "evaluate every N optimizer steps"),
    ("--eval-iter", "eval_iter", int, "batches per evaluation"),
    ("--start-context", "start_context", str, "prompt of the greedy sample after each epoch"),
    ("--sample-tokens", "sample_tokens", int, "tokens of that sample (0: no sample)"),
    ("--lr-schedule", "lr_schedule", str, "'constant' or 'cosine' (decay to --min-lr)"),
    ("--warmup-steps", "warmup_steps", int, "linear warmup steps from --initial-lr"),
    ("--initial-lr", "initial_lr", float, "learning rate at the start of warmup (default lr/10)"),
    ("--min-lr", "min_lr", float, "learning rate at the end of cosine decay (default lr/10)"),
    ("--grad-clip", "grad_clip", float, "clip the global gradient norm to this"),
    ("--label-smoothing", "label_smoothing", float, "label smoothing of the training loss"),
    ("--grad-accum", "grad_accum_steps", int, "micro-batches per optimizer step"),
    ("--drop-rate", "drop_rate", float, "dropout rate (overrides the model's)"),
    ("--seed", "seed", int, "random seed of initialisation, dropout and shuffling"),
    ("--device", "device", str, "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps"),
    ("--threads", "threads", int, "CPU threads for torch"),
    ("--early-stopping", "early_stopping_patience", int, "stop after N evaluations without a new best val loss"),
    ("--max-steps", "max_steps", int, "stop after this many optimizer steps"),
    ("--stride", "stride", int, "sliding-window stride (default: the context length)"),
    ("--train-ratio", "train_ratio", float, "share of the text used for training"),
    ("--checkpoint-every", "checkpoint_every", int, "also save every N steps (always: each epoch, the end)"),
    ("--batching", "batching", str, "'epochs' over sliding windows (the book) or 'random_windows': "
     "--max-steps iterations over random windows (the BabyGPT notebook; --preset babygpt sets it)"),
]


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from .config import PRESETS, TrainConfig
    defaults = TrainConfig()
    p.add_argument("--text", required=True, metavar="FILE", help="the text to train on (any encoding)")
    start = p.add_argument_group("model (a new one from a preset, or a checkpoint, or GPT-2)")
    start.add_argument("--preset", default="demo", choices=list(PRESETS),
                       help="model and its training settings (gpt_core.config.PRESETS, as on the page)")
    start.add_argument("--tokenizer", choices=["gpt2", "char"], help="default: the preset's")
    for flag, field in (("--context-length", "context_length"), ("--emb-dim", "emb_dim"),
                        ("--n-layers", "n_layers"), ("--n-heads", "n_heads")):
        start.add_argument(flag, dest=field, type=_positive_int, metavar="N", help=f"override the preset's {field}")
    start.add_argument("--resume", metavar="CKPT", help="continue this checkpoint's run (or start from "
                       "the weights of the book's model.pth)")
    start.add_argument("--gpt2", metavar="SOURCE", help="start from OpenAI GPT-2 weights: a size "
                       "(124M, 355M, ...) or a folder; --context-length crops its 1024 positions")
    opts = p.add_argument_group("training (defaults: the preset's, shown here the book's chapter 5 run "
                                "that --preset book-124M and --gpt2 use; with --resume: the checkpoint's "
                                "options, changed only where given)")
    for flag, field, kind, text in TRAIN_OPTIONS:
        default = getattr(defaults, field)
        if default is not None:
            text += f" (default: {default})"
        elif "default" not in text:
            text += " (default: off)"
        opts.add_argument(flag, dest=field, type=kind, default=None, help=text,
                          metavar={int: "N", float: "X", str: "TEXT"}[kind])
    opts.add_argument("--no-shuffle", dest="shuffle", action="store_false", default=None,
                      help="keep the training windows in text order")
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help="folder for checkpoint.pt (nothing is saved without it)")
    out.add_argument("--log-every", type=int, default=0, metavar="N", help="also print every N-th step as a line")
    out.add_argument("--json", action="store_true", help="print every event as a JSON line, no progress bar")


def _train_config(args: argparse.Namespace, base):
    from .config import TrainConfig
    given = {field: getattr(args, field) for _, field, _, _ in TRAIN_OPTIONS if getattr(args, field) is not None}
    if base is None and not getattr(args, "gpt2", None) and not getattr(args, "resume", None):
        from .config import get_preset  # a new model from a preset trains as the preset says
        base = get_preset(args.preset).train_config()
    if args.shuffle is not None:
        given["shuffle"] = args.shuffle
    try:
        return (base or TrainConfig()).replace(**given)
    except ValueError as e:
        flag = next((f for f, field, _, _ in TRAIN_OPTIONS if field == str(e).split()[0]), None)
        raise UsageError(f"{flag}: {e}" if flag else str(e)) from None


def _model_setup(args: argparse.Namespace, text: str):
    """(model_config, tokenizer, model) for a new run from a preset or GPT-2."""
    from .config import get_preset
    from .tokenizers import get_tokenizer
    overrides = {k: getattr(args, k) for k in ("context_length", "emb_dim", "n_layers", "n_heads")
                 if getattr(args, k) is not None}
    if args.gpt2:
        from .gpt2 import load_gpt2
        try:
            model, cfg, tokenizer = load_gpt2(args.gpt2)
        except Exception as e:  # GPT2LoadError and friends: say what went wrong, exit 2
            raise UsageError(f"--gpt2 {args.gpt2}: {e}") from None
        window = overrides.pop("context_length", cfg.context_length)
        if overrides:
            raise UsageError("--gpt2 fixes the model's width and depth; drop --emb-dim/--n-layers/--n-heads")
        if window > cfg.context_length:
            raise UsageError(f"--context-length {window}: GPT-2 reads at most {cfg.context_length} tokens")
        if window < cfg.context_length:  # as the page does: the same weights, fewer positions
            from .model import crop_context
            model = crop_context(model, window)
            cfg = model.cfg
        return cfg, tokenizer, model
    preset = get_preset(args.preset)
    tokenizer = get_tokenizer(args.tokenizer or preset.tokenizer, text)
    cfg = preset.config
    if tokenizer.name == "char":
        overrides["vocab_size"] = tokenizer.n_vocab
    try:
        return cfg.replace(**overrides), tokenizer, None
    except ValueError as e:
        raise UsageError(str(e)) from None


class _Printer:
    """Events as lines on stdout, a progress bar on stderr (redrawn in place on a terminal)."""

    def __init__(self, *, json_lines: bool, log_every: int):
        self.json, self.log_every = json_lines, log_every
        self.tty = sys.stderr.isatty()
        self.bar_shown, self.last_pct = False, -1

    def _clear(self) -> None:
        if self.bar_shown and self.tty:
            sys.stderr.write("\r\033[K")
            self.bar_shown = False

    def __call__(self, event) -> None:
        from .train_events import StepEvent, event_to_dict, format_event
        if self.json:
            print(json.dumps(event_to_dict(event), default=str), flush=True)
            return
        if isinstance(event, StepEvent):
            done = event.step + 1
            pct = int(100 * done / max(1, event.total_steps))
            if self.log_every and done % self.log_every == 0:
                self._clear()
                print(format_event(event), flush=True)
            if self.tty or pct // 5 != self.last_pct // 5 or done == event.total_steps:
                filled = pct * 30 // 100
                bar = f"[{'#' * filled}{'.' * (30 - filled)}] {pct:3d}% {format_event(event)}"
                sys.stderr.write(("\r\033[K" + bar) if self.tty else bar + "\n")
                sys.stderr.flush()
                self.bar_shown, self.last_pct = True, pct
            return
        self._clear()
        print(format_event(event), flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import CheckpointError, read_checkpoint
    from .distributed import init_distributed, launched_by_torchrun, shutdown
    from .prepare import prepare_training
    from .train_events import ErrorEvent, StoppedEvent

    if args.resume and args.gpt2:
        raise UsageError("choose one start: --resume or --gpt2")
    ckpt = None
    if args.resume:
        try:
            ckpt = read_checkpoint(args.resume)
        except CheckpointError as e:
            raise UsageError(str(e)) from None
    config = _train_config(args, ckpt.train_config if ckpt is not None else None)
    text = _read_text(args.text)
    if ckpt is not None:
        model_config, tokenizer, model = None, ckpt.tokenizer(), None
        if tokenizer is None:
            model_config, tokenizer, _ = _model_setup(args, text)  # the book's files name none
    else:
        model_config, tokenizer, model = _model_setup(args, text)

    dist, device = None, None
    if launched_by_torchrun():
        dist, device = init_distributed(config.device)
    try:
        try:
            trainer = prepare_training(text, tokenizer=tokenizer, model_config=model_config, config=config,
                                       model=model, resume=ckpt, checkpoint_dir=args.out, dist=dist, device=device)
        except ValueError as e:  # CheckpointError and CorpusError are ValueErrors too
            raise UsageError(str(e)) from None
        main_rank = dist is None or dist.is_main
        show = _Printer(json_lines=args.json, log_every=args.log_every) if main_rank else (lambda e: None)
        if main_rank and not args.json:
            n = sum(p.numel() for p in trainer.model.parameters())
            print(f"training {n:,} parameters on {trainer.device} ({torch.get_num_threads()} threads"
                  f"{f', {dist.world_size} processes' if dist else ''}): {trainer.total_steps} steps of "
                  f"{config.batch_size * (dist.world_size if dist else 1) * config.grad_accum_steps} windows", flush=True)

        def on_signal(signum, frame):  # first Ctrl-C: stop after this step (and save); second: abort
            trainer.request_stop()
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if main_rank:
                print("\nstopping after this step (Ctrl-C again to abort)", file=sys.stderr, flush=True)

        previous = signal.signal(signal.SIGINT, on_signal)
        code = 0
        try:
            for event in trainer.run():
                show(event)
                if isinstance(event, ErrorEvent) or (isinstance(event, StoppedEvent) and event.cause == "nan"):
                    code = 1
        finally:
            signal.signal(signal.SIGINT, previous)
        if main_rank and not args.json and args.out is None:
            print("(no --out given: nothing was saved)", flush=True)
        return code
    finally:
        shutdown()


register("train", "pretrain a GPT on a text, printing evaluations and samples", _add_train_args, cmd_train)


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


# --- download / import: OpenAI GPT-2 weights (gpt_core/gpt2/) -------------------------------------
class ProgressBar:
    """A one-line progress bar on a terminal (one line per file otherwise)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._start = time.monotonic()

    def __call__(self, p) -> None:  # p: gpt_core.gpt2.DownloadProgress
        now = time.monotonic()
        if p.status in ("retrying", "waiting"):
            self._line(f"{p.file}: {p.message}", end=True)
        elif p.status in ("done", "skipped"):
            self._line(f"{p.file:32s} {_mb(p.file_done):>10s}  {'already here' if p.status == 'skipped' else 'ok'}", end=True)
        elif self.tty and now - self._last > 0.1:
            self._last = now
            frac = p.file_done / p.file_total if p.file_total else 0.0
            rate = p.done / max(now - self._start, 1e-6)
            total = f"/{_mb(p.file_total)}" if p.file_total else ""
            self._line(f"{p.file:32s} [{'#' * int(frac * 30):30s}] {_mb(p.file_done)}{total}  {_mb(rate)}/s")

    def _line(self, text: str, end: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if end else ""))
        elif end:
            self.stream.write(text + "\n")
        self.stream.flush()


def _mb(n: float | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def _add_models_dir(p: argparse.ArgumentParser) -> None:
    from .gpt2 import default_models_dir

    p.add_argument("--models-dir", default=str(default_models_dir()),
                   help="where models live ($GPT2_MODELS_DIR sets the default)")


def _add_download_args(p: argparse.ArgumentParser) -> None:
    from .config import GPT2_SIZES

    p.add_argument("size", choices=list(GPT2_SIZES), help="which GPT-2")
    _add_models_dir(p)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds without data before retrying")
    p.add_argument("--retries", type=int, default=5, help="retries per file (each resumes)")
    p.add_argument("--no-cache", action="store_true", help="do not convert to the fast-loading cache afterwards")
    p.add_argument("--base-url", action="append", default=None, metavar="URL",
                   help="a mirror holding SIZE/FILE (e.g. a classroom server); repeat to add more; "
                        "replaces OpenAI's storage and the book's mirror")


def _add_import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="+", help="a folder in the release layout, its files, or a model.safetensors")
    p.add_argument("--name", default=None, help="folder name under --models-dir (default: the size, e.g. 124M)")
    _add_models_dir(p)


def cmd_download(args: argparse.Namespace) -> int:
    """Exit 0 with the folder printed; 1 if the download or the conversion failed."""
    from .gpt2 import DownloadError, GPT2LoadError, download_gpt2, prepare_cache

    try:
        folder = download_gpt2(args.size, args.models_dir, progress=ProgressBar(), timeout=args.timeout,
                               retries=args.retries, base_urls=args.base_url)
        if not args.no_cache:
            print("converting to the fast-loading cache (TensorFlow, once) ...", file=sys.stderr, flush=True)
            prepare_cache(folder, verified=True)
    except (DownloadError, GPT2LoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(folder)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Exit 0 with the folder printed; 2 if the source is not usable GPT-2 weights."""
    from .gpt2 import GPT2LoadError, import_gpt2

    source = args.source[0] if len(args.source) == 1 else args.source
    try:
        folder = import_gpt2(source, models_dir=args.models_dir, name=args.name)
    except (GPT2LoadError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(folder)
    return 0


GPT2_COMMANDS = (
    ("download", "download OpenAI's GPT-2 weights (resumable, verified) and prepare them for fast loading",
     _add_download_args, cmd_download),
    ("import", "import GPT-2 weights from a folder, its files, or a transformers model.safetensors (offline)",
     _add_import_args, cmd_import),
)
for _name, _help, _add, _run in GPT2_COMMANDS:
    register(_name, _help, _add, _run)


def add_gpt2_commands(subparsers) -> None:
    """The GPT-2 commands on any argparse subparsers object."""
    for name, text, add, run in GPT2_COMMANDS:
        p = subparsers.add_parser(name, help=text, description=text)
        add(p)
        p.set_defaults(func=run)


if __name__ == "__main__":
    sys.exit(main())
