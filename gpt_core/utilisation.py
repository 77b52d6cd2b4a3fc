"""How much of the machine a training run uses: achieved FLOP/s against a measured peak.

FLOPs per token come from the model's shape, counted as nanoGPT's `estimate_mfu` and nanochat
count them: 6 per weight that takes part in a matrix product (2 forward, 4 backward) plus the
attention scores and their weighted sum, 12 * layers * heads * head_dim * T. Embedding lookups
are no products and are left out; a head tied to the embedding is a product and counts.

The peak is not a datasheet figure: it is a short square matrix multiply in the run's
precision on the run's device, timed once per process (a server measures it once for every
student), so "share of peak" reads the same on a laptop, a 2-core Space and an H200.
"""
from __future__ import annotations

import threading
import time

import torch

from .config import GPTConfig
from .device import step_settings
from .precision import Precision


def flops_per_token(cfg: GPTConfig, context_length: int | None = None) -> float:
    """Training FLOPs per token (forward and backward) of a GPTModel of shape `cfg`, reading
    `context_length` tokens at a time (default: its context)."""
    T = context_length or cfg.context_length
    embeddings = cfg.vocab_size * cfg.emb_dim + cfg.context_length * cfg.emb_dim
    in_products = cfg.num_parameters() - embeddings + (cfg.vocab_size * cfg.emb_dim if cfg.tie_weights else 0)
    return 6.0 * in_products + 12.0 * cfg.n_layers * cfg.n_heads * cfg.head_dim * T


_PEAKS: dict[tuple[str, str], float] = {}
_PEAKS_LOCK = threading.Lock()


def measure_matmul_flops(device: torch.device | str, precision: Precision, *, size: int | None = None,
                         seconds: float = 0.2) -> float:
    """FLOP/s of the fastest of repeated `size` x `size` matrix products in `precision`."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    n = size or (8192 if cuda else 1024)
    # Its own generator: the probe must not move the global RNG a seeded run draws from.
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.rand(n, n, generator=g, device=device).to(precision.dtype)
    b = torch.rand(n, n, generator=g, device=device).to(precision.dtype)
    best, spent, runs = float("inf"), 0.0, 0
    with step_settings(precision, device), torch.no_grad():
        torch.mm(a, b)  # warm-up: kernel selection, first-touch of the output
        while runs < 3 or spent < seconds:
            if cuda:
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            torch.mm(a, b)
            if cuda:
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            best, spent, runs = min(best, dt), spent + dt, runs + 1
    return 2.0 * n ** 3 / best


def peak_flops(device: torch.device | str, precision: Precision) -> float:
    """This process's measured peak for `precision` on `device`, probed on first use."""
    key = (str(torch.device(device)), precision.name)
    with _PEAKS_LOCK:  # one probe per key, even when several runs start at once
        if key not in _PEAKS:
            _PEAKS[key] = measure_matmul_flops(device, precision)
        return _PEAKS[key]


def format_flops(flops_per_second: float) -> str:
    """1.23e11 -> "123 GFLOP/s"."""
    for unit, scale in (("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("MFLOP/s", 1e6)):
        if flops_per_second >= scale:
            value = flops_per_second / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{flops_per_second:.0f} FLOP/s"
