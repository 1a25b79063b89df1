"""One training loop for every command: temperature-sampled homogeneous batches, warm-up and
linear decay (or a constant rate), periodic evaluation and keeping the best weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from hxtool.config import MLM_TASK, TrainConfig
from hxtool.data.batches import MlmBatch, TagBatch
from hxtool.data.sampling import TemperatureSampler
from hxtool.model.hyperx import HyperX
from hxtool.progress import training_progress
from hxtool.resume import TrainState, load_state, save_state


@dataclass
class TrainResult:
    steps: int
    final_loss: float
    first_loss: float | None = None  # loss of the first step this process ran
    best_score: float | None = None
    best_step: int | None = None
    steps_per_pair: dict[tuple[str, str], int] = field(default_factory=dict)
    loss_per_pair: dict[tuple[str, str], float] = field(default_factory=dict)  # smoothed, per (task, lang)
    evaluations: list[tuple[int, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@dataclass
class Resumable:
    """Where and how often to save resumable state, and whether to start from it."""

    folder: Path
    every: int = 0
    resume: bool = False
    signature: dict[str, Any] = field(default_factory=dict)


def train(model: HyperX, streams: list, params: list[nn.Parameter], config: TrainConfig, *,
          lang_override: dict[str, int] | None = None, evaluate: Callable[[], float] | None = None,
          description: str = "training", quiet: bool = False, resumable: Resumable | None = None,
          rates: dict[int, float] | None = None) -> TrainResult:
    """Train `params` on batches drawn from `streams` (each with `.pair`, `.size` and iteration).

    `lang_override` maps a language code to a hypernetwork row index that the registry does not know
    yet (a language being added). With `evaluate`, the best-scoring weights are restored at the end.
    With `resumable`, state is saved every `every` steps and a run can continue from it.
    `rates` maps id(param) to a learning rate other than `config.lr` (e.g. heads at `config.head_lr`).
    """
    from transformers import get_constant_schedule, get_linear_schedule_with_warmup

    seed_everything(config.seed)
    device = model.device
    sampler = TemperatureSampler([s.pair for s in streams], [s.size for s in streams], config.temperature,
                                 config.seed)
    iterators: dict[tuple[str, str], Iterator] = {s.pair: iter(s) for s in streams}
    by_rate: dict[float, list[nn.Parameter]] = {}
    for param in params:
        by_rate.setdefault((rates or {}).get(id(param), config.lr), []).append(param)
    optimizer = torch.optim.AdamW([{"params": group, "lr": lr} for lr, group in by_rate.items()],
                                  weight_decay=config.weight_decay)
    if config.decay:
        warmup = int(config.warmup * config.steps)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, config.steps)
    else:
        scheduler = get_constant_schedule(optimizer)
    overrides = lang_override or {}
    result = TrainResult(steps=0, final_loss=float("nan"))
    best_state: list[torch.Tensor] | None = None
    running = None

    def maybe_evaluate(step: int) -> None:
        nonlocal best_state
        if evaluate is None:
            return
        score = evaluate()
        model.train()
        result.evaluations.append((step, score))
        if result.best_score is None or score > result.best_score:
            result.best_score, result.best_step = score, step
            best_state = [p.detach().clone() for p in params]

    start = 0
    drawn: dict[str, int] = {f"{t}/{lang}": 0 for t, lang in iterators}
    if resumable is not None and resumable.resume:
        state, best_state = load_state(resumable.folder, resumable.signature, params, optimizer)
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
        running, result.best_score, result.best_step = extra["running"], extra["best_score"], extra["best_step"]
        result.evaluations = [tuple(e) for e in extra["evaluations"]]
        result.steps_per_pair = {tuple(k.split("/", 1)): v for k, v in extra["steps_per_pair"].items()}
        result.loss_per_pair = {tuple(k.split("/", 1)): v for k, v in extra["loss_per_pair"].items()}

    def checkpoint_state(step: int) -> None:
        extra = {"running": running, "best_score": result.best_score, "best_step": result.best_step,
                 "evaluations": result.evaluations,
                 "loss_per_pair": {f"{t}/{lang}": v for (t, lang), v in result.loss_per_pair.items()},
                 "steps_per_pair": {f"{t}/{lang}": n for (t, lang), n in result.steps_per_pair.items()}}
        save_state(resumable.folder, TrainState(step, resumable.signature, scheduler.state_dict(), dict(drawn), extra),
                   params, optimizer, best_state)

    model.train()
    with training_progress(description, config.steps, quiet=quiet, start=start) as advance:
        for step in range(start, config.steps):
            task, lang = sampler.sample(step)
            batch = next(iterators[(task, lang)]).to(device)
            drawn[f"{task}/{lang}"] += 1
            lang_index = overrides[lang] if lang in overrides else model.registry.lang_index(lang)
            adapters = model.hypernet(model.registry.task_index(task), lang_index)  # once per batch
            if task == MLM_TASK:
                assert isinstance(batch, MlmBatch)
                loss = model.mlm_loss(batch, adapters)
            else:
                assert isinstance(batch, TagBatch)
                loss = model.tagging_loss(task, batch, adapters, config.pooling, lang)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            value = float(loss.detach())
            if result.first_loss is None:
                result.first_loss = value
            running = value if running is None else 0.95 * running + 0.05 * value
            result.steps = step + 1
            result.final_loss = running
            result.steps_per_pair[(task, lang)] = result.steps_per_pair.get((task, lang), 0) + 1
            previous = result.loss_per_pair.get((task, lang))
            result.loss_per_pair[(task, lang)] = value if previous is None else 0.8 * previous + 0.2 * value
            advance(loss=running, pair=f"{task}/{lang}")
            if config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
                maybe_evaluate(step + 1)
            if resumable is not None and resumable.every and (step + 1) % resumable.every == 0 \
                    and step + 1 < config.steps:
                checkpoint_state(step + 1)
    maybe_evaluate(config.steps)
    if best_state is not None:
        with torch.no_grad():
            for param, value in zip(params, best_state):
                param.copy_(value)
    model.eval()
    return result


def count_parameters(params: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)
