"""What hxtool knows about one kind of tagging task, in one place (as MaChAmp keeps per task type).

A task type names its reader of labelled files, the writer of predictions into CoNLL-U, its metric,
the order of its labels, the labels it always knows (a closed set such as UPOS), what a well-formed
label looks like, and where a data folder keeps its files. Commands, training and evaluation look
the description up by name (`hxtool.tasks.get_task`) instead of asking `task == "pos"`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hxtool.data.labelled import LabelledData
from hxtool.evaluation.metrics import Score


@dataclass(frozen=True)
class TaskType:
    name: str
    metric_name: str  # headline of the score in tables, e.g. "UPOS accuracy"
    description: str  # one line for --help and `hxtool info`
    closed_labels: tuple[str, ...] = ()  # labels the task always knows, whatever the training data held
    dataset_columns: tuple[str, ...] = ()  # tag columns of Hugging Face datasets for this task, by preference

    # --- reading and writing -------------------------------------------------------------------
    def read(self, path: Path, fmt: str = "auto") -> LabelledData:
        """Labelled sentences from a file; errors name file and line."""
        raise NotImplementedError

    def write_conllu(self, sentence, tags: list[str]):
        """A copy of a CoNLL-U sentence with the predicted tags in the task's column."""
        raise NotImplementedError

    def data_files(self, root: Path, lang: str, split: str) -> list[Path]:
        """Candidate files for (lang, split) in a data folder laid out like ../shared/data."""
        raise NotImplementedError

    def dataset_row(self, tokens: list[str], labels: list[str], where: str, row: int) -> tuple[list[str], list[str]]:
        """One dataset row's tokens and label strings as the file reader would give them (errors name the row)."""
        from hxtool.errors import DataError

        for label in labels:
            if not self.well_formed(label):
                raise DataError(where, f"{label!r} is not a {self.name} label", line=row)
        return tokens, labels

    # --- labels and scores ---------------------------------------------------------------------
    def score(self, gold: list[list[str]], predicted: list[list[str]]) -> Score:
        raise NotImplementedError

    def label_order(self, labels: Iterable[str]) -> list[str]:
        """The order of a label set in a head: sorted by default."""
        return sorted(set(labels))

    def label_set(self, seen: Iterable[str]) -> list[str]:
        """The task's labels for a checkpoint: its closed set plus every label the data held, ordered."""
        return self.label_order({*self.closed_labels, *seen})

    def well_formed(self, label: str) -> bool:
        """Whether a string can be a label of this task at all (a stray token is not)."""
        return bool(label) and label != "_" and not any(c.isspace() for c in label)

    def extension(self, new: Iterable[str]) -> list[str]:
        """The labels to add to a head that lacks `new`, in the order they are appended."""
        return self.label_order(new)
