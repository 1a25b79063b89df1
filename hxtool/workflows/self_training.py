"""Self-training after few-shot: the freshly tuned tagger labels sentences of the language's raw text, and
the sentences it is surest of join the labelled shots for a second round of the same tuning.

Raw text is what hxtool has for every language it adds (add-language registers the corpus), so from 20
labelled sentences on (`--tune auto`) the tagger is good enough (about 82+ UPOS) for its confident
labels to teach it more than they mislead it. Measured in BENCHMARKS.md (issue 10). By default the labels
come from two teachers: the tuned model and the same first round with its low-rank updates at a lower rate
(fewshot's `--extra-teacher-lr`), their word probabilities averaged: it lifted ug without costing mt.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from hxtool.data.corpus import iter_corpus_lines
from hxtool.data.batches import IGNORE
from hxtool.data.labelled import LabelledData, label_ids
from hxtool.errors import HxError
from hxtool.model.hyperx import HyperX
from hxtool.tagging import predict_distributions, predict_with_confidence
from hxtool.training.loop import copy_into

# Raw lines are split into words the way UD treebanks mostly do: punctuation apart, a clitic that ends in
# an apostrophe or a hyphen (Maltese `il-`, `b'`) as its own word.
WORD = re.compile(r"\w+['’]|\w+-|\w+|[^\w\s]")
MIN_WORDS, MAX_WORDS = 3, 60


@dataclass
class SelfTraining:
    """How fewshot labels raw text for its second round (`sentences` = 0: no second round)."""

    sentences: int = 1000  # raw sentences the tuned tagger labels
    keep: float = 0.5  # the share of them, most confident first, that joins the shots
    unsure_words: float = 0.0  # the share of the kept sentences' words, least sure first, left out of the loss
    epochs: int = 3  # passes over shots + kept sentences
    shot_repeats: int = 3  # each labelled shot counts this often in that mix
    corpus: Path | str | None = None  # default: the corpus add-language registered for the language

    def validate(self) -> None:
        if self.sentences < 0:
            raise HxError(f"--self-train must be 0 (off) or a number of raw sentences, got {self.sentences}")
        if not 0 < self.keep <= 1 or not 0 <= self.unsure_words < 1 or self.epochs < 1 or self.shot_repeats < 1:
            raise HxError("self-training needs 0 < keep <= 1, 0 <= unsure_words < 1, epochs >= 1 and "
                          "shot_repeats >= 1")


def requested(sentences: int | None, corpus: Path | str | None) -> SelfTraining | None:
    """What `--self-train N` / `--raw FILE` ask for; None (neither given): fewshot's default for the mode and n.
    `--raw` alone means the default 1000 sentences from that text."""
    if sentences is None and corpus is None:
        return None
    return SelfTraining(sentences=SelfTraining.sentences if sentences is None else sentences, corpus=corpus)


def split_words(line: str) -> list[str]:
    return WORD.findall(line)


def sample_raw_sentences(corpus: Path | str, count: int, seed: int) -> list[list[str]]:
    """`count` lines of the corpus drawn uniformly (one pass, reservoir sampling, seeded), as words; lines of
    fewer than 3 or more than 60 words are skipped."""
    rng = random.Random(seed)
    picked: list[list[str]] = []
    seen = 0
    for line in iter_corpus_lines(corpus):
        words = split_words(line)
        if not MIN_WORDS <= len(words) <= MAX_WORDS:
            continue
        seen += 1
        if len(picked) < count:
            picked.append(words)
        elif (slot := rng.randrange(seen)) < count:
            picked[slot] = words
    return picked


def language_corpus(model: HyperX, lang: str, given: Path | str | None) -> Path | str | None:
    """The raw text to label: `given`, else the corpus add-language (or pretraining) registered, if still there."""
    from hxtool.data.hf_datasets import is_dataset

    if given is not None:
        if not is_dataset(given) and not Path(given).is_file():  # refused before the first round, not after
            raise HxError(f"--raw: {given} is not a file (or dataset)")
        return given
    corpus = model.registry.language(lang).corpus
    if not corpus:
        return None
    path = corpus["path"]
    return path if is_dataset(path) or Path(path).is_file() else None


@dataclass
class PseudoLabels:
    """Raw sentences with the tuned model's tags; `sure[i][j]` is False for a word left out of the loss."""

    data: LabelledData
    sure: list[list[bool]]
    confidence: float  # mean over the sentences of their counted labels' mean probability

    def ids(self, labels: list[str]) -> list[list[int]]:
        return [[i if ok else IGNORE for i, ok in zip(row, sure)]
                for row, sure in zip(label_ids(self.data, labels), self.sure)]


