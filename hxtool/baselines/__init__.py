"""Baselines that Hyper-X is measured against, on the same base encoder, data pipeline and hooks.

- `full_finetune`: every encoder weight plus a linear head, trained on the source languages' labelled
  data, then tuned on the target's few shots.
- `madx`: MAD-X-style static bottleneck adapters: one language adapter per language (MLM on raw text),
  one task adapter stacked on top of them, the target's language adapter swapped in at test time.

This module holds what both share: the encoder wrapped with adapter hooks (hxtool.model.hooks),
hxtool's training loop run with languages in turn, and tagging through hxtool.tagging.predict_words.
Data comes from hxtool's own pipeline (encode_sentences, collate_chunks, TaggingStream, MlmStream), so
every system sees the same chunks, batches and masks.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from hxtool.config import TrainConfig
from hxtool.data.align import encode_sentences
from hxtool.data.batches import IGNORE
from hxtool.data.labelled import LabelledData, label_ids
from hxtool.data.sources import TaggingStream
from hxtool.model import count_parameters
from hxtool.model.backbone import Backbone
from hxtool.model.hooks import AdaptedEncoder
from hxtool.tagging import predict_words  # the one prediction loop, shared with HyperX
from hxtool.training.loop import LossFn, TrainResult, train
from hxtool.training.sampler import RoundRobin

__all__ = ["AdaptedEncoder", "TrainResult", "encoder_max_length", "predict_words", "tagging_loss",
           "tagging_stream", "train_in_turns", "trainable_count"]


def tagging_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


def tagging_stream(tokenizer, task: str, lang: str, data: LabelledData, labels: list[str], batch_size: int,
                   max_length: int, seed: int) -> TaggingStream:
    """The endless, seeded batch stream hxtool's own training uses for the same sentences."""
    chunks = encode_sentences(tokenizer, data.words, max_length, label_ids(data, labels))
    return TaggingStream(task, lang, chunks, batch_size, tokenizer.pad_token_id, seed)


trainable_count = count_parameters  # the name the baselines' reports use


def train_in_turns(module: nn.Module, loss: LossFn, streams: list, groups: list[tuple[list[nn.Parameter], float]],
                   config: TrainConfig, description: str) -> TrainResult:
    """hxtool's one training loop (hxtool.training.loop), with languages in turn rather than sampled.

    Baseline source training sees languages in turn rather than by hxtool's temperature sampler: with
    two or three source languages of very different sizes, equal turns is the MAD-X recipe and the
    simpler one to reason about. The schedule, AdamW groups, clipping, seeding and losses are hxtool's.
    """
    return train(module, loss, streams, [(g, lr) for g, lr in groups if g], config,
                 schedule=RoundRobin([s.pair for s in streams]), description=description, quiet=True)


def encoder_max_length(backbone: Backbone) -> int:
    """Longest input the encoder takes (the same limit HyperX tags with)."""
    return backbone.max_length
