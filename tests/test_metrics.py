"""Tests for hxtool.evaluation.metrics: hand-computed UPOS accuracy and strict IOB2 span F1, cross-checked with seqeval."""

from __future__ import annotations

import io
import json
import random
import warnings

import conllu
import pytest
from rich.console import Console
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from hxtool.evaluation.metrics import LabelScore, Score, format_score_table, span_f1, upos_accuracy

# --------------------------------------------------------------------------------------------
# UPOS accuracy
# --------------------------------------------------------------------------------------------

# "Juan fue al mercado viejo y María [fue] al cine ." with two multiword tokens (3-4 and 9-10,
# "al" = "a" + "el") and an empty node 8.1 for the elided verb.  Syntactic words are the 12
# integer-ID lines; surface tokens are 10; the MWT lines and the empty node are not words.
GOLD_CONLLU = """\
# sent_id = 1
# text = Juan fue al mercado viejo y María al cine .
1\tJuan\tJuan\tPROPN\t_\t_\t2\tnsubj\t_\t_
2\tfue\tir\tVERB\t_\t_\t0\troot\t_\t_
3-4\tal\t_\t_\t_\t_\t_\t_\t_\t_
3\ta\ta\tADP\t_\t_\t5\tcase\t_\t_
4\tel\tel\tDET\t_\t_\t5\tdet\t_\t_
5\tmercado\tmercado\tNOUN\t_\t_\t2\tobl\t_\t_
6\tviejo\tviejo\tADJ\t_\t_\t5\tamod\t_\t_
7\ty\ty\tCCONJ\t_\t_\t8\tcc\t_\t_
8\tMaría\tMaría\tPROPN\t_\t_\t2\tconj\t_\t_
8.1\tfue\tir\tVERB\t_\t_\t_\t_\t2:conj\t_
9-10\tal\t_\t_\t_\t_\t_\t_\t_\t_
9\ta\ta\tADP\t_\t_\t11\tcase\t_\t_
10\tel\tel\tDET\t_\t_\t11\tdet\t_\t_
11\tcine\tcine\tNOUN\t_\t_\t8\torphan\t_\t_
12\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_

"""

# Same tokenisation; UPOS errors on words 1 (PROPN->NOUN), 4 (DET->PRON) and 6 (ADJ->NOUN).
# The MWT line 3-4 carries a (meaningless) ADP and the empty node a wrong NOUN: both must be
# ignored, as the CoNLL 2018 scorer ignores them.
SYSTEM_CONLLU = """\
# sent_id = 1
# text = Juan fue al mercado viejo y María al cine .
1\tJuan\tJuan\tNOUN\t_\t_\t2\tnsubj\t_\t_
2\tfue\tir\tVERB\t_\t_\t0\troot\t_\t_
3-4\tal\t_\tADP\t_\t_\t_\t_\t_\t_
3\ta\ta\tADP\t_\t_\t5\tcase\t_\t_
4\tel\tel\tPRON\t_\t_\t5\tdet\t_\t_
5\tmercado\tmercado\tNOUN\t_\t_\t2\tobl\t_\t_
6\tviejo\tviejo\tNOUN\t_\t_\t5\tamod\t_\t_
7\ty\ty\tCCONJ\t_\t_\t8\tcc\t_\t_
8\tMaría\tMaría\tPROPN\t_\t_\t2\tconj\t_\t_
8.1\tfue\tir\tNOUN\t_\t_\t_\t_\t2:conj\t_
9-10\tal\t_\t_\t_\t_\t_\t_\t_\t_
9\ta\ta\tADP\t_\t_\t11\tcase\t_\t_
10\tel\tel\tDET\t_\t_\t11\tdet\t_\t_
11\tcine\tcine\tNOUN\t_\t_\t8\torphan\t_\t_
12\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_

"""


