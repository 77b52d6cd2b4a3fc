"""`python -m gpt_core train`: a run from a preset, a checkpoint or GPT-2, its events printed."""
from __future__ import annotations

import argparse
import json
import signal
import sys

from .cli import UsageError, _positive_int, _read_text, register


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
    ("--precision", "precision", str, "float32 (exact: the book's numbers), bfloat16 (mixed precision: "
     "bfloat16 products, float32 weights, optimizer and loss), auto (bfloat16 where the CPU or GPU "
     "computes it natively) or tf32 (CUDA)"),
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
    opts.add_argument("--compile", dest="compile", action="store_true", default=None,
                      help="torch.compile the training forward (same events and checkpoints; "
                           "the first steps wait for the compiler)")
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
    for flag in ("shuffle", "compile"):
        if getattr(args, flag, None) is not None:
            given[flag] = getattr(args, flag)
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
        self.last_step = None

    def _clear(self) -> None:
        if self.bar_shown and self.tty:
            sys.stderr.write("\r\033[K")
            self.bar_shown = False

    def __call__(self, event) -> None:
        from .train_events import DoneEvent, StepEvent, event_to_dict, format_event, format_utilisation
        if self.json:
            print(json.dumps(event_to_dict(event), default=str), flush=True)
            return
        if isinstance(event, StepEvent):
            self.last_step = event
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
        if isinstance(event, DoneEvent) and self.last_step is not None and format_utilisation(self.last_step):
            print(f"utilisation: {format_utilisation(self.last_step)}", flush=True)
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
                  f"{config.batch_size * (dist.world_size if dist else 1) * config.grad_accum_steps} windows; "
                  f"precision {trainer.precision.name} ({trainer.precision.reason})"
                  f"{'; training forward compiled' if config.compile else ''}", flush=True)

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
