"""Byte sizes, and how a sentence says one: written once for the engine's refusals (a
checkpoint too large to read) and the page's figures and messages (playground/formatting.py,
the server's memory budget), so a size reads the same wherever it is shown."""
from __future__ import annotations

KB = 1 << 10
MB = 1 << 20
GB = 1 << 30


def format_bytes(n: float) -> str:
    """512 -> "512 B", 2048 -> "2.0 KB", 652_038_144 -> "621.8 MB"; GB is the largest unit."""
    for unit in ("B", "KB", "MB"):
        if abs(n) < 1024:
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
