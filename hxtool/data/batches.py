"""Padded tensors for a list of chunks (tagging) or raw lines (MLM)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hxtool.data.align import Chunk

IGNORE = -100


@dataclass
class TagBatch:
    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    word_start: torch.Tensor  # [B, W] first piece of each word (0 for padding)
    word_end: torch.Tensor  # [B, W] one past its last piece
    word_mask: torch.Tensor  # [B, W] True for real words
    labels: torch.Tensor | None  # [B, W], IGNORE for padding

    def to(self, device: torch.device | str) -> "TagBatch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return TagBatch(*(move(getattr(self, f)) for f in self.__dataclass_fields__))


@dataclass
class MlmBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor  # IGNORE except at masked positions

    def to(self, device: torch.device | str) -> "MlmBatch":
        return MlmBatch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


def collate_chunks(chunks: list[Chunk], pad_id: int) -> TagBatch:
    longest = max(len(c.input_ids) for c in chunks)
    most_words = max(max(c.n_words for c in chunks), 1)
    size = len(chunks)
    input_ids = torch.full((size, longest), pad_id, dtype=torch.long)
    attention = torch.zeros((size, longest), dtype=torch.long)
    start = torch.zeros((size, most_words), dtype=torch.long)
    end = torch.ones((size, most_words), dtype=torch.long)
    word_mask = torch.zeros((size, most_words), dtype=torch.bool)
    with_labels = all(c.labels is not None for c in chunks)
    labels = torch.full((size, most_words), IGNORE, dtype=torch.long) if with_labels else None
    for row, chunk in enumerate(chunks):
        input_ids[row, : len(chunk.input_ids)] = torch.tensor(chunk.input_ids)
        attention[row, : len(chunk.input_ids)] = 1
        if chunk.n_words:
            spans = torch.tensor(chunk.spans)
            start[row, : chunk.n_words] = spans[:, 0]
            end[row, : chunk.n_words] = spans[:, 1]
            word_mask[row, : chunk.n_words] = True
            if labels is not None:
                labels[row, : chunk.n_words] = torch.tensor(chunk.labels)
    return TagBatch(input_ids, attention, start, end, word_mask, labels)


def mlm_batch(tokenizer, lines: list[str], max_length: int, mlm_probability: float, seed: int) -> MlmBatch:
    """Tokenise lines and mask them with transformers' collator, seeded so every step is reproducible."""
    from transformers import DataCollatorForLanguageModeling

    encoded = tokenizer(lines, truncation=True, max_length=max_length, return_special_tokens_mask=True)
    features = [
        {"input_ids": ids, "attention_mask": [1] * len(ids), "special_tokens_mask": mask}
        for ids, mask in zip(encoded["input_ids"], encoded["special_tokens_mask"])
    ]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability, seed=seed)
    out = collator(features)
    labels = out["labels"]
    if not (labels != IGNORE).any():
        # Very short lines can come out with nothing masked; mask one real token so the step counts.
        width = out["input_ids"].shape[1]
        special = torch.tensor([m + [1] * (width - len(m)) for m in encoded["special_tokens_mask"]])
        candidates = special == 0
        if candidates.any():
            row, col = candidates.nonzero()[0].tolist()
            labels[row, col] = out["input_ids"][row, col]
            out["input_ids"][row, col] = tokenizer.mask_token_id
    return MlmBatch(out["input_ids"], out["attention_mask"].long(), labels)


def pool_words(states: torch.Tensor, batch: TagBatch, pooling: str = "first") -> torch.Tensor:
    """[B, W, hidden]: one vector per word, its first piece's state or the mean over its pieces."""
    if pooling == "first":
        index = batch.word_start.unsqueeze(-1).expand(-1, -1, states.shape[-1])
        return torch.gather(states, 1, index)
    # Mean over each word's pieces, through a [B, W, T] averaging matrix.
    positions = torch.arange(states.shape[1], device=states.device)
    inside = (positions >= batch.word_start.unsqueeze(-1)) & (positions < batch.word_end.unsqueeze(-1))
    weights = inside.float() / inside.sum(-1, keepdim=True).clamp(min=1)
    return torch.bmm(weights, states)
