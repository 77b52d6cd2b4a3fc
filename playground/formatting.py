"""Numbers as the page shows them: sizes in bytes and counts of parameters or characters."""
from __future__ import annotations

from gpt_core.units import format_bytes  # the engine's, so its refusals and the page say sizes alike

__all__ = ["format_bytes", "format_count"]


def format_count(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return str(n)
