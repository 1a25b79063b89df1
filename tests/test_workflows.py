"""Checkpoints, add-language and few-shot through the library API on the tiny recipe."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import TINY_DATA, TINY_RECIPE
from hxtool.workflows.add_language import add_language
from hxtool.store.checkpoint import CONFIG_FILE, REGISTRY_FILE, WEIGHTS_FILE, file_sha256
from hxtool.config import TrainConfig
from hxtool.data.labelled import read_labelled
from hxtool.errors import CheckpointError, HxError
from hxtool.workflows.fewshot import fewshot
from hxtool.store.session import load_model, save_model
from hxtool.tagging import predict_tags


def mlm_config(steps: int = 8) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=4, lr=1e-2, max_length=32, decay=False, warmup=0.0, seed=2)


def test_checkpoint_holds_only_learned_tensors_and_describes_itself(pretrained: Path) -> None:
    config = json.loads((pretrained / CONFIG_FILE).read_text())
    registry = json.loads((pretrained / REGISTRY_FILE).read_text())
    assert config["format_version"] == 1
    assert config["base_fingerprint"].startswith("sha256:")
    assert {"hxtool", "torch", "transformers"} <= set(config["versions"])
    assert config["files"][WEIGHTS_FILE]
    assert [t["name"] for t in registry["tasks"]] == ["mlm", "pos", "ner"]
    assert registry["tasks"][2]["labels"][0] == "O"
    en = registry["languages"][0]
    assert en["code"] == "en" and len(en["corpus"]["sha256"]) == 64 and en["corpus"]["lines"] == 80
    tensors = load_file(str(pretrained / WEIGHTS_FILE))
    encoder_keys = [k for k in tensors if k.startswith("encoder.")]
    assert encoder_keys and all("LayerNorm" in k for k in encoder_keys), "of the base model, only LayerNorms are saved"
    assert sum(t.numel() for t in tensors.values()) < 100_000
    assert not list(pretrained.parent.glob(".ck.tmp-*")), "no temporary folder left behind"


def test_round_trip_gives_identical_tensors_and_predictions(checkpoint: Path, tmp_path: Path) -> None:
    model, meta = load_model(checkpoint)
    words = [["the", "big", "dog", "sees", "anna", "."]]
    before = predict_tags(model, "pos", "en", words)
    save_model(model, meta, tmp_path / "copy", {"command": "test"})
    again, _ = load_model(tmp_path / "copy")
    first, second = model.learned_state_dict(), again.learned_state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert predict_tags(again, "pos", "en", words) == before


def test_pretraining_learns_the_toy_tags(pretrained: Path) -> None:
    model, _ = load_model(pretrained)
    dev = read_labelled("pos", TINY_DATA / "en-pos-dev.conllu")
    predicted = predict_tags(model, "pos", "en", dev.words)
    correct = sum(p == g for ps, gs in zip(predicted, dev.tags) for p, g in zip(ps, gs))
    total = sum(len(g) for g in dev.tags)
    assert correct / total > 0.5  # a random 7-way guess scores about 0.14


def test_add_language_changes_one_new_row_only(checkpoint: Path, tmp_path: Path) -> None:
    before = load_file(str(checkpoint / WEIGHTS_FILE))
    model, meta = load_model(checkpoint)
    report = add_language(model, meta, "fo", TINY_DATA / "fo-raw.txt", tmp_path / "out", mlm_config(), quiet=True)
    after = load_file(str(tmp_path / "out" / WEIGHTS_FILE))
    assert report.index == 2
    assert before.keys() == after.keys()
    table = "hypernet.embeddings.language.weight"
    for name in before:
        if name != table:
            assert torch.equal(before[name], after[name]), f"{name} changed"
    assert after[table].shape[0] == before[table].shape[0] + 1
    assert torch.equal(after[table][:-1], before[table]), "existing language rows are bit-identical"
    assert not torch.allclose(after[table][-1], before[table].mean(0)), "the new row trained"
    registry = json.loads((tmp_path / "out" / REGISTRY_FILE).read_text())
    fo = registry["languages"][-1]
    assert fo["code"] == "fo" and fo["source"] == "add-language" and fo["steps"] == 8 and fo["init"] == "mean"
    reloaded, _ = load_model(tmp_path / "out")
    assert len(predict_tags(reloaded, "pos", "fo", [["tann", "hundur"]])[0]) == 2


def test_a_new_language_starts_from_the_pretrained_rows_whatever_was_added_before(checkpoint: Path,
                                                                                  tmp_path: Path) -> None:
    from hxtool.workflows.add_language import initial_row

    model, meta = load_model(checkpoint)
    rows = lambda: model.hypernet.embeddings.language.weight.detach()  # the table grows: read it anew
    pretrained_mean = rows().mean(0).clone()
    alone = add_language(model, meta, "fo", TINY_DATA / "fo-raw.txt", tmp_path / "a", mlm_config(), quiet=True)
    fo_alone = rows()[alone.index].clone()
    # fo's trained row now sits in the table, yet the next language starts where fo did.
    assert torch.equal(initial_row(model, "mean"), pretrained_mean)
    model, meta = load_model(checkpoint)
    add_language(model, meta, "mt", TINY_DATA / "fo-raw.txt", tmp_path / "c", mlm_config(), quiet=True)
    after = add_language(model, meta, "fo", TINY_DATA / "fo-raw.txt", tmp_path / "d", mlm_config(), quiet=True)
    assert torch.equal(rows()[after.index], fo_alone), \
        "adding mt first changed fo's row"


def test_add_language_refuses_an_existing_code_and_bad_codes(checkpoint: Path) -> None:
    model, meta = load_model(checkpoint)
    with pytest.raises(HxError, match="already in the checkpoint"):
        add_language(model, meta, "en", TINY_DATA / "fo-raw.txt", checkpoint, mlm_config(), quiet=True)
    with pytest.raises(HxError, match="ISO 639"):
        add_language(model, meta, "Faroese!", TINY_DATA / "fo-raw.txt", checkpoint, mlm_config(), quiet=True)
    with pytest.raises(HxError, match="--init"):
        add_language(model, meta, "fo", TINY_DATA / "fo-raw.txt", checkpoint, mlm_config(), init="xx", quiet=True)


def test_add_language_overwrite_retrains_the_same_row(checkpoint: Path) -> None:
    model, meta = load_model(checkpoint)
    before = model.hypernet.embeddings.language.weight.detach().clone()
    report = add_language(model, meta, "tr", TINY_DATA / "tr-raw.txt", checkpoint, mlm_config(), init="en",
                          overwrite=True, quiet=True)
    after = load_file(str(checkpoint / WEIGHTS_FILE))["hypernet.embeddings.language.weight"]
    assert report.index == 1 and after.shape == before.shape
    assert torch.equal(after[0], before[0]) and not torch.equal(after[1], before[1])


def fewshot_config(steps: int = 10) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=4, lr=5e-2, max_length=32, decay=False, warmup=0.0, seed=1)


@pytest.mark.parametrize("tune", ["lang", "lang+head"])
def test_fewshot_default_modes_change_nothing_for_other_languages(checkpoint: Path, tune: str) -> None:
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    dev = read_labelled("pos", TINY_DATA / "tr-pos-dev.conllu")
    en_words = read_labelled("pos", TINY_DATA / "en-pos-dev.conllu").words
    en_before = predict_tags(model, "pos", "en", en_words)
    state_before = {k: v.clone() for k, v in model.learned_state_dict().items()}
    report = fewshot(model, meta, checkpoint, "pos", "tr", train, dev, 8, fewshot_config(), tune=tune, quiet=True)
    assert len(report.indices) == 8 and report.before is not None and report.after is not None
    reloaded, _ = load_model(checkpoint)
    state_after = reloaded.learned_state_dict()
    changed = [k for k in state_before if not torch.equal(state_before[k], state_after[k])]
    assert changed == ["hypernet.embeddings.language.weight"]
    rows_changed = (state_before[changed[0]] != state_after[changed[0]]).any(-1).nonzero().flatten().tolist()
    assert rows_changed == [1]  # tr's row only
    added = sorted(set(state_after) - set(state_before))
    if tune == "lang+head":
        assert added == ["heads.pos@tr.linear.bias", "heads.pos@tr.linear.weight"]
        assert not torch.equal(state_after["heads.pos@tr.linear.weight"], state_before["heads.pos.linear.weight"])
        assert reloaded.registry.language("tr").own_heads == ["pos"]
    else:
        assert added == []
    assert predict_tags(reloaded, "pos", "en", en_words) == en_before


def test_own_heads_go_when_a_language_is_added_anew(checkpoint: Path) -> None:
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    fewshot(model, meta, checkpoint, "pos", "tr", train, None, 4, fewshot_config(2), quiet=True)
    model, meta = load_model(checkpoint)
    add_language(model, meta, "tr", TINY_DATA / "tr-raw.txt", checkpoint, mlm_config(2), overwrite=True, quiet=True)
    reloaded, _ = load_model(checkpoint)
    assert "pos@tr" not in reloaded.heads and reloaded.registry.language("tr").own_heads == []


def test_fewshot_sample_is_seeded_and_random(checkpoint: Path) -> None:
    from hxtool.workflows.fewshot import sample_indices

    assert sample_indices(60, 5, seed=1) == sample_indices(60, 5, seed=1)
    assert sample_indices(60, 5, seed=1) != sample_indices(60, 5, seed=2)
    assert sample_indices(60, 60, seed=1) == list(range(60))
    picks = {tuple(sample_indices(60, 5, seed=s)) for s in range(5)}
    assert (0, 1, 2, 3, 4) not in picks


def test_fewshot_guards(checkpoint: Path, tmp_path: Path) -> None:
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    with pytest.raises(HxError, match="same file"):
        fewshot(model, meta, checkpoint, "pos", "tr", train, train, 5, fewshot_config(), quiet=True)
    with pytest.raises(HxError, match="larger than the training file"):
        fewshot(model, meta, checkpoint, "pos", "tr", train, None, 61, fewshot_config(), quiet=True)
    with pytest.raises(HxError, match="at least 1"):
        fewshot(model, meta, checkpoint, "pos", "tr", train, None, 0, fewshot_config(), quiet=True)
    with pytest.raises(HxError, match="--output"):
        fewshot(model, meta, checkpoint, "pos", "tr", train, None, 5, fewshot_config(), tune="all", quiet=True)


def test_fewshot_all_writes_a_new_folder_and_leaves_the_source(checkpoint: Path, tmp_path: Path) -> None:
    original = (checkpoint / WEIGHTS_FILE).read_bytes()
    model, meta = load_model(checkpoint)
    train = read_labelled("pos", TINY_DATA / "tr-pos-train.conllu")
    fewshot(model, meta, checkpoint, "pos", "tr", train, None, 5, fewshot_config(3), tune="all",
            output=tmp_path / "tuned", quiet=True)
    assert (checkpoint / WEIGHTS_FILE).read_bytes() == original
    tuned = load_file(str(tmp_path / "tuned" / WEIGHTS_FILE))
    assert not torch.equal(tuned["heads.pos.linear.weight"], load_file(str(checkpoint / WEIGHTS_FILE))[
        "heads.pos.linear.weight"])


def test_fewshot_refuses_unknown_labels(checkpoint: Path, tmp_path: Path) -> None:
    # INTJ is UPOS, which a pos task always knows (issue 12); CLF is not, and --strict-labels refuses it.
    text = (TINY_DATA / "tr-pos-train.conllu").read_text().replace("\tNOUN\t", "\tCLF\t", 1)
    odd = tmp_path / "odd.conllu"
    odd.write_text(text)
    model, meta = load_model(checkpoint)
    data = read_labelled("pos", odd)
    with pytest.raises(HxError, match="CLF"):
        fewshot(model, meta, checkpoint, "pos", "tr", data, None, 60, fewshot_config(), quiet=True,
                strict_labels=True)


def test_loading_refuses_damaged_or_foreign_checkpoints(checkpoint: Path, tmp_path: Path, tiny_bert: Path) -> None:
    broken = Path(shutil.copytree(checkpoint, tmp_path / "broken"))
    (broken / REGISTRY_FILE).unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        load_model(broken)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_model(tmp_path / "nowhere")

    tampered = Path(shutil.copytree(checkpoint, tmp_path / "tampered"))
    tensors = load_file(str(tampered / WEIGHTS_FILE))
    tensors["heads.pos.linear.bias"] += 1
    save_file(tensors, str(tampered / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match="sha256"):
        load_model(tampered)

    reshaped = Path(shutil.copytree(checkpoint, tmp_path / "reshaped"))
    tensors = load_file(str(reshaped / WEIGHTS_FILE))
    tensors["heads.pos.linear.bias"] = torch.zeros(3)
    tensors["surprise"] = torch.zeros(1)
    save_file(tensors, str(reshaped / WEIGHTS_FILE))
    config = json.loads((reshaped / CONFIG_FILE).read_text())

    def rehash() -> None:  # past the hash check, to reach the name and shape checks
        config["files"] = {WEIGHTS_FILE: file_sha256(reshaped / WEIGHTS_FILE)}
        (reshaped / CONFIG_FILE).write_text(json.dumps(config))

    rehash()
    with pytest.raises(CheckpointError, match="unexpected tensors surprise"):
        load_model(reshaped)
    del tensors["surprise"]
    save_file(tensors, str(reshaped / WEIGHTS_FILE))
    rehash()
    with pytest.raises(CheckpointError, match="heads.pos.linear.bias is \\(3,\\)"):
        load_model(reshaped)

    old = Path(shutil.copytree(checkpoint, tmp_path / "old"))
    config = json.loads((old / CONFIG_FILE).read_text())
    config["format_version"] = 0
    (old / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="format version 0"):
        load_model(old)

    # The same base name now pointing at different weights is refused.
    from hxtool.model.tiny import build_tiny_model

    other_base = build_tiny_model(tmp_path / "other-base", "bert", seed=5)
    moved = Path(shutil.copytree(checkpoint, tmp_path / "moved"))
    config = json.loads((moved / CONFIG_FILE).read_text())
    config["base_model"] = str(other_base)
    (moved / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="different model"):
        load_model(moved)


def test_a_checkpoint_without_a_recorded_hash_is_refused(checkpoint: Path) -> None:
    config = json.loads((checkpoint / CONFIG_FILE).read_text())
    config["files"] = {}
    (checkpoint / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="records no sha256"):
        load_model(checkpoint)


def test_add_language_reports_losses_and_flags_an_untrained_head(checkpoint: Path, tmp_path: Path) -> None:
    import math

    model, meta = load_model(checkpoint)
    report = add_language(model, meta, "fo", TINY_DATA / "fo-raw.txt", tmp_path / "out", mlm_config(), quiet=True)
    assert report.result.first_loss is not None
    registry = json.loads((tmp_path / "out" / REGISTRY_FILE).read_text())
    assert registry["languages"][-1]["mlm_loss"] == pytest.approx(report.result.final_loss)
    assert registry["languages"][0]["mlm_loss"] is not None  # recorded by pretrain-mlm for its MLM languages
    # A head that predicts something (here: the corpus's unigram frequencies) sits well below ln(V) and
    # is not flagged; a zeroed head gives uniform logits (loss exactly ln V) that the row cannot move: flagged.
    from collections import Counter

    lines = (TINY_DATA / "fo-raw.txt").read_text(encoding="utf-8").splitlines()
    vocab = report.vocab_size
    counts = Counter(i for line in lines for i in model.backbone.tokenizer(line, add_special_tokens=False)["input_ids"])
    flagged = {}
    for name, bias in (("unigram", torch.tensor([counts[i] + 0.1 for i in range(vocab)]).log()),
                       ("zero", torch.zeros(vocab))):
        head_model, head_meta = load_model(checkpoint)
        with torch.no_grad():
            for param in head_model.mlm_head.parameters():
                param.zero_()
            head_model.mlm_head.bias.copy_(bias)
        report = add_language(head_model, head_meta, "fo", TINY_DATA / "fo-raw.txt", tmp_path / name, mlm_config(),
                              quiet=True)
        flagged[name] = (report.head_looks_untrained, report.result.final_loss)
    assert flagged["zero"][0] and flagged["zero"][1] == pytest.approx(math.log(vocab), rel=1e-4)
    assert not flagged["unigram"][0] and flagged["unigram"][1] < 0.8 * math.log(vocab)


def test_recipe_weights_steer_which_pairs_pretraining_draws(tiny_bert: Path, tmp_path: Path) -> None:
    """A recipe `weight` multiplies a pair's sampling probability: weight 20 on pos/tr takes most steps."""
    from hxtool.config import load_recipe
    from hxtool.workflows.pretrain import pretrain

    recipe = load_recipe(TINY_RECIPE)
    recipe.base_model = str(tiny_bert)
    recipe.train.steps, recipe.train.eval_every = 40, 0
    plain = pretrain(recipe, tmp_path / "plain", quiet=True).result.steps_per_pair
    next(src for src in recipe.data if (src.task, src.lang) == ("pos", "tr")).weight = 20.0
    weighted = pretrain(recipe, tmp_path / "weighted", quiet=True).result.steps_per_pair
    assert weighted[("pos", "tr")] > 30 > plain[("pos", "tr")]
    config = json.loads((tmp_path / "weighted" / "config.json").read_text())
    assert config["history"][-1]["command"] == "pretrain-mlm"
