"""The training queue's admission check: a run starts only when its memory fits the budget.

The head of the queue, with a slot free, reserves what its run will take at its peak (weights,
AdamW state, a step's activations from batch x context) under its session's model key. Idle
sessions are spilled to disk to make room (the budget's `make_room`). When that is not enough
the run waits, and its student reads why; a run that could not fit even once every other run
has ended is let through, so that building it is refused with the budget's sentence instead of
waiting forever.
"""
from __future__ import annotations

from typing import Any

from gpt_core.units import format_bytes


def planned_memory(plan: Any) -> tuple[Any, int] | None:
    """(model config, peak training bytes) of a queued run: a `RunSpec` (Train) or the
    `OwnedModel` it resumes (Resume); None when the plan says nothing about memory."""
    if hasattr(plan, "train") and hasattr(plan, "model"):  # RunSpec
        config, batch = plan.model, plan.train.batch_size
    elif getattr(plan, "trainer", None) is not None:  # OwnedModel
        config, batch = plan.config, plan.trainer.config.batch_size
    else:
        return None
    return config, config.training_memory_bytes(batch, config.context_length)


def admit_within_budget(turn: Any) -> bool | str:
    ws = turn.owner
    budget = getattr(ws, "budget", None)
    planned = planned_memory(turn.plan)
    if budget is None or planned is None:
        return True
    config, need = planned
    if budget.try_reserve(ws.key("model"), need, what="the run about to start", owner=ws.id):
        return True
    if not budget.could_ever_fit(need, pinned=budget.held_by("shared:")):
        return True  # building it raises MemoryBudgetError: a refusal that says what fits
    free = budget.available + budget.held(ws.key("model"))
    return (f"this run needs about {format_bytes(need)} and {format_bytes(free)} is free; it starts as soon "
            "as other students' runs end and their memory is given back.")
