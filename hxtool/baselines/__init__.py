"""Baselines that Hyper-X is measured against, on the same base encoder, data pipeline and hooks.

- `full_finetune`: every encoder weight plus a linear head, trained on the source languages' labelled
  data, then tuned on the target's few shots.
- `madx`: MAD-X-style static bottleneck adapters: one language adapter per language (MLM on raw text),
  one task adapter stacked on top of them, the target's language adapter swapped in at test time.

This module holds what both share: the encoder wrapped with adapter hooks, word pooling, hxtool's
training loop run with languages in turn, and tagging. Data comes from hxtool's own pipeline
(encode_sentences, collate_chunks, TaggingStream, MlmStream), so every system sees the same chunks,
batches and masks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from hxtool.config import TrainConfig
from hxtool.data.align import encode_sentences
from hxtool.data.batches import IGNORE, TagBatch, collate_chunks, pool_words
from hxtool.data.labelled import LabelledData, label_ids
from hxtool.data.sources import TaggingStream
from hxtool.model.backbone import AdapterContext, Backbone, attach_adapters
from hxtool.model.hypernet import AdapterWeights
from hxtool.training.loop import LossFn, TrainResult, train
from hxtool.training.sampler import RoundRobin

__all__ = ["AdaptedEncoder", "TrainResult", "encoder_max_length", "predict_words", "tagging_loss",
           "tagging_stream", "train_in_turns", "trainable_count"]


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


def train_in_turns(module: nn.Module, loss: LossFn, streams: list, groups: list[tuple[list[nn.Parameter], float]],
        config: TrainConfig, description: str) -> TrainResult:
    """hxtool's one training loop (hxtool.training.loop), with languages in turn rather than sampled.

    Baseline source training sees languages in turn rather than by hxtool's temperature sampler: with
    two or three source languages of very different sizes, equal turns is the MAD-X recipe and the
    simpler one to reason about. The schedule, AdamW groups, clipping, seeding and losses are hxtool's.
    """
    return train(module, loss, streams, [(g, lr) for g, lr in groups if g], config,
                 schedule=RoundRobin([s.pair for s in streams]), description=description, quiet=True)


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

