"""Numbers as the page shows them: sizes in bytes, counts of parameters or characters, and
counts of things with their noun ("1 step", "90 steps")."""
from __future__ import annotations

from gpt_core.units import format_bytes  # the engine's, so its refusals and the page say sizes alike

from .i18n import tr

__all__ = ["format_bytes", "format_count"]


def format_count(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return str(n)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and its noun, singular for one: counted(1, "step") is "1 step", counted(2, "batch", "batches").
    In the session's language: "{n} step" and "{n} steps" are entries of the table (playground/zh/train.py)."""
    return tr("{n} " + (noun if n == 1 else plural or noun + "s"), n=f"{n:,}")
