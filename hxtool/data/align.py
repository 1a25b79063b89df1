"""Words <-> subwords: piece ids per word, chunks of whole words that fit the model, word spans.

No word is ever dropped: a word the tokenizer turns into zero pieces (zero-width or control
characters) gets the unknown token, a word longer than the limit keeps its first pieces, and a
sentence longer than the limit is split into several chunks of whole words.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Chunk:
    sentence: int  # index of the sentence this chunk comes from
    first_word: int  # index in the sentence of the chunk's first word
    input_ids: list[int]  # with the model's special tokens around them
    spans: list[tuple[int, int]]  # per word: [start, end) of its pieces in input_ids
    labels: list[int] | None = None  # per word, when training

    @property
    def n_words(self) -> int:
        return len(self.spans)


def word_pieces(tokenizer, sentences: list[list[str]]) -> list[list[list[int]]]:
    """Piece ids of every word of every sentence, tokenised in one batched call."""
    if not sentences:
        return []
    encoded = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False)
    unk = tokenizer.unk_token_id
    result = []
    for i, words in enumerate(sentences):
        pieces: list[list[int]] = [[] for _ in words]
        for token_id, word in zip(encoded["input_ids"][i], encoded.word_ids(i)):
            if word is not None:
                pieces[word].append(token_id)
        result.append([p if p else [unk] for p in pieces])
    return result


def chunk_words(pieces: list[list[int]], max_length: int, cls_id: int, sep_id: int,
                sentence: int = 0) -> list[Chunk]:
    """Split one sentence's words into chunks whose pieces plus the two special tokens fit `max_length`."""
    budget = max_length - 2
    chunks: list[Chunk] = []
    ids: list[int] = [cls_id]
    spans: list[tuple[int, int]] = []
    first = 0
    for index, word in enumerate(pieces):
        word = word[:budget]  # a single over-long word keeps its first pieces
        if spans and len(ids) - 1 + len(word) > budget:
            chunks.append(Chunk(sentence, first, ids + [sep_id], spans))
            ids, spans, first = [cls_id], [], index
        spans.append((len(ids), len(ids) + len(word)))
        ids.extend(word)
    if spans or not chunks:
        chunks.append(Chunk(sentence, first, ids + [sep_id], spans))
    return chunks


def encode_sentences(tokenizer, sentences: list[list[str]], max_length: int,
                     labels: list[list[int]] | None = None) -> list[Chunk]:
    """All sentences as chunks, labels (when given) split along with their words."""
    chunks = []
    for i, pieces in enumerate(word_pieces(tokenizer, sentences)):
        for chunk in chunk_words(pieces, max_length, tokenizer.cls_token_id, tokenizer.sep_token_id, i):
            if labels is not None:
                chunk.labels = labels[i][chunk.first_word:chunk.first_word + chunk.n_words]
            chunks.append(chunk)
    return chunks
