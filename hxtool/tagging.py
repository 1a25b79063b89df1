"""Inference, one path for every system: chunks sorted by length and batched by a token budget; whole
files tagged with the task's own writer (CoNLL-U: only the tagged column changes; plain text; TSV).

HyperX tags through `predict_tags` (adapters generated once per (task, language)); the baselines call
`predict_words` with their own word-logits function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import torch

from hxtool.data.align import Chunk, encode_sentences
from hxtool.data.batches import TagBatch, collate_chunks
from hxtool.errors import HxError
from hxtool.evaluation.metrics import Score
from hxtool.model.hyperx import HyperX

# Padded pieces per forward pass. Sorted by length, batches of similar chunks waste little padding.
# On a GPU, 8192 keeps a 512-piece chunk 16 to a batch and short sentences a few hundred, which fills it
# without the attention's memory growing past a few hundred MB on a small encoder. On CPU, large batches
# only leave the caches: in a 4-layer, 384-wide micro-benchmark on one core, 2048 tagged as fast as 32
# sentences a batch, 8192 about 20% slower.
DEFAULT_MAX_TOKENS = 8192
CPU_MAX_TOKENS = 2048


def default_max_tokens(device: torch.device | str) -> int:
    return DEFAULT_MAX_TOKENS if torch.device(device).type == "cuda" else CPU_MAX_TOKENS
FORMATS = ("conllu", "text", "tsv")


def model_max_length(model: HyperX) -> int:
    """Longest input the encoder takes, special tokens included."""
    return model.backbone.max_length


def token_batches(chunks: list[Chunk], max_tokens: int = CPU_MAX_TOKENS,
                  batch_size: int | None = None) -> list[list[int]]:
    """Indices of `chunks` grouped into batches, shortest first: each batch's rows × longest row stays
    within `max_tokens` (one over-long chunk still makes a batch of one), and, when given, at most
    `batch_size` rows."""
    if max_tokens <= 0:
        raise HxError(f"--max-tokens must be positive, got {max_tokens}")
    if batch_size is not None and batch_size <= 0:
        raise HxError(f"--batch-size must be positive, got {batch_size}")
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].input_ids))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # Sorted ascending, so this chunk is the longest of the batch it would join.
        full = batch_size is not None and len(current) >= batch_size
        if current and (full or (len(current) + 1) * len(chunks[index].input_ids) > max_tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


@torch.inference_mode()
def predict_words(word_logits: Callable[[TagBatch], torch.Tensor], tokenizer, sentences: list[list[str]],
                  labels: list[str], max_length: int, batch_size: int | None = None,
                  device: torch.device | str = "cpu", max_tokens: int | None = None,
                  progress: Callable[[int], None] | None = None) -> list[list[str]]:
    """One label per word of every sentence; long sentences are chunked and their predictions joined.

    `word_logits` maps a batch to [B, W, labels]. Best labels stay on the device until the end, so
    the loop never waits on it between batches. `max_tokens` defaults by device (default_max_tokens).
    """
    best = _batched(lambda batch: word_logits(batch).argmax(-1), tokenizer, sentences, max_length, batch_size,
                    device, max_tokens, progress)
    return _labelled(_per_word(sentences, [(p, r.tolist()) for p, r in best], None), labels)


def _batched(reduce: Callable[[TagBatch], Any], tokenizer, sentences: list[list[str]], max_length: int,
             batch_size: int | None, device: torch.device | str, max_tokens: int | None,
             progress: Callable[[int], None] | None) -> list[tuple[list[Chunk], Any]]:
    """`reduce` of every token batch of the sentences' chunks, left on the device, beside its chunks."""
    chunks = encode_sentences(tokenizer, sentences, max_length)
    out: list[tuple[list[Chunk], Any]] = []
    budget = max_tokens if max_tokens is not None else default_max_tokens(device)
    for indices in token_batches(chunks, budget, batch_size):
        picked = [chunks[i] for i in indices]
        out.append((picked, reduce(collate_chunks(picked, tokenizer.pad_token_id).to(device))))
        if progress is not None:
            progress(sum(c.n_words for c in picked))
    return out


def _per_word(sentences: list[list[str]], batches: list[tuple[list[Chunk], list[list[Any]]]],
              blank: Any) -> list[list[Any]]:
    """One value per word of every sentence, from each chunk's row of per-word values (a long sentence's
    chunks fill consecutive words)."""
    out = [[blank] * len(words) for words in sentences]
    for picked, rows in batches:
        for chunk, row in zip(picked, rows):
            out[chunk.sentence][chunk.first_word:chunk.first_word + chunk.n_words] = row[:chunk.n_words]
    return out


