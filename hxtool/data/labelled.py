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
    """The task type's reader (UPOS from CoNLL-U for `pos`, any NER format for `ner`, ...). A Hugging Face
    dataset (save_to_disk folder or hf:NAME, optional ?split=…) is read by hf_datasets."""
    from hxtool.data.hf_datasets import is_dataset, read_dataset_labelled
    from hxtool.tasks import get_task

    if is_dataset(path):
        return read_dataset_labelled(task, path)
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    data = get_task(task).read(path, fmt)
    if not data.words:
        raise DataError(path, "no labelled sentences")
    return data


def label_list(task: str, datasets: list[LabelledData]) -> list[str]:
    """The ordered label set of a task: its closed set (all 17 UPOS for `pos`) plus every tag the data
    holds, in the task's order (sorted, NER's O first)."""
    from hxtool.tasks import get_task

    return get_task(task).label_set(tag for data in datasets for sentence in data.tags for tag in sentence)


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


def new_labels(task: str, data: LabelledData, known: list[str]) -> list[str]:
    """Tags in `data` that `known` lacks, as the task would add them (NER: B- and I- of a new type);
    a tag that cannot be a label of the task at all is an error naming file and line."""
    from hxtool.tasks import get_task

    task_type = get_task(task)
    known_set = set(known)
    found: set[str] = set()
    for sentence, lines in zip(data.tags, data.lines):
        for tag, line in zip(sentence, lines):
            if tag in known_set:
                continue
            if not task_type.well_formed(tag):
                raise DataError(data.path, f"{tag!r} is not a well-formed {task} label", line=line)
            found.add(tag)
    return [label for label in task_type.extension(found) if label not in known_set] if found else []
