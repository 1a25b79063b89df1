"""Task types: a new task is one registration; the built-in ones keep their readers, writers and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TINY_DATA, TINY_RECIPE
from hxtool.config import LabelledSource, load_recipe
from hxtool.data.conllu_io import read_conllu
from hxtool.data.datadir import task_file
from hxtool.errors import HxError
from hxtool.workflows.pretrain import pretrain
from hxtool.store.session import load_model
from hxtool.tagging import score_tags, tag_file
from hxtool.tasks import get_task, register, task_names, unregister
from hxtool.tasks.conllu_column import ConlluColumnTask
from hxtool.tasks.pos import UPOS_TAGS

DEPREL = 7


@pytest.fixture
def deprel_task():
    """The toy task, registered in this one place: tag the DEPREL column of CoNLL-U."""
    task = register(ConlluColumnTask(name="deprel", metric_name="DEPREL accuracy", column=DEPREL,
                                     description="dependency relation labels (CoNLL-U column 8)",
                                     file_pattern="ud/{lang}_*/{split}.conllu"))
    yield task
    unregister("deprel")


def test_a_registered_task_runs_pretrain_then_tag(deprel_task, tiny_bert: Path, tmp_path: Path) -> None:
    recipe = load_recipe(TINY_RECIPE)
    recipe.base_model = str(tiny_bert)
    recipe.data = [LabelledSource("deprel", "en", TINY_DATA / "en-pos-train.conllu",
                                  TINY_DATA / "en-pos-dev.conllu")]
    recipe.train.steps, recipe.train.eval_every = 30, 0
    report = pretrain(recipe, tmp_path / "ck", quiet=True)
    assert "deprel/en" in report.dev_scores
    model, _ = load_model(tmp_path / "ck")
    assert model.registry.task("deprel").labels == ["dep", "root"]

    source = TINY_DATA / "fo-pos-test.conllu"
    tagged = tmp_path / "tagged.conllu"
    tagged.write_text(tag_file(model, source, "deprel", "en", quiet=True).text)
    before, after = read_conllu(source).sentences, read_conllu(tagged).sentences
    changed = 0
    for old, new in zip(before, after):
        assert len(old.lines) == len(new.lines)
        for a, b in zip(old.lines, new.lines):
            if a.startswith("#"):
                assert a == b
                continue
            ca, cb = a.split("\t"), b.split("\t")
            assert ca[:DEPREL] + ca[DEPREL + 1:] == cb[:DEPREL] + cb[DEPREL + 1:]  # only column 8 moves
            assert cb[DEPREL] in {"dep", "root"}
            changed += ca[DEPREL] != cb[DEPREL]
    gold = deprel_task.read(source)
    predicted = deprel_task.read(tagged)
    score = score_tags("deprel", gold.tags, predicted.tags)
    assert score.total == sum(len(s) for s in gold.tags)
    assert score.correct == score.total - changed


def test_recipes_and_data_folders_know_registered_tasks(deprel_task, tmp_path: Path) -> None:
    (tmp_path / "ud" / "fo_toy").mkdir(parents=True)
    (tmp_path / "ud" / "fo_toy" / "train.conllu").write_text((TINY_DATA / "fo-pos-train.conllu").read_text())
    assert task_file(tmp_path, "deprel", "fo", "train").name == "train.conllu"
    assert "deprel" in task_names()
    unregister("deprel")
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[[data]]\ntask = "deprel"\nlang = "fo"\ntrain = "{TINY_DATA / "fo-pos-train.conllu"}"\n')
    with pytest.raises(HxError, match="task must be one of pos, ner"):
        load_recipe(recipe)
    with pytest.raises(HxError, match="unknown task type 'deprel'"):
        get_task("deprel")


def test_builtin_label_sets_and_order() -> None:
    pos, ner = get_task("pos"), get_task("ner")
    assert pos.label_set(["NOUN"]) == sorted(UPOS_TAGS) and len(UPOS_TAGS) == 17
    assert pos.label_set(["CLF"]) == sorted([*UPOS_TAGS, "CLF"])  # a non-UPOS tag set extends it
    assert ner.label_set(["B-PER", "I-PER"]) == ["O", "B-PER", "I-PER"]
    assert ner.extension(["B-MISC"]) == ["B-MISC", "I-MISC"]
    assert ner.well_formed("B-DATE") and not ner.well_formed("Q-XYZ") and not pos.well_formed("_")
    with pytest.raises(HxError, match="already registered"):
        register(ConlluColumnTask(name="pos", metric_name="x", description="x"))
