"""Self-training after few-shot: raw text labelled by the tuned model joins the shots for a second round."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import TINY_DATA
from hxtool.data.batches import IGNORE
from hxtool.data.labelled import read_labelled
from hxtool.errors import HxError
from hxtool.model.lora import LoraOptions
from hxtool.store.session import load_model
from hxtool.tagging import predict_distributions, predict_tags, predict_with_confidence
from hxtool.workflows.fewshot import AUTO_LORA_FROM, default_self_training, fewshot
from hxtool.workflows.self_training import (SelfTraining, Teachers, ensemble_tags, pseudo_labelled, requested,
                                            sample_raw_sentences, split_words)
from test_lora import fewshot_config, words


def test_raw_lines_split_into_words_as_treebanks_do() -> None:
    assert split_words("Il-Qorti qalet: b'tixħim, ta' 68 sena.") == \
        ["Il-", "Qorti", "qalet", ":", "b'", "tixħim", ",", "ta'", "68", "sena", "."]


def test_raw_sentences_are_a_seeded_sample_of_usable_lines(tmp_path: Path) -> None:
    corpus = tmp_path / "raw.txt"
    lines = [f"line {i} has words" for i in range(50)] + ["too short", " ".join(["w"] * 61)]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = sample_raw_sentences(corpus, 10, seed=1)
    assert first == sample_raw_sentences(corpus, 10, seed=1) != sample_raw_sentences(corpus, 10, seed=2)
    assert len(first) == 10 and len({tuple(s) for s in first}) == 10
    assert all(s[0] == "line" and len(s) == 4 for s in first)  # the 2- and 61-word lines never come
    assert len(sample_raw_sentences(corpus, 500, seed=1)) == 50


def test_confidences_come_with_the_same_tags_as_predict_tags(checkpoint: Path) -> None:
    model, _ = load_model(checkpoint)
    sentences = words("tr")
    tags, confidence = predict_with_confidence(model, "pos", "tr", sentences, max_length=32)
    assert tags == predict_tags(model, "pos", "tr", sentences, max_length=32)
    labels = len(model.registry.labels("pos", "tr"))
    assert all(1 / labels <= p <= 1 for row in confidence for p in row)
    pseudo = pseudo_labelled(model, "pos", "tr", sentences, 0.5, "first", 32)
    kept = len(pseudo.data)
    assert kept == round(len(sentences) / 2) and all(all(row) for row in pseudo.sure)
    means = sorted((sum(c) / len(c) for c in confidence), reverse=True)
    assert pseudo.confidence == pytest.approx(sum(means[:kept]) / kept)


def test_unsure_words_are_left_out_of_the_loss_and_sure_ones_keep_their_tags(checkpoint: Path) -> None:
    model, _ = load_model(checkpoint)
    sentences = words("tr")
    tags, confidence = predict_with_confidence(model, "pos", "tr", sentences, max_length=32)
    pseudo = pseudo_labelled(model, "pos", "tr", sentences, 1.0, "first", 32, unsure_words=0.3)
    labels = model.registry.labels("pos", "tr")
    ids = pseudo.ids(labels)
    everything = [p for row in confidence for p in row]
    cut = sorted(everything)[int(0.3 * len(everything))]
    counted = [[p for p in row if p >= cut] for row in confidence]
    left_out = sum(i == IGNORE for row in ids for i in row)
    assert left_out == sum(p < cut for p in everything) and 0.2 * len(everything) < left_out <= 0.3 * len(everything)
    assert pseudo.confidence == pytest.approx(sum(sum(c) / len(c) for c in counted if c) / sum(map(bool, counted)))
    by_words = {tuple(s): (t, c) for s, t, c in zip(sentences, tags, confidence)}
    for sentence, row, sure in zip(pseudo.data.words, ids, pseudo.sure):
        gold, probability = by_words[tuple(sentence)]
        assert [labels[i] for i in row if i != IGNORE] == [t for t, ok in zip(gold, sure) if ok]
        assert sure == [p >= cut for p in probability] and any(sure)
    with pytest.raises(HxError, match="unsure_words"):
        SelfTraining(unsure_words=1.0).validate()


def test_auto_self_trains_from_twenty_sentences_and_leaves_other_languages_alone(checkpoint: Path,
                                                                                tmp_path: Path) -> None:
    assert [default_self_training("auto", n) for n in (5, AUTO_LORA_FROM - 1, AUTO_LORA_FROM)] == [False, False, True]
    assert not default_self_training("lang+head+lora", 50)
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    en_before = predict_tags(model, "pos", "en", words("en"))
    state_before = {k: v.clone() for k, v in model.learned_state_dict().items()}
    few = fewshot(model, meta, checkpoint, "pos", "tr", train, None, 4, fewshot_config(2), tune="auto", quiet=True)
    assert few.self_training is None
    many = fewshot(model, meta, checkpoint, "pos", "tr", train, None, AUTO_LORA_FROM, fewshot_config(2),
                   tune="auto", quiet=True, self_training=SelfTraining(sentences=12, epochs=1))
    second = many.self_training
    assert second["corpus"] == str(TINY_DATA / "tr-raw.txt") and second["labelled"] == 12 and second["kept"] == 6
    # one epoch over 20 shots x 3 + 6 raw sentences at batch 4
    assert second["steps"] == 17
    reloaded, _ = load_model(checkpoint)
    assert reloaded.registry.language("tr").fewshot[-1]["tune"] == "lang+head+lora"
    assert not list(checkpoint.parent.glob("*.resume"))  # both rounds' resumable state is gone
    changed = [k for k in state_before if not torch.equal(state_before[k], reloaded.learned_state_dict()[k])]
    assert changed == ["hypernet.embeddings.language.weight"]
    table_before = state_before["hypernet.embeddings.language.weight"]
    table_after = reloaded.learned_state_dict()["hypernet.embeddings.language.weight"]
    tr = reloaded.registry.lang_index("tr")
    assert torch.equal(torch.cat([table_before[:tr], table_before[tr + 1:]]),
                       torch.cat([table_after[:tr], table_after[tr + 1:]]))
    assert predict_tags(reloaded, "pos", "en", words("en")) == en_before


def test_the_second_round_changes_the_tuned_model(checkpoint: Path, tmp_path: Path) -> None:
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    snapshot = model.snapshot()
    fewshot(model, meta, checkpoint, "pos", "tr", train, None, 20, fewshot_config(3), tune="auto", quiet=True,
            output=tmp_path / "one", self_training=SelfTraining(sentences=0))
    one_round = model.language_state("tr")
    model.restore(snapshot)
    fewshot(model, meta, checkpoint, "pos", "tr", train, None, 20, fewshot_config(3), tune="auto", quiet=True,
            output=tmp_path / "two", self_training=SelfTraining(sentences=10, epochs=1))
    two_rounds = model.language_state("tr")
    assert one_round.keys() == two_rounds.keys()
    assert any(not torch.equal(one_round[k], two_rounds[k]) for k in one_round)
    model.restore(snapshot)  # every raw sentence kept, their least sure half of the words left out instead
    report = fewshot(model, meta, checkpoint, "pos", "tr", train, None, 20, fewshot_config(3), tune="auto",
                     quiet=True, output=tmp_path / "words",
                     self_training=SelfTraining(sentences=10, epochs=1, keep=1.0, unsure_words=0.5))
    assert report.self_training["unsure_words"] == 0.5 and report.self_training["kept"] >= 5
    words_left_out = model.language_state("tr")
    assert any(not torch.equal(two_rounds[k], words_left_out[k]) for k in two_rounds)


def self_trainer(checkpoint: Path, tmp_path: Path):
    """fewshot on 20 tr sentences with a 10-sentence second round, each call from the same loaded model: returns
    a run(name, lora) -> (the second round's record, tr's state after), and the model."""
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    snapshot = model.snapshot()

    def run(name: str, lora: LoraOptions) -> tuple[dict, dict]:
        model.restore(snapshot)
        report = fewshot(model, meta, checkpoint, "pos", "tr", train, None, 20, fewshot_config(3), tune="auto",
                         quiet=True, output=tmp_path / name, lora=lora,
                         self_training=SelfTraining(sentences=10, epochs=1))
        return report.self_training, model.language_state("tr")
    return run, model


def test_the_teacher_rate_moves_the_first_round_only(checkpoint: Path, tmp_path: Path) -> None:
    """--lora-teacher-lr: the model that labels the raw text is the one a run at that rate would have tuned,
    the second round then moves the updates at --lora-lr; set to --lora-lr it changes nothing."""
    run, _ = self_trainer(checkpoint, tmp_path)
    slow, fast = 1e-4, 3e-2
    slow_record, slow_state = run("slow", LoraOptions(lr=slow, teacher_lr=None, extra_teacher_lrs=()))  # one rate in both rounds
    fast_record, fast_state = run("fast", LoraOptions(lr=fast, teacher_lr=None, extra_teacher_lrs=()))
    taught_record, taught_state = run("taught", LoraOptions(lr=fast, teacher_lr=slow, extra_teacher_lrs=()))
    assert taught_record == slow_record != fast_record  # the same labelled raw text, the same confidence
    updates = [k for k in taught_state if k.startswith("lora.")]
    assert updates and all(not torch.equal(taught_state[k], slow_state[k]) for k in updates)
    same_record, same_state = run("same", LoraOptions(lr=fast, teacher_lr=fast, extra_teacher_lrs=()))
    assert same_record == fast_record and all(torch.equal(same_state[k], fast_state[k]) for k in fast_state)
    saved = load_model(tmp_path / "taught")[0]
    assert saved.registry.language("tr").fewshot[-1]["self_trained"] == taught_record["kept"]
    with pytest.raises(HxError, match="teacher"):
        run("bad", LoraOptions(teacher_lr=0.0))


def test_an_ensemble_labels_with_the_mean_of_its_members_word_probabilities(checkpoint: Path) -> None:
    model, _ = load_model(checkpoint)
    sentences = words("tr")
    params = list(model.own_head("pos", "tr").parameters())
    own = [p.detach().clone() for p in params]
    alone = predict_with_confidence(model, "pos", "tr", sentences, max_length=32)
    assert ensemble_tags(model, "pos", "tr", sentences, "first", 32, Teachers(params, [own])) == alone
    other = [p.detach() + torch.randn_like(p) for p in params]
    tags, confidence = ensemble_tags(model, "pos", "tr", sentences, "first", 32, Teachers(params, [other]))
    assert all(torch.equal(p, v) for p, v in zip(params, own))  # the model's own weights are back
    mine = predict_distributions(model, "pos", "tr", sentences, max_length=32)
    with torch.no_grad():
        for p, v in zip(params, other):
            p.copy_(v)
    theirs = predict_distributions(model, "pos", "tr", sentences, max_length=32)
    labels = model.registry.labels("pos", "tr")
    for row_tags, row_confidence, row_mine, row_theirs in zip(tags, confidence, mine, theirs):
        for tag, p, a, b in zip(row_tags, row_confidence, row_mine, row_theirs):
            mean = (torch.tensor(a, dtype=torch.float64) + torch.tensor(b, dtype=torch.float64)) / 2
            assert p == pytest.approx(float(mean.max())) and tag == labels[int(mean.argmax())]
    assert tags != alone[0] or confidence != alone[1]


def test_extra_teachers_label_the_raw_text_and_the_second_round_goes_on_from_the_first(checkpoint: Path,
                                                                                      tmp_path: Path) -> None:
    """An extra teacher at --lora-lr is the first round again (seeded alike, from the same start): the run is
    bit-identical to one without it. One at another rate changes the labels, and other languages stay put."""
    run, model = self_trainer(checkpoint, tmp_path)
    en_before = predict_tags(model, "pos", "en", words("en"))
    plain_record, plain_state = run("plain", LoraOptions(lr=3e-2, extra_teacher_lrs=()))
    same_record, same_state = run("same", LoraOptions(lr=3e-2, extra_teacher_lrs=(3e-2,)))
    assert same_record == plain_record and all(torch.equal(same_state[k], plain_state[k]) for k in plain_state)
    mixed_record, mixed_state = run("mixed", LoraOptions(lr=3e-2, extra_teacher_lrs=(1e-4,)))
    assert mixed_record["confidence"] != plain_record["confidence"]
    assert any(not torch.equal(mixed_state[k], plain_state[k]) for k in plain_state)
    assert predict_tags(model, "pos", "en", words("en")) == en_before
    saved = json.loads((tmp_path / "mixed" / "config.json").read_text())["history"][-1]
    assert saved["lora"]["extra_teacher_lrs"] == [1e-4]
    with pytest.raises(HxError, match="extra-teacher-lr"):
        run("bad", LoraOptions(extra_teacher_lrs=(-1.0,)))


def test_missing_raw_text_is_an_error_only_when_asked_for(checkpoint: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(TINY_DATA, data)
    model, meta = load_model(checkpoint)
    model.registry.language("tr").corpus["path"] = str(tmp_path / "gone.txt")
    train = read_labelled("pos", data / "tr-pos-train.conllu")
    report = fewshot(model, meta, checkpoint, "pos", "tr", train, None, 20, fewshot_config(1), tune="auto",
                     quiet=True, output=tmp_path / "a")
    assert report.self_training is None and "no self-training" in report.self_training_note
    with pytest.raises(HxError, match="--raw"):
        fewshot(model, meta, checkpoint, "pos", "tr", train, None, 20, fewshot_config(1), tune="auto", quiet=True,
                output=tmp_path / "b", self_training=SelfTraining(sentences=5))
    given = fewshot(model, meta, checkpoint, "pos", "tr", train, None, 5, fewshot_config(1), tune="lang+head",
                    quiet=True, output=tmp_path / "c", self_training=requested(None, data / "tr-raw.txt"))
    assert given.self_training["corpus"] == str(data / "tr-raw.txt")
    with pytest.raises(HxError, match="--self-train"):
        fewshot(model, meta, checkpoint, "pos", "tr", train, None, 5, fewshot_config(1), quiet=True,
                output=tmp_path / "d", self_training=SelfTraining(sentences=-1))
    short = tmp_path / "short.txt"  # no line of 3-60 words: nothing to label, and the report says why
    short.write_text("ja\nok .\n" + " ".join(["x"] * 61) + "\n", encoding="utf-8")
    unusable = fewshot(model, meta, checkpoint, "pos", "tr", train, None, 5, fewshot_config(1), tune="lang+head",
                       quiet=True, output=tmp_path / "e", self_training=requested(None, short))
    assert unusable.self_training is None and "no line of 3-60 words" in unusable.self_training_note


@pytest.mark.parametrize("every, die_at", [(4, 8), (13, 13)])  # 13: the 12-step first round never saves
def test_an_interrupted_second_round_resumes_to_the_same_weights(checkpoint: Path, tmp_path: Path, every: int,
                                                                die_at: int) -> None:
    from hxtool.config import TrainConfig
    from test_safety import interrupted_after_saving, same_weights

    pool = read_labelled("pos", TINY_DATA / "fo-pos-train.conllu")
    config = TrainConfig(steps=12, batch_size=4, lr=5e-3, decay=False, warmup=0.0, seed=3)
    plan = SelfTraining(sentences=10, epochs=2, corpus=TINY_DATA / "en-raw.txt")

    def run(output: Path, **kwargs):
        model, meta = load_model(checkpoint)
        return fewshot(model, meta, checkpoint, "pos", "en", pool, None, 8, config, output=output, quiet=True,
                       tune="lang+head+lora", self_training=plan, **kwargs)

    straight = run(tmp_path / "straight")
    assert straight.self_training["steps"] == 16  # 2 epochs over 8 x 3 shots + 5 kept, batch 4
    saves: list = []
    with interrupted_after_saving(die_at, "resumed.self-train.resume", saves):  # die in the second round
        run(tmp_path / "resumed", save_every=every)
    assert saves[0] == (("resumed.resume", 4) if every == 4 else ("resumed.self-train.resume", 13))
    run(tmp_path / "resumed", save_every=every, resume=True)
    assert same_weights(tmp_path / "straight", tmp_path / "resumed")
    assert not list(tmp_path.glob("*.resume"))
