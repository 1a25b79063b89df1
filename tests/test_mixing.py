"""hxtool.training.mixing: MLM-only languages join a recipe without taking the labelled pairs' share."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from conftest import TINY_DATA, TINY_RECIPE
from hxtool.config import MlmSource, load_recipe
from hxtool.training.mixing import labelled_share, pair_sizes, scale_labelled, with_mlm_languages
from hxtool.training.sampler import temperature_probabilities


def shares(recipe) -> list[float]:
    weights = [src.weight for src in recipe.data] + [src.weight for src in recipe.mlm]
    return list(temperature_probabilities(pair_sizes(recipe), recipe.train.temperature, weights))


def test_added_languages_split_the_mlm_steps_and_leave_the_labelled_share(tmp_path: Path) -> None:
    recipe = load_recipe(TINY_RECIPE)
    recipe.data[1].weight = 2.0  # a user's own weighting among the labelled pairs survives
    before = shares(recipe)
    extra = []
    for lang in ("it", "az", "fo"):
        shutil.copy(TINY_DATA / "en-raw.txt", tmp_path / f"{lang}.txt")
        extra.append(MlmSource(lang, tmp_path / f"{lang}.txt"))
    grown = with_mlm_languages(recipe, [*extra, MlmSource("en", tmp_path / "it.txt")])  # en is there: skipped
    after = shares(grown)
    labelled = len(recipe.data)
    assert [src.lang for src in grown.mlm] == [src.lang for src in recipe.mlm] + ["it", "az", "fo"]
    assert sum(after[:labelled]) == pytest.approx(sum(before[:labelled]))
    assert [a / after[0] for a in after[:labelled]] == pytest.approx([b / before[0] for b in before[:labelled]])
    assert sum(after[labelled:labelled + len(recipe.mlm)]) < sum(before[labelled:])  # the MLM steps are split
    assert grown.train == recipe.train and [src.weight for src in recipe.data] == [1.0, 2.0, 1.0]  # a copy
    assert with_mlm_languages(recipe, []) is recipe


def test_scale_labelled_reaches_the_asked_share() -> None:
    recipe = load_recipe(TINY_RECIPE)
    for share in (0.2, 0.5, 0.9):
        assert labelled_share(scale_labelled(recipe, share)) == pytest.approx(share)
    with pytest.raises(ValueError):
        scale_labelled(dataclasses.replace(recipe, mlm=[]), 0.5)
