"""Label sets (issue 12): pos always knows UPOS; few-shot extends only the language's own head with
labels the task lacks, says so, and --strict-labels refuses; a malformed label is still an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY_DATA
from hxtool.cli import app
from hxtool.config import TrainConfig
from hxtool.data.labelled import read_labelled
from hxtool.errors import DataError, HxError
from hxtool.workflows.fewshot import fewshot
from hxtool.store.session import load_model
from hxtool.tagging import predict_tags
from hxtool.tasks.pos import UPOS_TAGS

runner = CliRunner()


def config(steps: int = 12) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=4, lr=5e-2, max_length=32, decay=False, warmup=0.0, seed=1)


def ner_with_new_types(tmp_path: Path) -> Path:
    """The tiny NER data with PER spans relabelled MISC and one LOC relabelled DATE."""
    text = (TINY_DATA / "en-ner-train.tsv").read_text().replace("\tB-PER", "\tB-MISC").replace("\tB-LOC", "\tB-DATE", 1)
    path = tmp_path / "new-types.tsv"
    path.write_text(text)
    return path


def test_pos_always_knows_the_17_upos_tags(pretrained: Path) -> None:
    model, _ = load_model(pretrained)
    assert model.registry.task("pos").labels == sorted(UPOS_TAGS)
    # The tiny data never shows PRON: its row starts unlikely, and nothing predicts it yet.
    words = read_labelled("pos", TINY_DATA / "en-pos-dev.conllu").words
    assert "PRON" not in {tag for sentence in predict_tags(model, "pos", "en", words) for tag in sentence}


def test_fewshot_extends_only_the_languages_own_head(checkpoint: Path) -> None:
    model, meta = load_model(checkpoint)
    data = read_labelled("ner", ner_with_new_types(checkpoint.parent))
    en_words = read_labelled("pos", TINY_DATA / "en-pos-dev.conllu").words
    en_before = predict_tags(model, "ner", "en", en_words)
    shared_before = {k: v.clone() for k, v in model.learned_state_dict().items() if "@" not in k}
    report = fewshot(model, meta, checkpoint, "ner", "tr", data, None, 30, config(80), quiet=True)
    assert report.added_labels == ["B-DATE", "B-MISC", "I-DATE", "I-MISC"]

    reloaded, _ = load_model(checkpoint)
    tr = reloaded.registry.language("tr")
    assert tr.extra_labels == {"ner": ["B-DATE", "B-MISC", "I-DATE", "I-MISC"]}
    assert reloaded.registry.task("ner").labels == ["O", "B-LOC", "B-PER"]  # the task itself is unchanged
    assert reloaded.registry.labels("ner", "tr") == ["O", "B-LOC", "B-PER", "B-DATE", "B-MISC", "I-DATE", "I-MISC"]
    assert reloaded.heads["ner@tr"].linear.out_features == 7 and reloaded.heads["ner"].linear.out_features == 3
    state = reloaded.learned_state_dict()
    for name, tensor in shared_before.items():
        if name != "hypernet.embeddings.language.weight":
            assert torch.equal(state[name], tensor), name
    assert predict_tags(reloaded, "ner", "en", en_words) == en_before  # bit-identical for other languages
    tagged = {tag for s in predict_tags(reloaded, "ner", "tr", data.words) for tag in s}
    assert tagged & {"B-MISC", "B-DATE"}  # the new labels are learned and predicted

    # A second few-shot round with the same types adds nothing more.
    again = fewshot(reloaded, load_model(checkpoint)[1], checkpoint, "ner", "tr", data, None, 8, config(2), quiet=True)
    assert again.added_labels == []


def test_strict_labels_and_tune_lang_refuse(checkpoint: Path) -> None:
    model, meta = load_model(checkpoint)
    data = read_labelled("ner", ner_with_new_types(checkpoint.parent))
    with pytest.raises(DataError, match=r"new-types.tsv:\d+: label 'B-(MISC|DATE)' is not one the model knows"):
        fewshot(model, meta, checkpoint, "ner", "tr", data, None, 30, config(), quiet=True, strict_labels=True)
    with pytest.raises(HxError, match="--tune lang trains no head"):
        fewshot(model, meta, checkpoint, "ner", "tr", data, None, 30, config(), tune="lang", quiet=True)
    assert load_model(checkpoint)[0].registry.language("tr").extra_labels == {}


def test_a_malformed_label_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("anna\tB-PER\n\noslo\tQ-XYZ\n")
    with pytest.raises(DataError, match=r"bad.tsv:3: invalid NER tag 'Q-XYZ'"):
        read_labelled("ner", bad)


def test_cli_fewshot_says_so_in_one_line_and_info_shows_it(checkpoint: Path) -> None:
    data = ner_with_new_types(checkpoint.parent)
    result = runner.invoke(app, ["fewshot", "--task", "ner", "--lang", "tr", "--n", "60", "--train", str(data),
                                 "--epochs", "2", "-c", str(checkpoint), "--quiet"])
    assert result.exit_code == 0, result.output
    said = [line for line in result.stderr.splitlines() if "lacked" in line]
    assert said == ["tr's own ner head learns 4 label(s) the checkpoint's task lacked: B-DATE, B-MISC, I-DATE, "
                    "I-MISC (other languages unchanged; --strict-labels refuses)"]
    info = json.loads(runner.invoke(app, ["info", "--json", "-c", str(checkpoint)]).stdout)
    assert info["registry"]["languages"][1]["extra_labels"] == {"ner": ["B-DATE", "B-MISC", "I-DATE", "I-MISC"]}
    assert "B-DATE" in runner.invoke(app, ["info", "-c", str(checkpoint)]).stdout
    strict = runner.invoke(app, ["fewshot", "--task", "ner", "--lang", "en", "--n", "20", "--train", str(data),
                                 "--epochs", "1", "-c", str(checkpoint), "--quiet", "--strict-labels"])
    assert strict.exit_code == 1 and "is not one the model knows" in strict.stderr
