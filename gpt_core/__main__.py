"""`python -m gpt_core COMMAND ...`: the playground's engine from a terminal (see cli.py).

Importing a command's module registers it; the order here is the order `--help` lists them.
"""
from __future__ import annotations

import sys

from .cli import COMMANDS, UsageError, build_parser, main  # noqa: F401
from .cli_train import TRAIN_OPTIONS, _model_setup, _train_config, cmd_train  # noqa: F401
from .cli_eval import cmd_eval, cmd_inspect  # noqa: F401
from .cli_gpt2 import GPT2_COMMANDS, ProgressBar, add_gpt2_commands, cmd_download, cmd_import  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
