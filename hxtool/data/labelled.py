"""Labelled sentences for a task, whatever the file format: words and their gold tags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hxtool.errors import DataError


@dataclass
class LabelledData:
    path: Path
    words: list[list[str]]
    tags: list[list[str]]

    def __len__(self) -> int:
        return len(self.words)

    def subset(self, indices: list[int]) -> "LabelledData":
        return LabelledData(self.path, [self.words[i] for i in indices], [self.tags[i] for i in indices])


def read_labelled(task: str, path: str | Path, fmt: str = "auto") -> LabelledData:
    """UPOS from CoNLL-U for `pos`; any supported NER format for `ner`. Empty sentences are dropped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    if task == "pos":
        from hxtool.data.conllu_io import read_conllu

        words, tags = [], []
        for sentence in read_conllu(path).sentences:
            for offset, tag in enumerate(sentence.upos):
                if tag == "_":
                    line = sentence.first_line + sentence.word_lines[offset]
                    raise DataError(path, "word without UPOS ('_'): cannot train or score POS on it", line=line)
            if sentence.words:
                words.append(sentence.words)
                tags.append(sentence.upos)
    elif task == "ner":
        from hxtool.data.ner_io import read_ner

        sentences = [s for s in read_ner(path, fmt) if s.words]
        words, tags = [s.words for s in sentences], [s.tags for s in sentences]
    else:
        raise DataError(path, f"no reader for task {task!r} (known: pos, ner)")
    if not words:
        raise DataError(path, "no labelled sentences")
    return LabelledData(path, words, tags)


def label_list(task: str, datasets: list[LabelledData]) -> list[str]:
    """The ordered label set of a task: sorted, with NER's O first."""
    labels = sorted({tag for data in datasets for sentence in data.tags for tag in sentence})
    if task == "ner" and "O" in labels:
        labels.remove("O")
        labels.insert(0, "O")
    return labels


def label_ids(data: LabelledData, labels: list[str]) -> list[list[int]]:
    """Map tags to ids, refusing a tag the model has no label for."""
    index = {label: i for i, label in enumerate(labels)}
    ids = []
    for number, sentence in enumerate(data.tags, start=1):
        unknown = [tag for tag in sentence if tag not in index]
        if unknown:
            raise DataError(data.path, f"sentence {number}: label {unknown[0]!r} is not one the model knows "
                                       f"({', '.join(labels)})")
        ids.append([index[tag] for tag in sentence])
    return ids
