"""Inference: adapters generated once per (task, language), chunks batched by length."""

from __future__ import annotations

import torch

from hxtool.data.align import encode_sentences
from hxtool.data.batches import collate_chunks
from hxtool.metrics import Score, span_f1, upos_accuracy
from hxtool.model.hyperx import HyperX


def model_max_length(model: HyperX) -> int:
    """Longest input the encoder takes, special tokens included."""
    return model.backbone.max_length


@torch.inference_mode()
def predict_tags(model: HyperX, task: str, lang: str, sentences: list[list[str]], batch_size: int = 32,
                 pooling: str = "first", max_length: int | None = None, progress=None) -> list[list[str]]:
    """One label per word of every sentence; long sentences are chunked and their predictions joined."""
    labels = model.registry.task(task).labels
    model.eval()
    adapters = model.adapters(task, lang)  # once for the whole input
    chunks = encode_sentences(model.backbone.tokenizer, sentences, max_length or model_max_length(model))
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].input_ids))
    predictions: list[list[str]] = [[""] * len(words) for words in sentences]
    pad_id = model.backbone.tokenizer.pad_token_id
    for start in range(0, len(order), batch_size):
        picked = [chunks[i] for i in order[start:start + batch_size]]
        batch = collate_chunks(picked, pad_id).to(model.device)
        best = model.tag_logits(task, batch, adapters, pooling, lang).argmax(-1).tolist()
        for chunk, row in zip(picked, best):
            for offset in range(chunk.n_words):
                predictions[chunk.sentence][chunk.first_word + offset] = labels[row[offset]]
        if progress is not None:
            progress(sum(c.n_words for c in picked))
    return predictions


def score_tags(task: str, gold: list[list[str]], predicted: list[list[str]]) -> Score:
    return upos_accuracy(gold, predicted) if task == "pos" else span_f1(gold, predicted)