def upos_words(text: str) -> list[list[str]]:
    """Per-sentence UPOS of syntactic words: integer ids only (no MWT ranges, no empty nodes)."""
    return [[tok["upos"] for tok in sent if isinstance(tok["id"], int)] for sent in conllu.parse(text)]


def test_conllu_word_extraction_skips_mwt_and_empty_nodes() -> None:
    gold = upos_words(GOLD_CONLLU)
    assert gold == [
        ["PROPN", "VERB", "ADP", "DET", "NOUN", "ADJ", "CCONJ", "PROPN", "ADP", "DET", "NOUN", "PUNCT"]
    ]


def test_upos_accuracy_conllu_with_mwt_and_empty_node() -> None:
    score = upos_accuracy(upos_words(GOLD_CONLLU), upos_words(SYSTEM_CONLLU))
    # 12 syntactic words, 3 wrong (Juan, el, viejo) -> 9/12 = 0.75.
    # (Counting the 10 surface tokens, the empty node (13) or the MWT lines (14) would give
    # another denominator.)
    assert score.metric == "upos_accuracy"
    assert score.correct == 9
    assert score.total == 12
    assert score.predicted == 12
    assert score.value == pytest.approx(9 / 12)
    assert score.precision == score.recall == score.value
    per = {ls.label: ls for ls in score.per_label}
    # Labels: union of gold and predicted tags, sorted.
    assert list(per) == ["ADJ", "ADP", "CCONJ", "DET", "NOUN", "PRON", "PROPN", "PUNCT", "VERB"]
    # gold counts: PROPN 2, VERB 1, ADP 2, DET 2, NOUN 2, ADJ 1, CCONJ 1, PUNCT 1
    # pred counts: NOUN 4 (Juan, mercado, viejo, cine), PROPN 1, VERB 1, ADP 2, DET 1, PRON 1,
    #              CCONJ 1, PUNCT 1, ADJ 0
    # NOUN: tp 2 -> P 2/4, R 2/2, F1 2*2/(4+2) = 2/3
    assert per["NOUN"] == LabelScore("NOUN", pytest.approx(0.5), 1.0, pytest.approx(2 / 3), 2)
    # PROPN: tp 1 -> P 1/1, R 1/2, F1 2/3
    assert per["PROPN"] == LabelScore("PROPN", 1.0, 0.5, pytest.approx(2 / 3), 2)
    # DET: tp 1 -> P 1/1, R 1/2, F1 2/3
    assert per["DET"] == LabelScore("DET", 1.0, 0.5, pytest.approx(2 / 3), 2)
    # ADJ: never predicted -> P 0 (0/0), R 0/1, F1 0
    assert per["ADJ"] == LabelScore("ADJ", 0.0, 0.0, 0.0, 1)
    # PRON: predicted once, never gold -> P 0/1, R 0 (0/0), F1 0, support 0
    assert per["PRON"] == LabelScore("PRON", 0.0, 0.0, 0.0, 0)
    assert per["ADP"] == LabelScore("ADP", 1.0, 1.0, 1.0, 2)
    assert sum(ls.support for ls in score.per_label) == 12


def test_upos_accuracy_replicates_conll18_scorer_by_hand() -> None:
    # conll18_ud_eval.py: words = integer-ID lines (MWT expanded, empty nodes skipped), pooled over
    # the whole file.  UPOS: c = aligned words with equal UPOS, P = c/system words,
    # R = c/gold words, F1 = 2c/(gold + system).  Gold tokenisation: every word aligns.
    # Sentence A: 1 word, 1 correct.  Sentence B: 3 words, 1 correct.
    # File totals: g = s = 4, c = 2 -> P = R = 2/4, F1 = 2*2/(4+4) = 0.5.
    # (A per-sentence average would give (1/1 + 1/3)/2 = 2/3, which the scorer does not do.)
    gold = [["NOUN"], ["DET", "NOUN", "VERB"]]
    pred = [["NOUN"], ["DET", "VERB", "NOUN"]]
    score = upos_accuracy(gold, pred)
    assert (score.correct, score.total) == (2, 4)
    assert score.value == 0.5
    # Tags compare as exact strings, like the scorer (no case folding).
    assert upos_accuracy([["NOUN"]], [["noun"]]).value == 0.0


