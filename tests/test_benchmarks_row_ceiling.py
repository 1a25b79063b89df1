"""benchmarks/row_ceiling.py on the tiny pretrained checkpoint and toy data in ../shared/data's layout."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import benchmark_module, tiny_data_dir

# fo's toy files stand in for a target with a pool (mt) and for a development language without one (kk).
LAYOUT = {"ud/mt_mudt/train.conllu": "fo-pos-train.conllu", "ud/mt_mudt/test.conllu": "fo-pos-test.conllu",
          "raw/mt.txt": "fo-raw.txt", "ud/kk_ktb/test.conllu": "fo-pos-test.conllu", "raw/kk.txt": "fo-raw.txt"}
SMALL = ["--lang-steps", "2", "--epochs", "1", "--batch-size", "4", "--max-length", "32", "--eval-limit", "6"]


@pytest.fixture(scope="module")
def ceiling():
    yield from benchmark_module("row_ceiling")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tiny_data_dir(tmp_path / "data", LAYOUT)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_row_is_fitted_from_the_mean_row_on_each_labelled_set(ceiling, checkpoint, data_dir, tmp_path,
                                                                   monkeypatch):
    """Each fit starts from the mean of the pretrained rows (where add-language starts), trains the row
    alone on every sentence of the set, and the checkpoint given is never changed; a development language
    has no train set, so only its test fit runs."""
    import hxtool.workflows.fewshot as fewshot_module
    from hxtool.data.labelled import read_labelled

    real = fewshot_module.fewshot
    calls = []

    def watched(model, meta, checkpoint_, task, lang, data, eval_data, n, config, tune, **kwargs):
        table = model.hypernet.embeddings.language.weight.detach()
        sources = [model.registry.lang_index(s) for s in model.registry.pretrained_languages()]
        start = table[model.registry.lang_index(lang)].clone()
        before = {k: v.clone() for k, v in model.learned_state_dict().items() if "language" not in k}
        report = real(model, meta, checkpoint_, task, lang, data, eval_data, n, config, tune, **kwargs)
        after = model.learned_state_dict()
        calls.append({"lang": lang, "tune": tune, "n": n, "steps": config.steps,
                      "starts_at_mean": torch.equal(start, table[sources].mean(0)),
                      "row_moved": not torch.equal(start, table[model.registry.lang_index(lang)]),
                      "others_kept": all(torch.equal(v, after[k]) for k, v in before.items())})
        return report

    monkeypatch.setattr(fewshot_module, "fewshot", watched)
    kept = digest(checkpoint)
    out = tmp_path / "ceiling.json"
    assert ceiling.main(["--checkpoint", str(checkpoint), "--data-dir", str(data_dir), "--targets", "mt,kk",
                         "--fits", "train,test", "--output", str(out), *SMALL]) == 0
    assert digest(checkpoint) == kept

    train = len(read_labelled("pos", data_dir / "ud/mt_mudt/train.conllu"))
    assert [(c["lang"], c["n"]) for c in calls] == [("mt", train), ("mt", 6), ("kk", 6)]
    for call in calls:
        assert call["tune"] == "lang" and call["starts_at_mean"] and call["row_moved"] and call["others_kept"]
        assert call["steps"] == math.ceil(call["n"] / 4)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["target"], r["fit"], r["sentences"]) for r in rows] == [("mt", "train", train), ("mt", "test", 6),
                                                                       ("kk", "test", 6)]
    for row in rows:
        assert row["fitted_minus_mean"] == pytest.approx(row["upos_fitted_row"] - row["upos_mean_row"], abs=0.011)
        assert row["learned_minus_mean"] == pytest.approx(row["upos_learned_row"] - row["upos_mean_row"], abs=0.011)
        assert row["row_moved_l2"] > 0
    mt = [r for r in rows if r["target"] == "mt"]
    assert mt[0]["upos_mean_row"] == mt[1]["upos_mean_row"] and mt[0]["upos_learned_row"] == mt[1]["upos_learned_row"]


def test_bad_arguments_stop_before_any_work(ceiling, checkpoint, data_dir, tmp_path, capsys):
    out = ["--output", str(tmp_path / "x.json"), "--data-dir", str(data_dir)]
    for argv, message in ((["--checkpoint", str(checkpoint), "--targets", "mt,xx"], "unknown: xx"),
                          (["--checkpoint", str(checkpoint), "--fits", "dev"], "unknown: dev"),
                          (["--checkpoint", str(checkpoint), "--known-row-batches", "0"], "at least 1"),
                          (["--checkpoint", str(tmp_path / "none")], "no checkpoint there")):
        with pytest.raises(SystemExit):
            ceiling.main([*argv, *out])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_known_rows_score_each_pretrained_row_in_the_targets_place(ceiling, checkpoint, data_dir, tmp_path):
    """--known-rows tags the target with each pretrained language's row: the same tags as tagging the test
    file *as* that language (its own row, the shared head), and the MLM loss of the target's text under it."""
    from hxtool.evaluation.metrics import upos_accuracy
    from hxtool.store.session import load_model
    from hxtool.tagging import predict_tags

    out = tmp_path / "known.json"
    assert ceiling.main(["--checkpoint", str(checkpoint), "--data-dir", str(data_dir), "--targets", "mt",
                         "--fits", "", "--known-rows", "--known-row-batches", "2", "--output", str(out), *SMALL]) == 0
    result = json.loads(out.read_text())
    assert result["rows"] == [] and [z["target"] for z in result["zero_shot"]] == ["mt"]
    [known] = result["known_rows"]
    model, _ = load_model(checkpoint, "cpu")
    test = ceiling.eval_data(data_dir, "mt", 6)
    languages = model.registry.pretrained_languages()
    assert [r["row"] for r in known["rows"]] == languages and len(languages) >= 2
    for row in known["rows"]:
        as_language = predict_tags(model, "pos", row["row"], test.words)
        assert row["upos"] == round(100 * upos_accuracy(test.tags, as_language).value, 2)
        assert math.isfinite(row["mlm_loss"]) and row["mlm_loss"] > 0
    assert known["best_upos"] == max(r["upos"] for r in known["rows"])
    assert known["lowest_loss_row"] == min(known["rows"], key=lambda r: r["mlm_loss"])["row"]
    assert len({r["mlm_loss"] for r in known["rows"]}) == len(languages)  # each row its own adapters


def test_spearman_ranks_ties_and_constants(ceiling):
    assert ceiling.spearman([1, 1, 2], [1, 2, 3]) == 0.866  # ties share their mean rank: 1.5, 1.5, 3
    assert ceiling.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert ceiling.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert ceiling.spearman([1, 2, 3], [5, 5, 5]) is None
    assert ceiling.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == 0.8
