"""`python -m gpt_core download` and `import`: OpenAI GPT-2 weights (gpt_core/gpt2/)."""
from __future__ import annotations

import argparse
import sys
import time

from .cli import register


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