def test_upos_accuracy_perfect_and_empty() -> None:
    s = upos_accuracy([["A", "B"], [], ["A"]], [["A", "B"], [], ["A"]])
    assert (s.value, s.correct, s.total) == (1.0, 3, 3)
    empty = upos_accuracy([], [])
    # No words: 0.0 (the scorer's value for an empty denominator), no labels.
    assert (empty.value, empty.correct, empty.total, empty.per_label) == (0.0, 0, 0, [])


def test_upos_accuracy_shape_errors_name_the_sentence() -> None:
    with pytest.raises(ValueError, match="2 sentences.*1"):
        upos_accuracy([["NOUN"], ["VERB"]], [["NOUN"]])
    with pytest.raises(ValueError, match="sentence 1 has 2 gold labels but 1 predicted"):
        upos_accuracy([["NOUN"], ["VERB", "NOUN"]], [["NOUN"], ["VERB"]])


# --------------------------------------------------------------------------------------------
# Span F1
# --------------------------------------------------------------------------------------------


def seqeval_strict(fn, gold, pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(gold, pred, mode="strict", scheme=IOB2)


def test_span_f1_mixed_example() -> None:
    gold = [
        ["B-PER", "I-PER", "O", "B-LOC"],  # PER[0,2) LOC[3,4) (LOC at sentence end)
        ["O", "B-ORG", "I-ORG", "I-ORG"],  # ORG[1,4) (ends at sentence end)
        ["B-LOC", "O", "B-PER"],  # LOC[0,1) PER[2,3)
    ]
    pred = [
        ["B-PER", "I-PER", "O", "B-LOC"],  # PER ok, LOC ok
        ["O", "B-ORG", "I-ORG", "O"],  # ORG[1,3): wrong end
        ["B-LOC", "O", "I-PER"],  # LOC ok; I-PER after O is no span in strict mode
    ]
    s = span_f1(gold, pred)
    # gold 5 spans, predicted 4, true positives 3:
    # P = 3/4, R = 3/5, F1 = 2*(3/4)*(3/5)/(3/4+3/5) = 0.9/1.35 = 2/3
    assert s.metric == "span_f1"
    assert (s.correct, s.total, s.predicted) == (3, 5, 4)
    assert s.precision == pytest.approx(3 / 4)
    assert s.recall == pytest.approx(3 / 5)
    assert s.value == pytest.approx(2 / 3)
    assert s.value == seqeval_strict(f1_score, gold, pred)
    per = {ls.label: ls for ls in s.per_label}
    assert list(per) == ["LOC", "ORG", "PER"]
    # LOC: 2 gold, 2 pred, 2 tp
    assert per["LOC"] == LabelScore("LOC", 1.0, 1.0, 1.0, 2)
    # ORG: 1 gold, 1 pred, 0 tp
    assert per["ORG"] == LabelScore("ORG", 0.0, 0.0, 0.0, 1)
    # PER: 2 gold, 1 pred, 1 tp -> P 1, R 1/2, F1 2/3
    assert per["PER"] == LabelScore("PER", 1.0, 0.5, pytest.approx(2 / 3), 2)


def test_span_f1_entities_at_sentence_end() -> None:
    gold = [["O", "B-PER", "I-PER"], ["B-LOC"]]
    assert span_f1(gold, gold).value == 1.0
    pred = [["O", "B-PER", "O"], ["B-LOC"]]
    s = span_f1(gold, pred)
    # gold PER[1,3) LOC[0,1); pred PER[1,2) LOC[0,1): tp 1 of 2 gold, 2 pred -> P = R = F1 = 1/2
    assert (s.correct, s.total, s.predicted) == (1, 2, 2)
    assert (s.precision, s.recall, s.value) == (0.5, 0.5, 0.5)
    assert s.value == seqeval_strict(f1_score, gold, pred)


def test_span_f1_i_after_o_is_not_a_span() -> None:
    gold = [["O", "B-PER", "I-PER", "O"]]
    pred = [["O", "I-PER", "I-PER", "O"]]
    s = span_f1(gold, pred)
    # strict IOB2: the predicted I-PER I-PER has no B- start -> 0 predicted spans.
    # P = 0/0 -> 0.0, R = 0/1 = 0, F1 = 0
    assert (s.correct, s.total, s.predicted) == (0, 1, 0)
    assert (s.precision, s.recall, s.value) == (0.0, 0.0, 0.0)
    assert s.value == seqeval_strict(f1_score, gold, pred)
    # The lenient (conlleval) mode would have accepted it as PER[1,3): F1 1.0.
    assert f1_score(gold, pred) == 1.0
    # An I- at the very start of a sentence is no span either.
    s2 = span_f1([["I-LOC", "O"]], [["I-LOC", "O"]])
    assert (s2.correct, s2.total, s2.predicted, s2.value) == (0, 0, 0, 0.0)


def test_span_f1_b_x_i_y_mix() -> None:
    gold = [["B-LOC", "B-PER", "I-PER"], ["B-PER", "I-PER", "O"]]
    pred = [["B-LOC", "I-PER", "I-PER"], ["B-PER", "I-LOC", "O"]]
    # gold: LOC[0,1) PER[1,3) in s0; PER[0,2) in s1 -> 3 spans
    # pred s0: B-LOC then I-PER (other type) ends LOC[0,1); I-PER I-PER has no B- -> nothing.
    # pred s1: B-PER then I-LOC ends PER[0,1); I-LOC without B-LOC -> nothing.
    # pred spans: LOC(s0,[0,1)), PER(s1,[0,1)) -> 2; tp: LOC only -> 1
    # P = 1/2, R = 1/3, F1 = 2*(1/2)*(1/3)/(1/2+1/3) = (1/3)/(5/6) = 2/5
    s = span_f1(gold, pred)
    assert (s.correct, s.total, s.predicted) == (1, 3, 2)
    assert s.precision == 0.5
    assert s.recall == pytest.approx(1 / 3)
    assert s.value == pytest.approx(0.4)
    assert s.value == seqeval_strict(f1_score, gold, pred)
    per = {ls.label: ls for ls in s.per_label}
    assert per["LOC"] == LabelScore("LOC", 1.0, 1.0, 1.0, 1)
    assert per["PER"] == LabelScore("PER", 0.0, 0.0, 0.0, 2)


def test_span_f1_all_o_and_empty_cases() -> None:
    all_o = [["O", "O"], ["O"]]
    # No gold and no predicted spans: P = R = F1 = 0.0 (seqeval gives 0.0 with a warning).
    s = span_f1(all_o, all_o)
    assert (s.value, s.precision, s.recall, s.correct, s.total, s.predicted) == (0.0, 0.0, 0.0, 0, 0, 0)
    assert s.per_label == []
    assert s.value == seqeval_strict(f1_score, all_o, all_o)
    # No gold spans, one predicted: P = 0/1, R = 0/0 -> 0, F1 0; the type still gets a row.
    pred = [["B-ORG", "O"], ["O"]]
    s = span_f1(all_o, pred)
    assert (s.value, s.correct, s.total, s.predicted) == (0.0, 0, 0, 1)
    assert s.per_label == [LabelScore("ORG", 0.0, 0.0, 0.0, 0)]
    assert s.value == seqeval_strict(f1_score, all_o, pred)
    # Gold spans, nothing predicted: P = 0/0 -> 0, R = 0/1, F1 0.
    s = span_f1(pred, all_o)
    assert (s.value, s.correct, s.total, s.predicted) == (0.0, 0, 1, 0)
    assert s.value == seqeval_strict(f1_score, pred, all_o)
    # No sentences at all.
    assert span_f1([], []).value == 0.0


def test_span_f1_errors() -> None:
    with pytest.raises(ValueError, match="1 sentences.*2"):
        span_f1([["O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="sentence 1 has 1 gold labels but 2 predicted"):
        span_f1([["O"], ["O"]], [["O"], ["O", "O"]])
    with pytest.raises(ValueError, match="predicted sentence 0, position 1: tag 'PER'"):
        span_f1([["O", "O"]], [["O", "PER"]])
    with pytest.raises(ValueError, match="gold sentence 1, position 0: tag 'E-PER'"):
        span_f1([["O"], ["E-PER"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="tag 'B-'"):
        span_f1([["B-"]], [["O"]])


TAGS = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def test_span_f1_matches_seqeval_on_random_sequences() -> None:
    rng = random.Random(12345)
    for _ in range(150):
        n_sent = rng.randint(1, 4)
        gold, pred = [], []
        for _ in range(n_sent):
            length = rng.randint(0, 8)
            g = [rng.choice(TAGS) for _ in range(length)]
            # Predictions: mostly copy gold with some noise, so true positives are common.
            p = [t if rng.random() < 0.7 else rng.choice(TAGS) for t in g]
            gold.append(g)
            pred.append(p)
        s = span_f1(gold, pred)
        # Exact equality with seqeval's strict IOB2 micro scores (same formulas, same order).
        assert s.value == seqeval_strict(f1_score, gold, pred)
        assert s.precision == seqeval_strict(precision_score, gold, pred)
        assert s.recall == seqeval_strict(recall_score, gold, pred)
        assert 0 <= s.correct <= min(s.total, s.predicted)
        if s.per_label:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True)
            for ls in s.per_label:
                r = report[ls.label]
                assert (ls.precision, ls.recall, ls.f1, ls.support) == (
                    r["precision"],
                    r["recall"],
                    r["f1-score"],
                    r["support"],
                )
            assert s.total == report["micro avg"]["support"]


# --------------------------------------------------------------------------------------------
# Score serialisation and table
# --------------------------------------------------------------------------------------------


def test_to_dict_is_json_friendly_and_round_trips() -> None:
    s = span_f1([["B-PER", "O"]], [["B-PER", "B-LOC"]])
    d = s.to_dict()
    text = json.dumps(d)
    back = json.loads(text)
    assert back["metric"] == "span_f1"
    # tp 1, gold 1, pred 2: P 1/2, R 1, F1 2/3
    assert back["correct"] == 1 and back["total"] == 1 and back["predicted"] == 2
    assert back["precision"] == 0.5 and back["recall"] == 1.0
    assert back["value"] == pytest.approx(2 / 3)
    assert back["per_label"][0] == {"label": "LOC", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert Score.from_dict(back) == s


def render(table) -> str:
    buf = io.StringIO()
    Console(file=buf, width=120, color_system=None).print(table)
    return buf.getvalue()


def test_format_score_table_span() -> None:
    s = span_f1([["B-PER", "I-PER", "O"], ["B-LOC"]], [["B-PER", "I-PER", "O"], ["O"]])
    table = format_score_table(s)
    assert table.row_count == len(s.per_label) + 1 == 3
    text = render(table)
    # PER 100/100/100 support 1; LOC 0/0/0 support 1; micro: P 1/1, R 1/2, F1 2/3
    assert "PER" in text and "LOC" in text and "micro avg" in text
    assert "66.67" in text and "50.00" in text


def test_format_score_table_upos() -> None:
    s = upos_accuracy(upos_words(GOLD_CONLLU), upos_words(SYSTEM_CONLLU))
    table = format_score_table(s)
    assert table.row_count == len(s.per_label) + 1
    text = render(table)
    assert "accuracy" in text and "75.00" in text and "9/12" in text
