"""A task that tags one CoNLL-U column per syntactic word (UPOS, XPOS, FEATS, ...), scored by accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hxtool.data.conllu_io import COLUMNS, UPOS, column_values, read_conllu, set_column
from hxtool.data.labelled import LabelledData
from hxtool.errors import DataError
from hxtool.evaluation.metrics import Score, upos_accuracy
from hxtool.tasks.base import TaskType


@dataclass(frozen=True)
class ConlluColumnTask(TaskType):
    column: int = UPOS
    file_pattern: str = "ud/{lang}_*/{split}.conllu"  # below the data folder

    def read(self, path: Path, fmt: str = "auto") -> LabelledData:
        name = COLUMNS[self.column]
        words, tags, lines = [], [], []
        for sentence in read_conllu(path).sentences:
            # UPOS comes parsed (legacy CONJ already mapped to CCONJ); other columns as written.
            values = sentence.upos if self.column == UPOS else column_values(sentence, self.column)
            for offset, tag in enumerate(values):
                if tag == "_":
                    line = sentence.first_line + sentence.word_lines[offset]
                    raise DataError(path, f"word without {name} ('_'): cannot train or score {self.name} on it",
                                    line=line)
            words.append(sentence.words)
            tags.append(values)
            lines.append([sentence.first_line + index for index in sentence.word_lines])
        return LabelledData(Path(path), words, tags, lines)

    def write_conllu(self, sentence, tags: list[str]):
        return set_column(sentence, self.column, tags)

    def data_files(self, root: Path, lang: str, split: str) -> list[Path]:
        return sorted(root.glob(self.file_pattern.format(lang=lang, split=split)))

    def score(self, gold: list[list[str]], predicted: list[list[str]]) -> Score:
        return upos_accuracy(gold, predicted)  # per-word exact match, the CoNLL 2018 scorer's UPOS score
