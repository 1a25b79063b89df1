"""The one training loop: HyperX's commands (pretrain-mlm, add-language, fewshot) and both baselines.

A schedule picks each step's (task, language) pair (temperature sampling, or turns for the
baselines); the pair's stream gives a homogeneous batch, prepared on a background thread. AdamW
with warm-up and linear decay (or a constant rate), gradient clipping, periodic evaluation keeping
the best weights, resumable state, mixed precision (torch.autocast) and, under torchrun,
DistributedDataParallel: every rank draws the same pair and global batch and trains on its own
shard of it, and DDP averages the gradients.

A loss may come as LossParts: its terms are backpropagated one after another, so that two passes through
the encoder never hold their activations at once (add-language's anchored stage).

Losses stay on the device as the run goes (one slot per step); they are read when the progress bar
refreshes, when state is saved and at the end, so a step never waits on the host.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hxtool.config import TrainConfig
from hxtool.data.batches import IGNORE
from hxtool.progress import training_progress
from hxtool.training import distributed
from hxtool.training.precision import autocast, grad_scaler, resolve_precision
from hxtool.training.prefetch import prepared
from hxtool.training.resume import TrainState, load_state, save_state
from hxtool.training.sampler import TemperatureSampler

Pair = tuple[str, str]
LossFn = Callable[[Pair, Any], "torch.Tensor | LossParts"]  # one step's mean loss, or its terms
# What evaluate() returns: the score that picks the best weights, and the details to keep with it.
Evaluation = tuple[float, dict[str, float]]


@dataclass
class LossParts:
    """A step's loss as a sum of terms whose graphs need not be alive together. On one process the loop
    backpropagates each term as soon as it is computed, so its activations are freed before the next term's
    forward (add-language's anchored stage: two passes through the encoder, 5.4 GB at once on e5 at 16 x 128);
    the gradients are those of the sum. Under DDP the terms are summed into one graph (one reduction a step)."""

    terms: list[Callable[[], torch.Tensor]]

    def summed(self) -> torch.Tensor:
        total = self.terms[0]()
        for term in self.terms[1:]:
            total = total + term()
        return total


class Schedule(Protocol):
    def sample(self, step: int) -> Pair: ...


@dataclass
class TrainResult:
    steps: int
    final_loss: float  # smoothed over the whole run
    first_loss: float | None = None  # loss of the first step this process ran
    best_score: float | None = None
    best_step: int | None = None
    best_details: dict[str, float] = field(default_factory=dict)  # what evaluate() reported at best_step
    steps_per_pair: dict[Pair, int] = field(default_factory=dict)
    loss_per_pair: dict[Pair, float] = field(default_factory=dict)  # smoothed, per (task, lang)
    evaluations: list[tuple[int, float]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # every step's loss (the global batch's, under DDP)
    seconds: float = 0.0  # wall time of the steps this process ran
    precision: str = "fp32"
    world_size: int = 1

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(self.steps, 1)

    def mean_loss(self, first: bool, k: int = 10) -> float:
        """Mean of the first (or last) k losses: single steps are too noisy to compare."""
        part = self.losses[:k] if first else self.losses[-k:]
        return sum(part) / max(len(part), 1)


@dataclass
class Resumable:
    """Where and how often to save resumable state, and whether to start from it."""

    folder: Path
    every: int = 0
    resume: bool = False
    signature: dict[str, Any] = field(default_factory=dict)


def copy_into(params: list[nn.Parameter], values: list[torch.Tensor]) -> None:
    """Put saved values (say `[p.detach().clone() for p in params]`) back into the parameters, in place."""
    with torch.no_grad():
        for param, value in zip(params, values):
            param.copy_(value)


def param_groups(params: list[nn.Parameter], lr: float,
                 rates: dict[int, float] | None = None) -> list[tuple[list[nn.Parameter], float]]:
    """Group parameters by learning rate; `rates` maps id(param) to a rate other than `lr`."""
    by_rate: dict[float, list[nn.Parameter]] = {}
    for param in params:
        by_rate.setdefault((rates or {}).get(id(param), lr), []).append(param)
    return [(group, rate) for rate, group in by_rate.items()]


class _Objective(nn.Module):
    """The loss as a module's forward, which is what DistributedDataParallel wraps and hooks."""

    def __init__(self, module: nn.Module, loss: LossFn, sum_parts: bool = False) -> None:
        super().__init__()
        self.module = module
        self.loss = loss
        self.sum_parts = sum_parts  # DDP must see one tensor come out of forward

    def forward(self, pair: Pair, batch: Any) -> torch.Tensor | LossParts:
        value = self.loss(pair, batch)
        return value.summed() if self.sum_parts and isinstance(value, LossParts) else value


def _backward_parts(parts: LossParts, precision: str, device: torch.device, scaler: Any) -> torch.Tensor:
    """Backpropagate each term as soon as it is computed (gradients accumulate); the step's loss is their sum."""
    total = None
    for term in parts.terms:
        with autocast(precision, device):
            piece = term().float()
        (scaler.scale(piece) if scaler is not None else piece).backward()
        total = piece.detach() if total is None else total + piece.detach()
    return total


def _smoothed(values: Iterable[float], weight: float) -> float | None:
    running = None
    for value in values:
        running = value if running is None else (1 - weight) * running + weight * value
    return running


def train(module: nn.Module, loss: LossFn, streams: list, groups: list[tuple[list[nn.Parameter], float]],
          config: TrainConfig, *, schedule: Schedule | None = None,
          evaluate: Callable[[], Evaluation] | None = None, description: str = "training", quiet: bool = False,
          resumable: Resumable | None = None, precision: str | None = None) -> TrainResult:
    """Train the parameters of `groups` (each with its learning rate) for `config.steps` steps.

    `streams` are endless batch iterables with `.pair`, `.size` and `.weight`; `loss(pair, batch)` is one step's
    mean loss. `schedule` picks each step's pair (default: temperature sampling by stream size and weight).
    With `evaluate` (rank 0 only), the best-scoring weights are restored at the end. With
    `resumable`, state is saved every `every` steps and a run can continue from it.
    """
    from transformers import get_constant_schedule, get_linear_schedule_with_warmup, set_seed

    world, rank = distributed.world_size(), distributed.rank()
    set_seed(config.seed + rank)  # dropout differs across ranks' shards; rank 0 draws as one process would
    params = [p for group, _ in groups for p in group]
    device = params[0].device
    precision = resolve_precision(precision, device)
    if schedule is None:
        schedule = TemperatureSampler([s.pair for s in streams], [s.size for s in streams], config.temperature,
                                      config.seed, [s.weight for s in streams])
    iterators: dict[Pair, Iterator] = {s.pair: iter(s) for s in streams}
    optimizer = torch.optim.AdamW([{"params": group, "lr": lr} for group, lr in groups if group],
                                  weight_decay=config.weight_decay)
    if config.decay:
        scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup * config.steps), config.steps)
    else:
        scheduler = get_constant_schedule(optimizer)
    scaler = grad_scaler(precision, device)
    losses = torch.zeros(config.steps, device=device)
    result = TrainResult(steps=0, final_loss=float("nan"), precision=precision, world_size=world)
    best_state: list[torch.Tensor] | None = None

    def maybe_evaluate(step: int) -> None:
        nonlocal best_state
        if evaluate is None:
            return
        outcome = evaluate() if distributed.is_main() else None
        score, details = distributed.broadcast(outcome)  # every rank keeps the same best weights
        module.train()
        result.evaluations.append((step, score))
        if result.best_score is None or score > result.best_score:
            result.best_score, result.best_step, result.best_details = score, step, dict(details)
            best_state = [p.detach().clone() for p in params]

    start = 0
    drawn: dict[str, int] = {f"{t}/{lang}": 0 for t, lang in iterators}
    if resumable is not None and resumable.resume:
        state, best_state, saved = load_state(resumable.folder, resumable.signature, params, optimizer)
        losses.copy_(saved)
        scheduler.load_state_dict(state.scheduler)
        for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
            group["lr"] = lr  # loading a scheduler's state does not touch the optimizer's current rates
        start = state.step
        for key, count in state.batches.items():  # replay the streams to where they were
            task, lang = key.split("/", 1)
            for _ in range(count):
                next(iterators[(task, lang)])
            drawn[key] = count
        extra = state.extra
        result.best_score, result.best_step = extra["best_score"], extra["best_step"]
        result.best_details = extra.get("best_details", {})
        result.evaluations = [tuple(e) for e in extra["evaluations"]]
        if scaler is not None and extra.get("scaler"):
            scaler.load_state_dict(extra["scaler"])

    def checkpoint_state(step: int) -> None:
        extra = {"best_score": result.best_score, "best_step": result.best_step,
                 "best_details": result.best_details, "evaluations": result.evaluations,
                 "scaler": scaler.state_dict() if scaler is not None else None}
        save_state(resumable.folder, TrainState(step, resumable.signature, scheduler.state_dict(), dict(drawn),
                                                extra), params, optimizer, best_state, losses)

    objective: nn.Module = _Objective(module, loss, sum_parts=world > 1)
    if world > 1:
        # Unused parameters are normal: each step trains one task's head and one kind of loss.
        # The encoder's buffers (position ids) never change: no need to send them every step.
        quiet_buffers = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                         inspect.signature(DistributedDataParallel).parameters else {"broadcast_buffers": False})
        objective = DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None,
                                            find_unused_parameters=True, **quiet_buffers)
    module.train()
    clock = time.perf_counter()
    quiet = quiet or not distributed.is_main()
    with training_progress(description, config.steps, quiet=quiet, start=start) as advance, \
            contextlib.closing(prepared(schedule, iterators, start, config.steps, device, rank, world)) as batches:
        for step in range(start, config.steps):
            pair, batch, real = next(batches)
            drawn[f"{pair[0]}/{pair[1]}"] += 1
            optimizer.zero_grad(set_to_none=True)
            with autocast(precision, device):
                value = objective(pair, batch)
            if isinstance(value, LossParts):
                losses[step] = _backward_parts(value, precision, device, scaler)
            else:
                value = value.float()
                if world > 1:
                    # Each rank's loss is a mean over its own targets; weight it by its share of the global
                    # batch's targets, so DDP's average of gradients is the gradient of the global mean.
                    targets = (batch.labels != IGNORE).sum().float() * real
                    totals = distributed.all_reduce_sum(torch.stack([value.detach() * targets, targets]))
                    value = value * (targets * world / totals[1].clamp(min=1))
                    losses[step] = totals[0] / totals[1].clamp(min=1)
                else:
                    losses[step] = value.detach()
                (scaler.scale(value) if scaler is not None else value).backward()
            if scaler is not None:
                scaler.unscale_(optimizer)
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            advance(loss=lambda s=step: float(losses[max(start, s - 9):s + 1].mean()), pair=f"{pair[0]}/{pair[1]}")
            if config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
                maybe_evaluate(step + 1)
            if resumable is not None and resumable.every and (step + 1) % resumable.every == 0 \
                    and step + 1 < config.steps:
                checkpoint_state(step + 1)
    result.seconds = time.perf_counter() - clock
    maybe_evaluate(config.steps)
    if best_state is not None:
        copy_into(params, best_state)
    module.eval()
    _summarise(result, losses.tolist(), [schedule.sample(s) for s in range(config.steps)], start)
    return result


def _summarise(result: TrainResult, losses: list[float], pairs: list[Pair], start: int) -> None:
    """Per-run and per-pair figures, from every step's loss (so a resumed run reports what a straight one would)."""
    result.steps = len(losses)
    result.losses = losses
    result.first_loss = losses[start] if start < len(losses) else None
    result.final_loss = _smoothed(losses, 0.05)
    by_pair: dict[Pair, list[float]] = {}
    for pair, value in zip(pairs, losses):
        by_pair.setdefault(pair, []).append(value)
    result.steps_per_pair = {pair: len(values) for pair, values in by_pair.items()}
    result.loss_per_pair = {pair: _smoothed(values, 0.2) for pair, values in by_pair.items()}
