"""A recipe's mix of pairs: the share of steps its labelled tasks get, and MLM-only languages that join
without taking that share.

Many-language pretraining (issue 10) adds raw text in dozens of languages so that the language rows are
learned from many languages, not two. Under temperature sampling every added pair would also take steps
from POS and NER; `with_mlm_languages` reweights the labelled pairs (recipe key `weight`) so that they keep
the share they had and the added languages split the MLM steps instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path

from hxtool.config import MlmSource, Recipe
from hxtool.training.sampler import temperature_probabilities


def pair_sizes(recipe: Recipe) -> list[int]:
    """What the sampler weighs: sentences per [[data]] pair, then non-blank lines per [[mlm]] pair."""
    from hxtool.data.corpus import corpus_info
    from hxtool.data.labelled import read_labelled

    return [len(read_labelled(src.task, src.train)) for src in recipe.data] + \
        [corpus_info(src.corpus).lines for src in recipe.mlm]


def labelled_share(recipe: Recipe, sizes: list[int] | None = None) -> float:
    """The expected share of labelled (POS, NER) batches among the recipe's sampled steps, weights as given."""
    sizes = pair_sizes(recipe) if sizes is None else sizes
    weights = [src.weight for src in recipe.data] + [src.weight for src in recipe.mlm]
    return float(temperature_probabilities(sizes, recipe.train.temperature, weights)[:len(recipe.data)].sum())


def scale_labelled(recipe: Recipe, share: float, sizes: list[int] | None = None) -> Recipe:
    """A copy of `recipe` whose labelled pairs' weights are all multiplied by the one factor that makes
    labelled batches `share` of the steps (their proportions among themselves, and the MLM pairs, unchanged)."""
    if not 0 < share < 1 or not recipe.data or not recipe.mlm:
        raise ValueError("a labelled share needs 0 < share < 1 and both labelled and MLM pairs")
    now = labelled_share(recipe, sizes)
    factor = share / (1 - share) * (1 - now) / now
    return dataclasses.replace(recipe, data=[dataclasses.replace(src, weight=src.weight * factor)
                                             for src in recipe.data])


def with_mlm_languages(recipe: Recipe, extra: list[MlmSource]) -> Recipe:
    """A copy of `recipe` with the `extra` MLM languages it lacks, its labelled pairs reweighted so that they
    keep the share of steps they had (the steps themselves are unchanged)."""
    have = {src.lang for src in recipe.mlm}
    added = [src for src in extra if src.lang not in have]
    if not added:
        return recipe
    grown = dataclasses.replace(recipe, mlm=[*recipe.mlm, *added])
    if not (recipe.data and recipe.mlm):
        return grown
    sizes = pair_sizes(grown)  # the recipe's own pairs come first: read every file once
    return scale_labelled(grown, labelled_share(recipe, sizes[:len(recipe.data) + len(recipe.mlm)]), sizes)


def recipe_mlm_sources(path: str | Path, data_dir: Path | None, leave_out: Collection[str] = ()) -> list[MlmSource]:
    """The [[mlm]] languages of the recipe at `path` (data paths resolved as load_recipe does), bar `leave_out`,
    at weight 1: added to another recipe, they are weighed by that recipe's sampler alone."""
    from hxtool.config import load_recipe

    return [MlmSource(src.lang, src.corpus) for src in load_recipe(path, data_dir).mlm if src.lang not in leave_out]
