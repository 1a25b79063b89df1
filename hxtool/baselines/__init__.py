"""Baselines that Hyper-X is measured against, on the same base encoder, data pipeline and hooks.

- `full_finetune`: every encoder weight plus a linear head, trained on the source languages' labelled
  data, then tuned on the target's few shots.
- `madx`: MAD-X-style static bottleneck adapters: one language adapter per language (MLM on raw text),
  one task adapter stacked on top of them, the target's language adapter swapped in at test time.

This module holds what both share: the encoder wrapped with adapter hooks, word pooling, a compact
training loop and tagging. Data comes from hxtool's own pipeline (encode_sentences, collate_chunks,
TaggingStream, MlmStream), so every system sees the same chunks, batches and masks.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from hxtool.data.align import encode_sentences
from hxtool.data.batches import IGNORE, TagBatch, collate_chunks, pool_words
from hxtool.data.labelled import LabelledData, label_ids
from hxtool.data.sources import TaggingStream
from hxtool.model.backbone import AdapterContext, Backbone, attach_adapters
from hxtool.model.hypernet import AdapterWeights

__all__ = ["AdaptedEncoder", "LoopResult", "encoder_max_length", "fit", "predict_words", "round_robin",
           "tagging_loss", "tagging_stream", "trainable_count"]


class AdaptedEncoder(nn.Module):
    """A backbone's encoder with hxtool's adapter hooks: `encode` runs it under a given adapter stack.

    With no adapters the hooks do nothing, so the same class serves full fine-tuning (encoder weights
    unfrozen, no adapters) and MAD-X (encoder frozen, [language adapter, task adapter] per layer).
    """

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.encoder = backbone.encoder
        self.context = AdapterContext()
        self._hooks = attach_adapters(self.encoder, backbone.model_type, self.context)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               adapters: AdapterWeights | list[AdapterWeights] | None = None) -> torch.Tensor:
        with self.context.use(adapters):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def word_states(self, batch: TagBatch, adapters: AdapterWeights | list[AdapterWeights] | None = None,
                    pooling: str = "first") -> torch.Tensor:
        """[B, W, hidden]: one vector per word, pooled as HyperX does (first piece, or the mean)."""
        return pool_words(self.encode(batch.input_ids, batch.attention_mask, adapters), batch, pooling)


def tagging_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


def tagging_stream(tokenizer, task: str, lang: str, data: LabelledData, labels: list[str], batch_size: int,
                   max_length: int, seed: int) -> TaggingStream:
    """The endless, seeded batch stream hxtool's own training uses for the same sentences."""
    chunks = encode_sentences(tokenizer, data.words, max_length, label_ids(data, labels))
    return TaggingStream(task, lang, chunks, batch_size, tokenizer.pad_token_id, seed)


def trainable_count(params: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)


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


@torch.inference_mode()
def predict_words(word_logits: Callable[[TagBatch], torch.Tensor], tokenizer, sentences: list[list[str]],
                  labels: list[str], max_length: int, batch_size: int = 32,
                  device: torch.device | str = "cpu") -> list[list[str]]:
    """One label per word; long sentences are chunked and joined, exactly as hxtool.tagging does."""
    chunks = encode_sentences(tokenizer, sentences, max_length)
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].input_ids))
    predictions: list[list[str]] = [[""] * len(words) for words in sentences]
    for start in range(0, len(order), batch_size):
        picked = [chunks[i] for i in itertools.islice(order, start, start + batch_size)]
        batch = collate_chunks(picked, tokenizer.pad_token_id).to(device)
        best = word_logits(batch).argmax(-1).tolist()
        for chunk, row in zip(picked, best):
            for offset in range(chunk.n_words):
                predictions[chunk.sentence][chunk.first_word + offset] = labels[row[offset]]
    return predictions


def encoder_max_length(backbone: Backbone) -> int:
    """Longest input the encoder takes (the same limit HyperX tags with)."""
    return backbone.max_length

