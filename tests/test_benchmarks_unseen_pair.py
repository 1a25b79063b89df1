"""benchmarks/unseen_pair.py end to end on a tiny random encoder and toy data in ../shared/data's layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import benchmark_module, tiny_data_dir
# The shared data's layout, filled from the tiny recipe's toy files (fo stands in for kk).
LAYOUT = {"ud/en_ewt/train.conllu": "en-pos-train.conllu", "ud/tr_imst/train.conllu": "tr-pos-train.conllu",
          "ud/kk_ktb/train.conllu": "fo-pos-train.conllu", "ner/en/train.tsv": "en-ner-train.tsv",
          "ner/en/test.tsv": "en-ner-dev.tsv", "ner/kk/test.tsv": "en-ner-dev.tsv",
          "raw/en.txt": "en-raw.txt", "raw/tr.txt": "tr-raw.txt", "raw/kk.txt": "fo-raw.txt"}
SMOKE = ["--base-model", "tiny-random:xlm-roberta", "--steps", "8", "--mlm-steps", "2", "--batch-size", "4",
         "--max-length", "32", "--eval-limit", "6"]


@pytest.fixture(scope="module")
def unseen():
    yield from benchmark_module("unseen_pair")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tiny_data_dir(tmp_path / "data", LAYOUT)


def test_both_systems_and_the_diagnostics_are_scored(unseen, data_dir, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(unseen, "REPO", tmp_path)  # where the default output would go
    assert unseen.main(["--data-dir", str(data_dir), *SMOKE]) == 0
    # A smoke configuration never takes the default results' name.
    assert not (tmp_path / "benchmarks" / "results" / "unseen_pair.json").exists()
    run = json.loads((tmp_path / "benchmarks" / "results" / "unseen_pair_custom.json").read_text())
    assert set(run["scores"]) == {"hxtool", "full_ft", "hxtool_en_row", "hxtool_meanrow"}
    for system, by_lang in run["scores"].items():
        assert set(by_lang) == ({"kk"} if system.startswith("hxtool_") else {"kk", "en"})
        for score in by_lang.values():
            assert score["metric"] == "span_f1"
            assert 0.0 <= score["value"] <= 1.0 and 0.0 <= score["precision"] <= 1.0 and 0.0 <= score["recall"] <= 1.0
    gold_spans = run["scores"]["hxtool"]["kk"]["total"]
    assert gold_spans > 0 and all(run["scores"][s]["kk"]["total"] == gold_spans for s in run["scores"])
    pretrain = next(s for s in run["stages"] if s["stage"] == "pretrain-mlm")
    assert pretrain["steps"] == 8 + 3 * 2 == sum(pretrain["steps_per_pair"].values())
    assert "ner/kk" not in pretrain["steps_per_pair"] and pretrain["trainable"] > 0
    full_ft = next(s for s in run["stages"] if s["system"] == "full_ft" and "steps" in s)
    assert full_ft["steps"] == 8 and full_ft["trainable"] > 0
    assert run["profile"]["eval_limit"] == 6 and run["meta"]["hardware"]["torch"] == torch.__version__
    assert set(run["meta"]["seconds"]) == {"hxtool", "full_ft", "total"}
    assert "| hxtool_meanrow |" in capsys.readouterr().out


def test_missing_data_is_one_clear_error(unseen, data_dir) -> None:
    (data_dir / "ud" / "kk_ktb" / "train.conllu").unlink()
    with pytest.raises(SystemExit, match=r"missing data[\s\S]*kk_ktb/train\.conllu"):
        unseen.main(["--data-dir", str(data_dir), *SMOKE])
    # full fine-tuning alone does not need the POS and raw files
    assert unseen.needed_files(data_dir, ["full_ft"]) == [data_dir / "ner/kk/test.tsv", data_dir / "ner/en/test.tsv",
                                                          data_dir / "ner/en/train.tsv"]


def test_row_swap_tags_ner_with_the_other_row_and_restores(unseen, checkpoint: Path) -> None:
    """mean_row_predictions(task="ner") with one source is that source's row in the target's place, and
    leaves the target's own row as it was."""
    from hxtool.store.session import load_model
    from hxtool.tagging import predict_tags

    model, _ = load_model(checkpoint)
    words = [["berlin", "is", "big"], ["anna", "saw", "the", "tree", "in", "paris"]]
    before = predict_tags(model, "ner", "tr", words)
    row = model.hypernet.embeddings.language.weight[model.registry.lang_index("tr")].detach().clone()
    assert unseen.mean_row_predictions(model, "tr", ("en",), words, task="ner") == predict_tags(model, "ner", "en", words)
    assert torch.equal(model.hypernet.embeddings.language.weight[model.registry.lang_index("tr")], row)
    assert predict_tags(model, "ner", "tr", words) == before
