"""Part of speech: UPOS in CoNLL-U column 4, scored by accuracy; always the 17 UD tags."""

from __future__ import annotations

from hxtool.data.conllu_io import UPOS
from hxtool.tasks.conllu_column import ConlluColumnTask

# Universal Dependencies v2 UPOS (https://universaldependencies.org/u/pos/); legacy CONJ is read as CCONJ.
UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
             "PUNCT", "SCONJ", "SYM", "VERB", "X")

POS = ConlluColumnTask(name="pos", metric_name="UPOS accuracy", column=UPOS, closed_labels=UPOS_TAGS,
                       description="UPOS tags (CoNLL-U column 4), UPOS accuracy",
                       file_pattern="ud/{lang}_*/{split}.conllu")
