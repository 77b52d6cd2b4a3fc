"""Exact or fast, said out loud (DESIGN decision 8): which arithmetic a run uses, and why.

- "float32": every product in float32, the book's numbers bit for bit (the default).
- "bfloat16": mixed precision. Matrix products (and attention) in bfloat16 under
  `torch.autocast`; the master weights, AdamW's moments, the residual stream, the loss and its
  log-sum-exp stay float32, so nothing the optimizer accumulates is rounded to 8 bits of
  mantissa. Generation runs on a bfloat16 copy of the weights with a bfloat16 KV cache.
- "tf32": float32 tensors whose products a CUDA GPU computes in TF32 (Ampere and later);
  elsewhere it is float32.
- "auto": bfloat16 where the hardware computes it natively -- a CPU with AVX512_BF16 or AMX,
  a CUDA GPU with `torch.cuda.is_bf16_supported()` -- and float32 everywhere else, where
  bfloat16 would be emulated and slower.

What the hardware is comes in as a `Hardware` description, so the choice is a pure function
that tests can feed any CPU or GPU; `hardware_of(device)` describes this machine's.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Iterable

import torch

from .config import PRECISIONS, check_precision  # noqa: F401 (the names of precision live with TrainConfig)
# CUDA compute capability from which TF32 and native bfloat16 exist (Ampere).
AMPERE = (8, 0)


@dataclass(frozen=True)
class Hardware:
    """What decides the precision: the device type and, for a CPU, torch's capability string
    (`torch.backends.cpu.get_cpu_capability()`: "AVX2", "AVX512", ...) and its /proc/cpuinfo
    flags; for a CUDA GPU, whether it computes bfloat16 and its compute capability."""
    device_type: str
    cpu_capability: str = ""
    cpu_flags: frozenset[str] = frozenset()
    cuda_bf16: bool = False
    cuda_capability: tuple[int, int] = (0, 0)
    name: str = ""


@dataclass(frozen=True)
class Precision:
    """The arithmetic a run uses: `name` ("float32", "tf32" or "bfloat16"), what was asked
    for, and a sentence saying why this one."""
    name: str
    requested: str
    reason: str

    @property
    def exact(self) -> bool:
        """The book's numbers: float32 products throughout."""
        return self.name == "float32"

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of matrix products (and of generation's weights and KV cache)."""
        return torch.bfloat16 if self.name == "bfloat16" else torch.float32


def cpu_bf16_instructions(capability: str, flags: Iterable[str]) -> str | None:
    """The CPU's native bfloat16 instructions, "AMX" or "AVX512_BF16" (x86) or "BF16" (Arm),
    or None. torch's capability string names AVX512 but not its BF16 extension, so the
    kernel's flags decide where torch does not say."""
    cap, flags = capability.upper(), {f.lower() for f in flags}
    if "AMX" in cap or {"amx_bf16", "amx_tile"} <= flags:
        return "AMX"
    if "AVX512_BF16" in cap or "avx512_bf16" in flags:
        return "AVX512_BF16"
    if "bf16" in flags:  # Arm: the Features line of /proc/cpuinfo (Neoverse V1, Graviton 3, ...)
        return "BF16"
    return None


@functools.lru_cache(maxsize=1)
def read_cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The first "flags" (x86) or "Features" (Arm) line of /proc/cpuinfo; empty elsewhere."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def hardware_of(device: torch.device | str) -> Hardware:
    """This machine's description for `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return Hardware("cuda", cuda_bf16=bool(torch.cuda.is_bf16_supported()),
                        cuda_capability=tuple(torch.cuda.get_device_capability(index)),
                        name=torch.cuda.get_device_name(index))
    if device.type == "cpu":
        get = getattr(torch.backends.cpu, "get_cpu_capability", None)
        return Hardware("cpu", cpu_capability=get() if get else "", cpu_flags=read_cpu_flags(), name="this CPU")
    return Hardware(device.type, name=device.type.upper())


def resolve_precision(requested: str, hardware: Hardware) -> Precision:
    """The precision a run asking for `requested` uses on `hardware`, with the reason."""
    check_precision(requested)
    kind = hardware.device_type
    if kind == "cuda":
        native = hardware.cuda_bf16
        where = f"the GPU ({hardware.name})" if hardware.name else "this GPU"
    elif kind == "cpu":
        instructions = cpu_bf16_instructions(hardware.cpu_capability, hardware.cpu_flags)
        native = instructions is not None
        where = f"this CPU ({instructions})" if native else "this CPU"
    else:
        native, where = False, f"{hardware.name or kind}"
    if requested == "float32":
        return Precision("float32", requested, "float32 was asked for: the book's numbers, bit for bit")
    if requested == "tf32":
        if kind == "cuda" and hardware.cuda_capability >= AMPERE:
            return Precision("tf32", requested, f"TF32 was asked for: float32 tensors, products in TF32 on {where}")
        return Precision("float32", requested, "TF32 was asked for, but only NVIDIA GPUs from Ampere on compute "
                                               "it; this run computes float32")
    if requested == "bfloat16":
        if native:
            return Precision("bfloat16", requested, f"bfloat16 was asked for; {where} computes it natively")
        return Precision("bfloat16", requested, f"bfloat16 was asked for; {where} has no native bfloat16 "
                                                "arithmetic, so it is emulated and may be slower than float32")
    if native:  # auto
        return Precision("bfloat16", requested, f"auto: {where} computes bfloat16 natively, about twice "
                                                "the float32 speed of its matrix products")
    if kind == "cpu":
        why = "this CPU has no bfloat16 instructions (AVX512_BF16 or AMX), so float32 is faster"
    elif kind == "cuda":
        why = f"{where} does not compute bfloat16 natively, so float32 is faster"
    else:
        why = f"bfloat16 is not used on {where}"
    return Precision("float32", requested, f"auto: {why}")


def precision_for(requested: str, device: torch.device | str) -> Precision:
    """`resolve_precision` for this machine's `device`."""
    return resolve_precision(requested, hardware_of(device))


def autocast(precision: Precision, device: torch.device | str) -> contextlib.AbstractContextManager:
    """Where a forward pass and its loss run: bfloat16 products under torch.autocast for a
    bfloat16 run (weights stay float32; each product casts its inputs), else nothing."""
    if precision.name != "bfloat16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast gives products here, or None outside autocast (float32 runs)."""
    if not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)
