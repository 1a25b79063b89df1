"""The baselines of benchmarks/fewshot_curves.py, on a tiny random encoder and the toy data: seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hxtool.config import TrainConfig
from hxtool.data.labelled import label_list, read_labelled
from hxtool.workflows.fewshot import sample_indices
from hxtool.model.backbone import load_backbone

TINY = Path(__file__).resolve().parents[1] / "recipes" / "tiny"


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine spinning OpenMP threads
    make these tests many times slower while anything else runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config(steps: int, lr: float = 1e-2) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=8, lr=lr, head_lr=1e-2, warmup=0.1, max_length=64, seed=1)


@pytest.fixture
def sources():
    return {lang: read_labelled("pos", TINY / f"{lang}-pos-train.conllu") for lang in ("en", "tr")}


@pytest.fixture
def labels(sources) -> list[str]:
    target = [read_labelled("pos", TINY / f"fo-pos-{split}.conllu") for split in ("train", "test")]
    return label_list("pos", [*sources.values(), *target])


def encoder_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def check_predictions(predicted: list[list[str]], sentences: list[list[str]], labels: list[str]) -> None:
    assert [len(p) for p in predicted] == [len(s) for s in sentences]
    assert {tag for row in predicted for tag in row} <= set(labels)


def test_full_finetune_trains_and_changes_the_encoder(tiny_bert: Path, sources, labels) -> None:
    from hxtool.baselines import full_finetune as ft

    torch.manual_seed(0)
    model = ft.FullFinetuneTagger(load_backbone(str(tiny_bert)), labels)
    before = encoder_state(model.adapted.encoder)
    result = ft.train_on_source(model, sources, config(60, lr=1e-3))
    assert result.steps == 60 and len(result.losses) == 60
    assert result.mean_loss(False) < result.mean_loss(True)
    assert not same(before, encoder_state(model.adapted.encoder))  # full fine-tuning moves encoder weights

    test = read_labelled("pos", TINY / "fo-pos-test.conllu")
    check_predictions(model.predict(test.words), test.words, labels)

    # Few-shot tuning goes on from the source model, and restore() brings that model back exactly.
    snapshot = model.snapshot()
    pool = read_labelled("pos", TINY / "fo-pos-train.conllu")
    shots = pool.subset(sample_indices(len(pool), 5, 1))
    ft.tune_on_shots(model, "fo", shots, TrainConfig(steps=5, batch_size=8, lr=1e-3, decay=False, warmup=0.0))
    assert not same(snapshot, encoder_state(model))
    model.restore(snapshot)
    assert same(snapshot, encoder_state(model))


def test_madx_trains_and_the_target_swap_leaves_the_rest_alone(tiny_bert: Path, sources, labels) -> None:
    from hxtool.baselines import madx

    backbone = load_backbone(str(tiny_bert))
    base = encoder_state(backbone.encoder)
    torch.manual_seed(0)
    model = madx.MadX(backbone, labels, lang_bottleneck=16, task_bottleneck=4)

    corpora = {lang: TINY / f"{lang}-raw.txt" for lang in ("en", "tr")}
    mlm = madx.train_language_adapters(model, corpora, config(30), train_mlm_head=True)
    assert mlm.steps == 60  # 30 per language
    assert mlm.mean_loss(False) < mlm.mean_loss(True)

    task = madx.train_task_adapter(model, sources, config(60))
    assert task.mean_loss(False) < task.mean_loss(True)

    source_adapters = {lang: encoder_state(model.lang_adapters[lang]) for lang in corpora}
    task_state = model.task_state()
    mlm_head = encoder_state(model.mlm_head)

    # A new target: only its own language adapter learns; the MLM head is frozen for it.
    target = madx.train_language_adapters(model, {"fo": TINY / "fo-raw.txt"}, config(20), train_mlm_head=False)
    assert target.steps == 20
    assert same(task_state, model.task_state())
    assert same(mlm_head, encoder_state(model.mlm_head))
    assert all(same(state, encoder_state(model.lang_adapters[lang])) for lang, state in source_adapters.items())

    test = read_labelled("pos", TINY / "fo-pos-test.conllu")
    check_predictions(model.predict(test.words, "fo"), test.words, labels)

    # Few-shot tunes the task adapter and head; the target's language adapter stays as MLM left it.
    fo_adapter = encoder_state(model.lang_adapters["fo"])
    pool = read_labelled("pos", TINY / "fo-pos-train.conllu")
    shots = pool.subset(sample_indices(len(pool), 5, 1))
    madx.tune_on_shots(model, "fo", shots, TrainConfig(steps=5, batch_size=8, lr=1e-2, decay=False, warmup=0.0))
    assert same(fo_adapter, encoder_state(model.lang_adapters["fo"]))
    assert not same(task_state, model.task_state())
    model.load_task_state(task_state)
    assert same(task_state, model.task_state())

    assert same(base, encoder_state(backbone.encoder))  # the encoder never changes
    stored = madx.added_per_language(model, "fo", tuned=False)
    assert stored and all(k.startswith("lang_adapter.") for k in stored)


def test_madx_swap_changes_only_the_language_adapter_in_the_stack(tiny_bert: Path, labels) -> None:
    from hxtool.baselines import madx

    torch.manual_seed(0)
    model = madx.MadX(load_backbone(str(tiny_bert)), labels, lang_bottleneck=8, task_bottleneck=4)
    model.add_language("en")
    model.add_language("fo")
    with torch.no_grad():  # make the two language adapters differ, and no longer the identity
        for param in model.lang_adapters["fo"].parameters():
            param.add_(0.1 * torch.randn_like(param))
    en, fo = model.stack("en"), model.stack("fo")
    assert len(en) == len(fo) == 2
    assert all(torch.equal(getattr(en[1], f), getattr(fo[1], f)) for f in ("down", "down_bias", "up", "up_bias"))
    assert not torch.equal(en[0].up, fo[0].up)


def test_hxtool_add_language_and_fewshot_leave_the_encoder_untouched(tiny_bert: Path, tmp_path: Path) -> None:
    from hxtool.workflows.add_language import add_language
    from hxtool.config import load_recipe
    from hxtool.workflows.fewshot import fewshot
    from hxtool.model.backbone import layernorm_parameters
    from hxtool.workflows.pretrain import pretrain
    from hxtool.store.session import load_model

    # Its own short pretraining rather than conftest's session fixture: that one runs before this
    # module's one-thread fixture and is many times slower on a busy 2-core machine.
    recipe = load_recipe(TINY.parent / "tiny.toml")
    recipe.base_model = str(tiny_bert)
    recipe.train.steps, recipe.train.eval_every = 30, 0
    checkpoint = tmp_path / "ck"
    pretrain(recipe, checkpoint, quiet=True)

    model, meta = load_model(checkpoint)
    base = encoder_state(load_backbone(str(tiny_bert)).encoder)
    norms = set(layernorm_parameters(model.encoder))
    after_pretrain = encoder_state(model.encoder)
    # pretrain-mlm trains LayerNorms only: every other encoder weight is the base model's.
    assert all(torch.equal(base[k], after_pretrain[k]) for k in base if k not in norms)

    add_language(model, meta, "fo", TINY / "fo-raw.txt", checkpoint,
                 TrainConfig(steps=5, batch_size=8, lr=1e-2, max_length=64, decay=False, warmup=0.0), quiet=True)
    pool = read_labelled("pos", TINY / "fo-pos-train.conllu")
    fewshot(model, meta, checkpoint, "pos", "fo", pool, None, 5,
            TrainConfig(steps=3, batch_size=8, lr=5e-3, decay=False, warmup=0.0), quiet=True)
    assert same(after_pretrain, encoder_state(model.encoder))
