"""Scoring functions for the two tasks: UPOS accuracy (POS tagging) and strict span F1 (NER).

Both functions are pure: they take per-sentence label lists and return a :class:`Score`.

UPOS accuracy
    Counted over *syntactic words* only, i.e. the CoNLL-U lines with an integer ID.  Multiword
    token lines (``3-4``) and empty nodes (``8.1``) are not words; the words inside a multiword
    token are.  This is the word set of the official CoNLL 2018 UD shared task scorer
    (``conll18_ud_eval.py``): its loader skips IDs containing ``.`` and expands every multiword
    token into its words; its UPOS score counts the aligned words whose UPOS strings are equal and
    reports precision = correct / system words, recall = correct / gold words and
    F1 = 2 * correct / (gold words + system words).  With gold tokenisation every word aligns,
    gold words == system words == N, so precision == recall == F1 == correct / N, which is the
    value returned here.  Tags are compared as exact strings (as the scorer does).  With no words
    at all the value is 0.0 (the scorer's convention for an empty denominator).

Span F1
    Equal to seqeval's strict IOB2 micro F1,
    ``seqeval.metrics.f1_score(gold, pred, mode="strict", scheme=IOB2)``.  Spans are extracted with
    seqeval's own strict IOB2 extractor (a span starts only at ``B-X`` and continues over ``I-X``
    of the same type; an ``I-`` tag after ``O``, after another type or at sentence start is not
    part of any span) and the micro scores are computed with the same formulas as seqeval:
    precision = true positive spans / predicted spans, recall = true positive spans / gold spans,
    F1 = 2PR / (P + R).  Any zero denominator gives 0.0, which is seqeval's value with its default
    ``zero_division="warn"`` (minus the warning): no gold spans -> recall 0.0, no predicted spans
    -> precision 0.0, and F1 is then 0.0.  Tags must be ``O``, ``B-<type>`` or ``I-<type>``;
    anything else raises :class:`ValueError` naming the sentence and position.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

UPOS_ACCURACY = "upos_accuracy"
SPAN_F1 = "span_f1"

__all__ = [
    "LabelScore",
    "Score",
    "UPOS_ACCURACY",
    "SPAN_F1",
    "upos_accuracy",
    "span_f1",
    "format_score_table",
]


@dataclass
class LabelScore:
    """Scores of one label: a UPOS tag, or an entity type for span F1.

    ``support`` is the number of gold items with this label (gold words with this UPOS tag, or
    gold spans of this type).
    """

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Score:
    """A headline number with its counts and per-label breakdown.

    ``metric`` is ``"upos_accuracy"`` or ``"span_f1"``; ``value`` is the headline number in [0, 1].

    For ``upos_accuracy``: ``correct`` = words whose predicted UPOS equals the gold UPOS,
    ``total`` = words (gold == predicted count, so ``predicted == total``), and
    ``precision == recall == value``.

    For ``span_f1``: ``correct`` = true positive spans (exact type and boundaries),
    ``total`` = gold spans, ``predicted`` = predicted spans; ``precision`` = correct / predicted,
    ``recall`` = correct / total, ``value`` = micro F1 (each 0.0 when its denominator is 0).

    ``per_label`` is sorted by label.
    """

    metric: str
    value: float
    correct: int
    total: int
    per_label: list[LabelScore] = field(default_factory=list)
    predicted: int = 0
    precision: float = 0.0
    recall: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (plain ``str``/``int``/``float``/``list``/``dict`` only)."""
        d = asdict(self)
        d["value"] = float(self.value)
        d["precision"] = float(self.precision)
        d["recall"] = float(self.recall)
        d["correct"] = int(self.correct)
        d["total"] = int(self.total)
        d["predicted"] = int(self.predicted)
        d["per_label"] = [
            {
                "label": str(ls.label),
                "precision": float(ls.precision),
                "recall": float(ls.recall),
                "f1": float(ls.f1),
                "support": int(ls.support),
            }
            for ls in self.per_label
        ]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Score:
        """Inverse of :meth:`to_dict`."""
        return cls(
            metric=str(d["metric"]),
            value=float(d["value"]),
            correct=int(d["correct"]),
            total=int(d["total"]),
            per_label=[LabelScore(**ls) for ls in d.get("per_label", [])],
            predicted=int(d.get("predicted", 0)),
            precision=float(d.get("precision", 0.0)),
            recall=float(d.get("recall", 0.0)),
        )


def _check_shapes(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], what: str) -> None:
    if len(gold) != len(pred):
        raise ValueError(
            f"{what}: gold has {len(gold)} sentences but predictions have {len(pred)}"
        )
    for i, (g, p) in enumerate(zip(gold, pred)):
        if isinstance(g, str) or isinstance(p, str):
            raise ValueError(f"{what}: sentence {i} must be a list of labels, not a string")
        if len(g) != len(p):
            raise ValueError(
                f"{what}: sentence {i} has {len(g)} gold labels but {len(p)} predicted labels"
            )


def _div(num: float, den: float) -> float:
    return num / den if den else 0.0


