"""Data parallel training under torchrun: process group setup, rank helpers and batch sharding.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; with them, `setup` joins the process group (NCCL on
GPUs, gloo on the CPU) and pins each rank to its own GPU. Without them every helper behaves as a
single process, so the same code runs with and without a launcher.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def launched() -> bool:
    """True when a launcher (torchrun, accelerate) started several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def env_rank() -> int:
    """This process's rank before the process group exists (for locks and printing in the CLI)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def setup(device: str) -> str:
    """Join the process group when launched by torchrun; return the device this rank trains on."""
    if not launched():
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast(value: T) -> T:
    """Rank 0's value on every rank (any picklable object)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> list[Any]:
    """Every rank's value, in rank order, on every rank."""
    if not active():
        return [value]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Summed over ranks, in place (no host sync: the collective is queued on the device)."""
    if active():
        dist.all_reduce(tensor)
    return tensor


def shard(batch: T, index: int, parts: int) -> T:
    """Rows [start, end) of every tensor in a batch dataclass: this rank's contiguous part of the global batch.

    Every rank builds the same global batch (same seed, same step), so the shards partition it and
    the ranks together see exactly what one process would.
    """
    if parts == 1:
        return batch
    values = {}
    for f in dataclasses.fields(batch):
        value = getattr(batch, f.name)
        if torch.is_tensor(value):
            rows = value.shape[0]
            start, end = rows * index // parts, rows * (index + 1) // parts
            value = value[start:end]
        values[f.name] = value
    return type(batch)(**values)
