"""Batches prepared on a background thread (on GPUs), in step order, so tokenising, masking, collating
and the copy to the device overlap the training step instead of preceding it.

One producer walks the steps in order, so the batches (and a resumed run's batches) are exactly the
ones a plain loop would draw; only their timing changes.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Any, Iterator

import torch

from hxtool.training.distributed import shard

_DONE = object()


def to_device(batch: Any, device: torch.device) -> Any:
    """Every tensor of a batch dataclass on `device` (pinned and asynchronous when it is a GPU)."""
    values = {}
    for f in dataclasses.fields(batch):
        value = getattr(batch, f.name)
        if torch.is_tensor(value) and value.device != device:
            if device.type == "cuda":
                value = value.pin_memory().to(device, non_blocking=True)
            else:
                value = value.to(device)
        values[f.name] = value
    return type(batch)(**values)


def rows(batch: Any) -> int:
    return next(getattr(batch, f.name).shape[0] for f in dataclasses.fields(batch)
                if torch.is_tensor(getattr(batch, f.name)))


def _steps(schedule, iterators: dict[tuple[str, str], Iterator], start: int, stop: int, device: torch.device,
           rank: int, world: int) -> Iterator[tuple[tuple[str, str], Any, bool]]:
    for step in range(start, stop):
        pair = schedule.sample(step)
        batch = next(iterators[pair])
        part = shard(batch, rank, world)
        real = rows(part) > 0
        if not real:
            part = shard(batch, 0, rows(batch))
        yield pair, to_device(part, device), real


def prepared(schedule, iterators: dict[tuple[str, str], Iterator], start: int, stop: int, device: torch.device,
             rank: int = 0, world: int = 1, background: bool | None = None,
             depth: int = 4) -> Iterator[tuple[tuple[str, str], Any, bool]]:
    """Yield (pair, this rank's shard of the step's global batch, whether the shard holds real rows).

    A global batch smaller than the number of ranks leaves some ranks without rows; they get the
    first row to run the step with (DDP needs every rank's backward) and must weight it zero.
    `background` (default: on CUDA devices) prepares batches on a thread. On the CPU the step and the
    data preparation share the same cores, and a second Python thread only adds GIL and thread-pool
    contention (a tiny add-language run took 3x as long), so batches are made inline there.
    """
    if background is None:
        background = device.type == "cuda"
    if not background:
        yield from _steps(schedule, iterators, start, stop, device, rank, world)
        return
    out: queue.Queue = queue.Queue(maxsize=depth)
    stopping = threading.Event()

    def put(item: Any) -> bool:
        while not stopping.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in _steps(schedule, iterators, start, stop, device, rank, world):
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the training thread, which raises it
            put(exc)

    thread = threading.Thread(target=produce, name="hxtool-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopping.set()
        thread.join(timeout=5)