def _labelled(ids: list[list[int | None]], labels: list[str]) -> list[list[str]]:
    return [["" if i is None else labels[i] for i in row] for row in ids]  # "": a word no chunk covered


def _hyperx_word_logits(model: HyperX, task: str, lang: str, pooling: str) -> Callable[[TagBatch], torch.Tensor]:
    """HyperX's word logits for a language: adapters generated once for the whole input, the language's own
    head (and its own labels) where few-shot made one."""
    model.eval()
    with torch.inference_mode():
        adapters = model.adapters(task, lang)
    return lambda batch: model.tag_logits(task, batch, adapters, pooling, lang)


@torch.inference_mode()
def predict_with_confidence(model: HyperX, task: str, lang: str, sentences: list[list[str]],
                            pooling: str = "first", max_length: int | None = None
                            ) -> tuple[list[list[str]], list[list[float]]]:
    """As `predict_tags`, plus the probability the model gives each word's label (self-training keeps
    the sentences it is surest of)."""
    labels = model.registry.labels(task, lang)
    word_logits = _hyperx_word_logits(model, task, lang, pooling)
    best = _batched(lambda batch: word_logits(batch).float().softmax(-1).max(-1), model.backbone.tokenizer,
                    sentences, max_length or model_max_length(model), None, model.device, None, None)
    ids = _per_word(sentences, [(p, indices.tolist()) for p, (_, indices) in best], None)
    confidence = _per_word(sentences, [(p, probabilities.tolist()) for p, (probabilities, _) in best], 0.0)
    return _labelled(ids, labels), confidence


@torch.inference_mode()
def predict_distributions(model: HyperX, task: str, lang: str, sentences: list[list[str]], pooling: str = "first",
                          max_length: int | None = None) -> list[list[list[float] | None]]:
    """Each word's probabilities over the language's labels (None: a word past max_length, no chunk covered it)."""
    word_logits = _hyperx_word_logits(model, task, lang, pooling)
    out = _batched(lambda batch: word_logits(batch).float().softmax(-1), model.backbone.tokenizer, sentences,
                   max_length or model_max_length(model), None, model.device, None, None)
    return _per_word(sentences, [(p, probabilities.tolist()) for p, probabilities in out], None)


def predict_tags(model: HyperX, task: str, lang: str, sentences: list[list[str]], batch_size: int | None = None,
                 pooling: str = "first", max_length: int | None = None, progress=None,
                 max_tokens: int | None = None) -> list[list[str]]:
    """HyperX's tags for a language: `predict_words` over `_hyperx_word_logits`."""
    return predict_words(_hyperx_word_logits(model, task, lang, pooling), model.backbone.tokenizer, sentences,
                         model.registry.labels(task, lang), max_length or model_max_length(model), batch_size,
                         model.device, max_tokens, progress)


def score_tags(task: str, gold: list[list[str]], predicted: list[list[str]]) -> Score:
    """The task type's metric (UPOS accuracy for pos, span F1 for ner, ...)."""
    from hxtool.tasks import get_task

    return get_task(task).score(gold, predicted)


# --- whole files ---------------------------------------------------------------------------------
@dataclass
class TaggedFile:
    text: str
    sentences: int
    words: int


def tag_file(model: HyperX, path: Path, task: str, lang: str, fmt: str = "conllu", pooling: str = "first",
             batch_size: int | None = None, quiet: bool = False,
             max_tokens: int | None = None) -> TaggedFile:
    """Read `path`, predict one tag per word, and return the file's text with the predictions in it."""
    from hxtool.data import conllu_io, ner_io
    from hxtool.progress import count_progress
    from hxtool.tasks import get_task

    if fmt not in FORMATS:
        raise HxError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    model.registry.task_index(task)
    model.registry.lang_index(lang)
    task_type = get_task(task)
    if fmt == "conllu":
        doc = conllu_io.read_conllu(path)
        sentences = [s.words for s in doc.sentences]
    elif fmt == "text":
        sentences = conllu_io.read_text(path)
        doc = conllu_io.sentences_from_text(sentences)
    else:
        tsv = ner_io.read_tsv_document(path)
        sentences = tsv.sentences
    words = sum(len(s) for s in sentences)
    with count_progress(f"tagging {path.name}", words, quiet=quiet) as advance:
        predicted = predict_tags(model, task, lang, sentences, batch_size=batch_size, pooling=pooling,
                                 progress=advance, max_tokens=max_tokens)
    if fmt == "tsv":
        text = ner_io.format_tsv_with_tags(tsv, predicted)
    else:
        doc.sentences = [task_type.write_conllu(s, tags) for s, tags in zip(doc.sentences, predicted)]
        text = conllu_io.format_conllu(doc)
    return TaggedFile(text, len(sentences), words)
