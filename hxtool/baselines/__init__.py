"""Baselines that Hyper-X is measured against, on the same base encoder, data pipeline and hooks.

- `full_finetune`: every encoder weight plus a linear head, trained on the source languages' labelled
  data, then tuned on the target's few shots.
- `madx`: MAD-X-style static bottleneck adapters: one language adapter per language (MLM on raw text),
  one task adapter stacked on top of them, the target's language adapter swapped in at test time.

This module holds what both share: the encoder wrapped with adapter hooks (hxtool.model.hooks), a
compact training loop, and tagging through hxtool.tagging.predict_words. Data comes from hxtool's own
pipeline (encode_sentences, collate_chunks, TaggingStream, MlmStream), so every system sees the same
chunks, batches and masks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from hxtool.data.align import encode_sentences
from hxtool.data.batches import IGNORE
from hxtool.data.labelled import LabelledData, label_ids
from hxtool.data.sources import TaggingStream
from hxtool.model import count_parameters
from hxtool.model.backbone import Backbone
from hxtool.model.hooks import AdaptedEncoder
from hxtool.tagging import predict_words  # the one prediction loop, shared with HyperX

__all__ = ["AdaptedEncoder", "LoopResult", "encoder_max_length", "fit", "predict_words", "round_robin",
           "tagging_loss", "tagging_stream", "trainable_count"]


def tagging_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


def tagging_stream(tokenizer, task: str, lang: str, data: LabelledData, labels: list[str], batch_size: int,
                   max_length: int, seed: int) -> TaggingStream:
    """The endless, seeded batch stream hxtool's own training uses for the same sentences."""
    chunks = encode_sentences(tokenizer, data.words, max_length, label_ids(data, labels))
    return TaggingStream(task, lang, chunks, batch_size, tokenizer.pad_token_id, seed)


trainable_count = count_parameters  # the name the baselines' reports use

@dataclass
class LoopResult:
    steps: int
    losses: list[float] = field(default_factory=list)  # every step's loss, to check that it falls
    seconds: float = 0.0

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(self.steps, 1)

    def mean_loss(self, first: bool, k: int = 10) -> float:
        """Mean of the first (or last) k losses: single steps are too noisy to compare."""
        part = self.losses[:k] if first else self.losses[-k:]
        return sum(part) / max(len(part), 1)


def fit(step_loss: Callable[[int], torch.Tensor], groups: list[tuple[list[nn.Parameter], float]], steps: int,
        warmup: float = 0.0, decay: bool = False, grad_clip: float = 1.0, weight_decay: float = 0.0,
        seed: int = 1) -> LoopResult:
    """AdamW over parameter groups with their own rates; `step_loss(step)` draws a batch and returns its loss.

    The schedule mirrors hxtool.train: linear warm-up then linear decay for training on the source
    languages, a constant rate for few-shot tuning.
    """
    from transformers import get_constant_schedule, get_linear_schedule_with_warmup

    torch.manual_seed(seed)  # dropout in the heads
    params = [p for group, _ in groups for p in group]
    optimizer = torch.optim.AdamW([{"params": group, "lr": lr} for group, lr in groups if group],
                                  weight_decay=weight_decay)
    scheduler = (get_linear_schedule_with_warmup(optimizer, int(warmup * steps), steps) if decay
                 else get_constant_schedule(optimizer))
    result = LoopResult(steps=steps)
    start = time.perf_counter()
    for step in range(steps):
        loss = step_loss(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        scheduler.step()
        result.losses.append(float(loss.detach()))
    result.seconds = time.perf_counter() - start
    return result


def round_robin(iterators: dict[str, Iterator]) -> Callable[[int], tuple[str, object]]:
    """Step -> (language, its next batch), cycling over languages so each gets the same number of steps.

    Baseline source training sees languages in turn rather than by hxtool's temperature sampler: with
    two or three source languages of very different sizes, equal turns is the MAD-X recipe and the
    simpler one to reason about.
    """
    order = list(iterators)

    def draw(step: int) -> tuple[str, object]:
        lang = order[step % len(order)]
        return lang, next(iterators[lang])

    return draw


def encoder_max_length(backbone: Backbone) -> int:
    """Longest input the encoder takes (the same limit HyperX tags with)."""
    return backbone.max_length

