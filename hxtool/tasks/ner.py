"""Named entities: IOB2 tags from token-per-line files or CoNLL-U MISC (NER=), scored by strict span F1."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hxtool.data.conllu_io import set_misc_ner
from hxtool.data.labelled import LabelledData
from hxtool.evaluation.metrics import Score, span_f1
from hxtool.tasks.base import TaskType

IOB2 = re.compile(r"^(O|[BI]-\S+)$")


@dataclass(frozen=True)
class NerTask(TaskType):
    def read(self, path: Path, fmt: str = "auto") -> LabelledData:
        from hxtool.data.ner_io import read_ner

        # read_ner refuses a tag that is not IOB2, naming file and line.
        sentences = [s for s in read_ner(path, fmt) if s.words]
        return LabelledData(Path(path), [s.words for s in sentences], [s.tags for s in sentences],
                            [s.lines for s in sentences])

    def write_conllu(self, sentence, tags: list[str]):
        return set_misc_ner(sentence, tags)

    def data_files(self, root: Path, lang: str, split: str) -> list[Path]:
        return sorted(p for p in (root / "ner" / lang).glob(f"{split}.*") if p.is_file())

    def score(self, gold: list[list[str]], predicted: list[list[str]]) -> Score:
        return span_f1(gold, predicted)

    def label_order(self, labels: Iterable[str]) -> list[str]:
        """Sorted, with O first."""
        ordered = sorted(set(labels))
        if "O" in ordered:
            ordered.remove("O")
            ordered.insert(0, "O")
        return ordered

    def well_formed(self, label: str) -> bool:
        return bool(IOB2.match(label))

    def dataset_row(self, tokens: list[str], labels: list[str], where: str, row: int) -> tuple[list[str], list[str]]:
        """Tags checked (an invalid one names the row) and read as IOB2, as in files."""
        from hxtool.data.ner_io import check_tag, normalise_iob2

        for label in labels:
            check_tag(where, label, row)
        return tokens, normalise_iob2(labels)

    def extension(self, new: Iterable[str]) -> list[str]:
        """Both B- and I- of every new entity type: a type seen only as B- in a few shots still spans."""
        types = {label[2:] for label in new if label != "O"}
        return sorted({*new, *(f"{p}-{t}" for t in types for p in "BI")})


NER = NerTask(name="ner", metric_name="span F1", closed_labels=("O",), dataset_columns=("ner_tags",),
              description="IOB2 named entities (TSV, CoNLL, WikiANN or NER= in CoNLL-U MISC), strict span F1")
