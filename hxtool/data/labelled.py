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
    lines: list[list[int]]  # file line of every word, for error messages

    def __len__(self) -> int:
        return len(self.words)

    def subset(self, indices: list[int]) -> "LabelledData":
        pick = lambda rows: [rows[i] for i in indices]  # noqa: E731
        return LabelledData(self.path, pick(self.words), pick(self.tags), pick(self.lines))


def read_labelled(task: str, path: str | Path, fmt: str = "auto") -> LabelledData:
    """UPOS from CoNLL-U for `pos`; any supported NER format for `ner`. Empty sentences are dropped.
    A Hugging Face dataset (save_to_disk folder or hf:NAME, optional ?split=…) is read by hf_datasets."""
    from hxtool.data.hf_datasets import is_dataset, read_dataset_labelled

    if is_dataset(path):
        return read_dataset_labelled(task, path)
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    if task == "pos":
        from hxtool.data.conllu_io import read_conllu

        words, tags, lines = [], [], []
        for sentence in read_conllu(path).sentences:
            for offset, tag in enumerate(sentence.upos):
                if tag == "_":
                    line = sentence.first_line + sentence.word_lines[offset]
                    raise DataError(path, "word without UPOS ('_'): cannot train or score POS on it", line=line)
            if sentence.words:
                words.append(sentence.words)
                tags.append(sentence.upos)
                lines.append([sentence.first_line + index for index in sentence.word_lines])
    elif task == "ner":
        from hxtool.data.ner_io import read_ner

        sentences = [s for s in read_ner(path, fmt) if s.words]
        words, tags, lines = [s.words for s in sentences], [s.tags for s in sentences], [s.lines for s in sentences]
    else:
        raise DataError(path, f"no reader for task {task!r} (known: pos, ner)")
    if not words:
        raise DataError(path, "no labelled sentences")
    return LabelledData(path, words, tags, lines)


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
    for sentence, lines in zip(data.tags, data.lines):
        for tag, line in zip(sentence, lines):
            if tag not in index:
                raise DataError(data.path, f"label {tag!r} is not one the model knows ({', '.join(labels)})",
                                line=line)
        ids.append([index[tag] for tag in sentence])
    return ids
