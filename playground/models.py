"""Which models a session can use: its own (trained here or uploaded) and the GPT-2 models
loaded in this process (shared read-only by every session)."""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import torch

from . import generation_copies
from .common import SHARED
from .session import Workspace, WorkspaceError

OWN = "Your model"
NO_MODEL = "None (score with model A only)"  # Model B's first choice in Evaluate
GPT2_PREFIX = "GPT-2 "


def gpt2_key(size: str) -> str:
    return f"{GPT2_PREFIX}{size}"


def model_choices(ws: Workspace) -> list[str]:
    choices = [OWN] if ws.own is not None else []
    return choices + SHARED.keys()


def default_choice(ws: Workspace, *, prefer_own: bool = True) -> str | None:
    choices = model_choices(ws)
    if not choices:
        return None
    if prefer_own or len(choices) == 1:
        return choices[0]
    return choices[1]


def resolve(ws: Workspace, choice: str | None) -> tuple[Any, Any, Any]:
    """(model, tokenizer, config) for a dropdown choice, ready for inference. No choice (a
    dropdown not yet filled) means the session's first model."""
    choice = choice or default_choice(ws)
    if not choice:
        raise WorkspaceError(
            "No model yet: train one in the Train tab, upload a checkpoint there, or load GPT-2 "
            "in the GPT-2 tab."
        )
    if choice == OWN:
        with ws.lock:
            own = ws.own
            if ws.job is not None:
                raise WorkspaceError("Your model is training right now. Stop the run (or wait for "
                                     "it to finish) to use it here, or choose GPT-2.")
            if own is None:
                raise WorkspaceError("You have no model of your own yet: train one in the Train tab "
                                     "or upload a checkpoint there.")
            own.model.eval()  # the trainer may have left it in training mode (dropout on)
            return own.model, own.tokenizer, own.config
    entry = SHARED.get(choice)
    if entry is None:
        raise WorkspaceError(f"{choice} is not loaded on this server (any more). Load it in the "
                             "GPT-2 tab first.")
    model, config, tokenizer = entry
    return model, tokenizer, config


def copies_held(ws: Workspace, choice: str | None, model: Any, dtype: torch.dtype) -> AbstractContextManager:
    """Around a generation with the chosen model (as `resolve` gave it): its copies of the
    weights in `dtype` reserved where the model's weights are, the session's budget for its own
    model, the shared one for a GPT-2 (generation_copies.py)."""
    choice = choice or default_choice(ws)
    if choice == OWN:
        return generation_copies.held(ws.budget, ws.key("model"), model, dtype, model_name="your model", owner=ws.id)
    return generation_copies.held(SHARED.budget, SHARED.budget_key(choice), model, dtype, model_name=choice,
                                  owner=ws.id)
