"""Which device a run uses and how a run uses it: batches copied from pinned memory without
waiting, TF32 products only when not reproducing the book, and the attention kernels that keep
the book's dropout masks in an exact run. Each choice is a function of a device description,
so the CUDA rules are tested on machines without a GPU.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .precision import Precision


def select_device(preference: str = "auto") -> torch.device:
    """"auto": CUDA, then Apple's MPS, then the CPU. Asking for a missing device is an error."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but Apple's MPS is not available; use 'auto' or 'cpu'")
    return device


# --- copies to the device ---------------------------------------------------------------------
@dataclass(frozen=True)
class Transfer:
    """How a batch reaches the device: on CUDA from page-locked memory, asynchronously (the
    copy overlaps the previous step's kernels); elsewhere a plain `.to`, which is a no-op on
    the CPU."""
    pin: bool
    non_blocking: bool


def transfer_for(device: torch.device | str) -> Transfer:
    cuda = torch.device(device).type == "cuda"
    return Transfer(pin=cuda, non_blocking=cuda)


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`tensor.to(device)`, from pinned memory without blocking where that helps (CUDA)."""
    device = torch.device(device)
    if tensor.device == device or (device.type == tensor.device.type and device.index is None):
        return tensor
    how = transfer_for(device)
    if how.pin and tensor.device.type == "cpu" and not tensor.is_pinned():
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=how.non_blocking)


# --- products and attention kernels ---------------------------------------------------------
def allows_tf32(precision: Precision, device_type: str) -> bool:
    """TF32 for float32 products: on CUDA, in every run that is not reproducing the book (the
    products bfloat16 autocast leaves in float32 gain too); never in an exact run."""
    return device_type == "cuda" and precision.name in ("tf32", "bfloat16")


def _set_tf32(enabled: bool) -> None:
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9: the per-backend setting
        matmul.fp32_precision = "tf32" if enabled else "ieee"
        torch.backends.cudnn.conv.fp32_precision = "tf32" if enabled else "ieee"
    else:
        matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def _get_tf32() -> bool:
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        return matmul.fp32_precision == "tf32"
    return bool(matmul.allow_tf32)


def attention_backends(precision: Precision, device_type: str, dropout: bool) -> list | None:
    """SDPA kernels a training step may use, or None for PyTorch's own choice (on CUDA: flash
    attention for bfloat16, then memory-efficient). An exact float32 step with dropout on CUDA
    keeps the math kernel, whose dropout is the book's `dropout(attn_weights)` draw; the fused
    kernels draw their masks from their own generator. The CPU's kernels are left to torch:
    with dropout it already takes the math kernel."""
    if device_type != "cuda" or not (precision.exact and dropout):
        return None
    from torch.nn.attention import SDPBackend
    return [SDPBackend.MATH]


@contextlib.contextmanager
def step_settings(precision: Precision, device: torch.device | str, *, dropout: bool = False):
    """The process-wide settings of a step on `device`: TF32 on or off and the attention
    kernels, restored afterwards. (TF32 is one switch per process: runs sharing a process
    and a GPU at the same moment share it too.)"""
    device_type = torch.device(device).type
    if device_type != "cuda":
        yield
        return
    before = _get_tf32()
    _set_tf32(allows_tf32(precision, device_type))
    backends = attention_backends(precision, device_type, dropout)
    try:
        if backends is None:
            yield
        else:
            from torch.nn.attention import sdpa_kernel
            with sdpa_kernel(backends):
                yield
    finally:
        _set_tf32(before)