def upos_accuracy(gold: list[list[str]], pred: list[list[str]]) -> Score:
    """UPOS accuracy over syntactic words (see the module docstring for the definition).

    ``gold[i]`` and ``pred[i]`` are the UPOS tags of the integer-ID words of sentence ``i``.
    Per label ``T``: precision = words correctly tagged T / words predicted T, recall = words
    correctly tagged T / gold words T, F1 = 2 * correct / (predicted + gold) (the scorer's
    formula), support = gold words T.
    """
    _check_shapes(gold, pred, "upos_accuracy")
    correct = 0
    total = 0
    tp: Counter[str] = Counter()
    gold_count: Counter[str] = Counter()
    pred_count: Counter[str] = Counter()
    for g_sent, p_sent in zip(gold, pred):
        for g, p in zip(g_sent, p_sent):
            total += 1
            gold_count[g] += 1
            pred_count[p] += 1
            if g == p:
                correct += 1
                tp[g] += 1
    per_label = [
        LabelScore(
            label=label,
            precision=_div(tp[label], pred_count[label]),
            recall=_div(tp[label], gold_count[label]),
            f1=_div(2 * tp[label], pred_count[label] + gold_count[label]),
            support=gold_count[label],
        )
        for label in sorted(set(gold_count) | set(pred_count))
    ]
    value = _div(correct, total)
    return Score(
        metric=UPOS_ACCURACY,
        value=value,
        correct=correct,
        total=total,
        per_label=per_label,
        predicted=total,
        precision=value,
        recall=value,
    )


def _check_iob2(sentences: Sequence[Sequence[str]], side: str) -> None:
    for i, sent in enumerate(sentences):
        for j, tag in enumerate(sent):
            if not isinstance(tag, str):
                raise ValueError(f"span_f1: {side} sentence {i}, position {j}: tag {tag!r} is not a string")
            if tag == "O":
                continue
            if len(tag) > 2 and tag[:2] in ("B-", "I-"):
                continue
            raise ValueError(
                f"span_f1: {side} sentence {i}, position {j}: tag {tag!r} is not IOB2 "
                "(expected 'O', 'B-<type>' or 'I-<type>')"
            )


def _spans(sentences: Sequence[Sequence[str]]) -> set[tuple[int, str, int, int]]:
    """Strict IOB2 spans as ``(sentence, type, start, end)`` using seqeval's own extractor."""
    from seqeval.scheme import IOB2, Entities

    entities = Entities([list(s) for s in sentences], IOB2)
    return {e.to_tuple() for sent in entities.entities for e in sent}


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    # Same operations, in the same order, as seqeval's precision_recall_fscore_support (beta=1).
    precision = _div(tp, n_pred)
    recall = _div(tp, n_gold)
    denom = precision + recall
    f1 = 2 * precision * recall / denom if denom else 0.0
    return precision, recall, f1


def _per_type(gold: list[list[str]], pred: list[list[str]]) -> list[LabelScore]:
    """Per entity type, seqeval's own strict IOB2 ``classification_report`` (every type in gold or
    predictions, sorted; 0.0 for an empty denominator)."""
    import warnings

    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero_division=0 says what an empty denominator gives
        report = classification_report([list(s) for s in gold], [list(s) for s in pred], mode="strict",
                                       scheme=IOB2, output_dict=True, zero_division=0)
    return [LabelScore(label=str(label), precision=float(row["precision"]), recall=float(row["recall"]),
                       f1=float(row["f1-score"]), support=int(row["support"]))
            for label, row in sorted(report.items()) if not label.endswith(" avg")]


def span_f1(gold: list[list[str]], pred: list[list[str]]) -> Score:
    """Strict IOB2 micro span F1, equal to seqeval's ``f1_score(mode="strict", scheme=IOB2)``.

    See the module docstring for the zero-denominator conventions.  Per label (entity type):
    precision/recall/F1 as in seqeval's ``classification_report`` (strict IOB2) and
    support = gold spans of that type.
    """
    _check_shapes(gold, pred, "span_f1")
    _check_iob2(gold, "gold")
    _check_iob2(pred, "predicted")
    gold_spans = _spans(gold)
    pred_spans = _spans(pred)
    hits = gold_spans & pred_spans

    per_label = _per_type(gold, pred) if gold_spans or pred_spans else []
    precision, recall, f1 = _prf(len(hits), len(pred_spans), len(gold_spans))
    return Score(
        metric=SPAN_F1,
        value=f1,
        correct=len(hits),
        total=len(gold_spans),
        per_label=per_label,
        predicted=len(pred_spans),
        precision=precision,
        recall=recall,
    )


def _pct(x: float) -> str:
    return f"{100.0 * x:.2f}"


def format_score_table(score: Score) -> Table:
    """A rich table: one row per label (precision, recall, F1, support in %) and a total row.

    The total row is "accuracy" for UPOS (P = R = F1 = accuracy, support = words) and
    "micro avg" for span F1 (support = gold spans).
    """
    from rich.table import Table

    if score.metric == UPOS_ACCURACY:
        title = f"UPOS accuracy {_pct(score.value)}% ({score.correct}/{score.total} words)"
        total_name = "accuracy"
    elif score.metric == SPAN_F1:
        title = (
            f"Span F1 {_pct(score.value)}% ({score.correct}/{score.total} gold spans found, "
            f"{score.predicted} predicted)"
        )
        total_name = "micro avg"
    else:
        title = f"{score.metric} {_pct(score.value)}%"
        total_name = "total"
    table = Table(title=title)
    table.add_column("label")
    table.add_column("precision", justify="right")
    table.add_column("recall", justify="right")
    table.add_column("F1", justify="right")
    table.add_column("support", justify="right")
    for ls in score.per_label:
        table.add_row(ls.label, _pct(ls.precision), _pct(ls.recall), _pct(ls.f1), str(ls.support))
    table.add_section()
    table.add_row(
        total_name,
        _pct(score.precision),
        _pct(score.recall),
        _pct(score.value),
        str(score.total),
        style="bold",
    )
    return table
