"""Endless, seeded streams of homogeneous batches for one (task, language) pair each."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from hxtool.config import MLM_TASK
from hxtool.data.align import Chunk
from hxtool.data.batches import MlmBatch, TagBatch, collate_chunks, mlm_batch

SHUFFLE_BUFFER = 20_000  # lines of a raw corpus shuffled together; larger corpora stream through it


@dataclass
class TaggingStream:
    task: str
    lang: str
    chunks: list[Chunk]
    batch_size: int
    pad_id: int
    seed: int
    weight: float = 1.0  # the recipe's sampling weight: multiplies the pair's temperature probability

    @property
    def pair(self) -> tuple[str, str]:
        return (self.task, self.lang)

    @property
    def size(self) -> int:
        return len({c.sentence for c in self.chunks})

    def __iter__(self) -> Iterator[TagBatch]:
        epoch = 0
        while True:
            order = list(range(len(self.chunks)))
            random.Random(f"{self.seed}/{self.task}/{self.lang}/{epoch}").shuffle(order)
            for start in range(0, len(order), self.batch_size):
                picked = [self.chunks[i] for i in order[start:start + self.batch_size]]
                yield collate_chunks(picked, self.pad_id)
            epoch += 1


@dataclass
class MlmStream:
    lang: str
    corpus: Path
    lines: int  # non-blank lines, for the sampler
    tokenizer: object
    batch_size: int
    max_length: int
    mlm_probability: float
    seed: int
    max_words: int = 200
    weight: float = 1.0  # as TaggingStream's
    _batches: int = field(default=0, init=False)

    task = MLM_TASK

    @property
    def pair(self) -> tuple[str, str]:
        return (MLM_TASK, self.lang)

    @property
    def size(self) -> int:
        return self.lines

    def _lines(self) -> Iterator[str]:
        from hxtool.data.corpus import iter_corpus_lines

        epoch = 0
        while True:
            rng = random.Random(f"{self.seed}/mlm/{self.lang}/{epoch}")
            buffer: list[str] = []
            for line in iter_corpus_lines(self.corpus, max_words=self.max_words):
                buffer.append(line)
                if len(buffer) >= SHUFFLE_BUFFER:
                    rng.shuffle(buffer)
                    yield from buffer
                    buffer = []
            rng.shuffle(buffer)
            yield from buffer
            epoch += 1

    def __iter__(self) -> Iterator[MlmBatch]:
        lines = self._lines()
        while True:
            batch = [next(lines) for _ in range(self.batch_size)]
            self._batches += 1
            yield mlm_batch(self.tokenizer, batch, self.max_length, self.mlm_probability,
                            seed=zlib.crc32(f"{self.seed}/{self.lang}/{self._batches}".encode()))
