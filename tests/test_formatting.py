"""The page's number formatting (playground/formatting.py)."""
from __future__ import annotations

from playground.formatting import counted, format_bytes, format_count
from playground.preset_fit import about, duration_words


def test_format_helpers():
    assert format_bytes(512) == "512 B"
    assert format_bytes(2048) == "2.0 KB"
    assert format_bytes(163_009_536 * 4) == "621.8 MB"
    assert format_bytes(5 * 1024**3) == "5.0 GB"
    assert format_count(999) == "999"
    assert format_count(163_009_536) == "163.0M"
    assert format_count(1_557_611_200) == "1.56B"


def test_counts_and_durations_read_as_sentences():
    assert counted(1, "step") == "1 step" and counted(90, "step") == "90 steps"
    assert counted(1, "batch", "batches") == "1 batch" and counted(2_000, "batch", "batches") == "2,000 batches"
    assert about(0.2) == "about 1 s" and about(44.4) == "about 44 s"
    assert duration_words(60) == "1 minute" and duration_words(90) == "1.5 minutes"
    assert duration_words(25 * 60) == "25 minutes" and duration_words(3 * 3600) == "3 hours"


def test_a_size_reads_the_same_in_the_engine_s_refusals_and_on_the_page():
    from gpt_core import checkpoint_limits, units
    from playground import admission, memory

    assert format_bytes is units.format_bytes
    assert checkpoint_limits.format_bytes is memory.format_bytes is admission.format_bytes is units.format_bytes
    budget = memory.MemoryBudget(2 * units.GB, headroom_bytes=512 * units.MB)
    assert "needs about 3.0 GB and 1.5 GB is free now (1.5 GB in all" in budget.refusal(3 * units.GB, what="a model")
    assert "needs about 640.0 MB" in budget.refusal(640 * units.MB, what="a model")
