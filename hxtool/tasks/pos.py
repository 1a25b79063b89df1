"""Part of speech: UPOS in CoNLL-U column 4, scored by accuracy; always the 17 UD tags."""

from __future__ import annotations

from dataclasses import dataclass

from hxtool.data.conllu_io import UPOS
from hxtool.tasks.conllu_column import ConlluColumnTask

# Universal Dependencies v2 UPOS (https://universaldependencies.org/u/pos/); legacy CONJ is read as CCONJ.
UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
             "PUNCT", "SCONJ", "SYM", "VERB", "X")



@dataclass(frozen=True)
class PosTask(ConlluColumnTask):
    def dataset_row(self, tokens: list[str], labels: list[str], where: str, row: int) -> tuple[list[str], list[str]]:
        """UD datasets keep multiword tokens with the tag '_' (CoNLL-U range lines): drop them, as the file
        reader does; legacy CONJ is CCONJ."""
        kept = [(t, "CCONJ" if label == "CONJ" else label) for t, label in zip(tokens, labels) if label != "_"]
        return super().dataset_row([t for t, _ in kept], [label for _, label in kept], where, row)


POS = PosTask(name="pos", metric_name="UPOS accuracy", column=UPOS, closed_labels=UPOS_TAGS,
              description="UPOS tags (CoNLL-U column 4), UPOS accuracy",
              file_pattern="ud/{lang}_*/{split}.conllu", dataset_columns=("upos",))
