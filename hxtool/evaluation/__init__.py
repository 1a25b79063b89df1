"""Scores: UPOS accuracy (as the CoNLL 2018 scorer) and strict IOB2 span F1 (as seqeval)."""