@dataclass
class Teachers:
    """More first-round models beside the tuned one (`states`: values of `params`, the parameters fewshot
    tunes); the raw text's labels come from the mean of all their word probabilities."""

    params: list[torch.nn.Parameter]
    states: list[list[torch.Tensor]]


def ensemble_tags(model: HyperX, task: str, lang: str, sentences: list[list[str]], pooling: str, max_length: int,
                  teachers: Teachers) -> tuple[list[list[str]], list[list[float]]]:
    """Tags and their probabilities under the mean of the teachers' and the model's word distributions (as
    predict_with_confidence gives them for one model). The model's own weights are put back afterwards."""
    own = [p.detach().clone() for p in teachers.params]
    distributions = []
    try:
        for state in teachers.states:
            copy_into(teachers.params, state)
            distributions.append(predict_distributions(model, task, lang, sentences, pooling, max_length))
    finally:
        copy_into(teachers.params, own)
    distributions.append(predict_distributions(model, task, lang, sentences, pooling, max_length))
    labels = model.registry.labels(task, lang)
    tags, confidence = [], []
    for rows in zip(*distributions):
        sentence_tags, sentence_confidence = [], []
        for word in zip(*rows):
            if any(d is None for d in word):  # past max_length: as predict_with_confidence, no tag, probability 0
                sentence_tags.append("")
                sentence_confidence.append(0.0)
                continue
            mean = [sum(values) / len(values) for values in zip(*word)]
            best = max(range(len(mean)), key=mean.__getitem__)
            sentence_tags.append(labels[best])
            sentence_confidence.append(mean[best])
        tags.append(sentence_tags)
        confidence.append(sentence_confidence)
    return tags, confidence


def pseudo_labelled(model: HyperX, task: str, lang: str, sentences: list[list[str]], keep: float,
                    pooling: str, max_length: int, unsure_words: float = 0.0,
                    teachers: Teachers | None = None) -> PseudoLabels:
    """The `keep` share of `sentences` the model tags most confidently (mean word probability), with its
    tags; then the `unsure_words` share of their words with the lowest probability is left out of the loss
    (a sentence left with no word at all is dropped: it would teach nothing). With `teachers`, the tags and
    probabilities are those of the mean of their word distributions and the model's."""
    if teachers is None:
        tags, confidence = predict_with_confidence(model, task, lang, sentences, pooling, max_length)
    else:
        tags, confidence = ensemble_tags(model, task, lang, sentences, pooling, max_length, teachers)
    mean = [sum(c) / len(c) for c in confidence]
    order = sorted(range(len(sentences)), key=lambda i: -mean[i])[:max(1, round(keep * len(sentences)))]
    words = sorted(c for i in order for c in confidence[i])
    # Words at the cut count, so unsure_words = 0 keeps every word (a word past max_length has probability 0).
    cut = words[min(int(unsure_words * len(words)), len(words) - 1)] if unsure_words else -1.0
    sure = {i: [c >= cut for c in confidence[i]] for i in order}
    order = [i for i in order if any(sure[i])]
    data = LabelledData(Path("<self-training>"), [sentences[i] for i in order], [tags[i] for i in order],
                        [[0] * len(sentences[i]) for i in order])
    counted = [[c for c, ok in zip(confidence[i], sure[i]) if ok] for i in order]
    return PseudoLabels(data, [sure[i] for i in order], sum(sum(c) / len(c) for c in counted) / len(counted))


def mixed(shots: LabelledData, pseudo: PseudoLabels, shot_repeats: int,
          labels: list[str]) -> tuple[list[list[str]], list[list[int]]]:
    """Shots (repeated) and pseudo-labelled sentences as one set of words and label ids (a left-out word's id
    is IGNORE); the stream shuffles it."""
    return (shots.words * shot_repeats + pseudo.data.words,
            label_ids(shots, labels) * shot_repeats + pseudo.ids(labels))
