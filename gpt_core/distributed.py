"""The trainer beyond one process: torchrun, DistributedDataParallel, a distributed sampler.

`torchrun --nproc_per_node=N -m gpt_core train ...` starts N copies of the command line;
each calls `init_distributed()`, which reads torchrun's environment (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and joins the group: NCCL on GPUs, gloo on CPUs.
Every rank trains on its own share of each epoch's windows; gradients, losses and
evaluations are averaged over ranks; rank 0 alone writes checkpoints and prints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from .corpus import split_text
from .data import GPTDatasetV1


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_preference: str = "auto") -> tuple[DistContext, torch.device]:
    """Join the process group torchrun set up; returns the context and this rank's device."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_preference in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, backend), device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel
    # Our only buffers are the constant causal masks: no need to broadcast them every step.
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   broadcast_buffers=False)


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / dist.get_world_size()


def all_reduce_max(x: float, device: torch.device) -> float:
    t = torch.tensor([x], dtype=torch.float32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def all_gather_object(obj: Any) -> list[Any]:
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def distributed_loaders(text: str, tokenizer, ctx: DistContext, *, batch_size: int, max_length: int,
                        stride: int | None = None, train_ratio: float = 0.9, shuffle: bool = True,
                        seed: int = 0) -> tuple[DataLoader, DataLoader]:
    """The book's loaders with each rank reading every world_size-th window: rank r of N
    gets windows r, r+N, ... of the (per-epoch shuffled) order, `batch_size` at a time."""
    stride = stride or max_length
    train_text, val_text = split_text(text, train_ratio)
    train_ds = GPTDatasetV1(train_text, tokenizer, max_length, stride)
    val_ds = GPTDatasetV1(val_text, tokenizer, max_length, stride)
    train_sampler = DistributedSampler(train_ds, num_replicas=ctx.world_size, rank=ctx.rank,
                                       shuffle=shuffle, seed=seed)
    val_sampler = DistributedSampler(val_ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=False)
    return (DataLoader(train_ds, batch_size=batch_size, sampler=train_sampler, drop_last=True),
            DataLoader(val_ds, batch_size=batch_size, sampler=val_sampler, drop_last=False))
