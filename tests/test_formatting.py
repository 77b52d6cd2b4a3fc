"""The page's number formatting (playground/formatting.py)."""
from __future__ import annotations

from playground.formatting import format_bytes, format_count


def test_format_helpers():
    assert format_bytes(512) == "512 B"
    assert format_bytes(2048) == "2.0 KB"
    assert format_bytes(163_009_536 * 4) == "621.8 MB"
    assert format_bytes(5 * 1024**3) == "5.0 GB"
    assert format_count(999) == "999"
    assert format_count(163_009_536) == "163.0M"
    assert format_count(1_557_611_200) == "1.56B"
