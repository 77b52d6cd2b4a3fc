"""Numbers from form fields: one rule for every box and slider on the page, and for every API
call that bypasses them. A bad value raises ValueError with a sentence naming the field."""
from __future__ import annotations

import math
from typing import Any

_REQUIRED = object()


def form_number(value: Any, name: str, lo: float, hi: float | None = None, *, whole: bool = False,
                lo_open: bool = False, empty: Any = _REQUIRED) -> Any:
    """`value` (a number, or its text) within [lo, hi] ((lo, hi] with `lo_open`; no upper bound
    when `hi` is None). `whole`: a whole number, returned as an int; else a float. An empty
    field (None or "") gives `empty` where one is given, else a sentence saying what to enter."""
    kind = "a whole number" if whole else "a number"
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    if value is None or value == "":
        if empty is _REQUIRED:
            raise ValueError(f"{name} is empty; enter {kind}.")
        return empty
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float: out of range
        number = math.inf
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {kind}, got {shown}.") from None
    in_range = (math.isfinite(number) and (number > lo if lo_open else number >= lo)
                and (hi is None or number <= hi))
    if not in_range or (whole and number != int(number)):
        fmt = (lambda x: f"{x:,}") if whole else (lambda x: f"{x:g}")
        span = f"above {fmt(lo)}" if lo_open else (f"from {fmt(lo)}" if hi is not None else f"of at least {fmt(lo)}")
        if hi is not None:
            span += f" and at most {fmt(hi)}" if lo_open else f" to {fmt(hi)}"
        raise ValueError(f"{name} must be {kind} {span}, got {shown}.")
    return int(number) if whole else number
