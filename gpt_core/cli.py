"""`python -m gpt_core COMMAND ...`: the playground's engine from a terminal.

    python -m gpt_core train --text the-verdict.txt --preset demo --epochs 10 --out runs/demo
    python -m gpt_core train --text the-verdict.txt --resume runs/demo/checkpoint.pt --epochs 20
    python -m gpt_core eval --checkpoint runs/demo/checkpoint.pt --text the-verdict.txt
    torchrun --nproc_per_node=2 -m gpt_core train --text the-verdict.txt --out runs/ddp

A command is two functions, registered with `register`: one adding its options to an
argparse parser, one running it and returning the exit code (cli_train.py, cli_eval.py,
cli_gpt2.py; `__main__` imports them in the order `--help` lists them). Bad input exits with
code 2 and a one-line message before any work; a failed run exits with 1.
"""
from __future__ import annotations

import argparse
import sys
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
