"""Capture and restore every random number generator a training run draws from.

Exact resume needs them all: torch's CPU generator (dropout, the DataLoader's shuffle seed),
CUDA's, Python's `random`, NumPy's global generator, and any `torch.Generator` a data loader
was given. States are stored as tensors, ints and tuples so `torch.load(weights_only=True)`
reads them back.
"""
from __future__ import annotations

import random
from typing import Any, Iterable

import numpy as np
import torch


def capture_rng_state(generators: Iterable[torch.Generator | None] = ()) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "generators": [None if g is None else g.get_state() for g in generators],
    }


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def restore_rng_state(state: dict[str, Any], generators: Iterable[torch.Generator | None] = ()) -> None:
    """Inverse of `capture_rng_state`. CUDA states are restored only when the same number
    of devices is present (a CPU-only resume of a GPU run keeps the CPU stream exact)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if state.get("python") is not None:
        random.setstate(_as_tuple(state["python"]))
    np_state = state.get("numpy")
    if np_state is not None:
        np.random.set_state((np_state["bit_generator"], np_state["keys"].numpy().astype(np.uint32),
                             np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"]))
    for g, s in zip(generators, state.get("generators") or []):
        if g is not None and s is not None:
            g.set_state(s)
