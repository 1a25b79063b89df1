"""The shared training loop: resume (with evaluation, few-shot, every RNG), row routing on errors,
bf16 autocast, and data parallel training under torchrun on the CPU."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_DATA, TINY_RECIPE
from hxtool.config import TrainConfig, load_recipe
from hxtool.workflows.pretrain import pretrain
from hxtool.training.resume import STATE_JSON, resume_dir
from test_safety import interrupted_after_saving, same_weights, weights

REPO = Path(__file__).resolve().parents[1]


def recipe(base: Path, steps: int, eval_every: int = 0, recipe_path: Path = TINY_RECIPE):
    loaded = load_recipe(recipe_path, TINY_DATA)
    loaded.base_model = str(base)
    loaded.train.steps = steps
    loaded.train.eval_every = eval_every
    return loaded


def history(folder: Path) -> list[dict]:
    return json.loads((folder / "config.json").read_text())["history"]


# --- resume -------------------------------------------------------------------------------------

def weight_dependent_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dev scores that fall as training goes on but are a pure function of the weights (so a resumed run
    sees what a straight one saw): the best evaluation is the first, long before the interruption."""
    import hxtool.workflows.pretrain as pretrain_module

    seen: dict[str, float] = {}
    real_predict = pretrain_module.predict_tags

    def predict(model, task, lang, *args, **kwargs):
        generator = model.hypernet.generator
        grown = float(generator.linear.weight[generator.up_slice].detach().double().norm())  # 0 at the start
        seen["score"] = 1 / (1 + grown) - 0.01 * len(task) - 0.001 * len(lang)
        return real_predict(model, task, lang, *args, **kwargs)

    monkeypatch.setattr(pretrain_module, "predict_tags", predict)
    monkeypatch.setattr(pretrain_module, "score_tags",
                        lambda task, gold, predicted: type("Score", (), {"value": seen["score"]})())


def test_pretrain_resume_with_evaluation_keeps_scores_and_best_weights(tiny_bert: Path, tmp_path: Path,
                                                                        monkeypatch) -> None:
    """Interrupted after five of eight evaluations: dev scores, best step and the restored best weights
    must be what an uninterrupted run reports (they were misaligned when scores lived outside the loop)."""
    weight_dependent_scores(monkeypatch)
    straight = pretrain(recipe(tiny_bert, 30, eval_every=4), tmp_path / "straight", quiet=True)
    with interrupted_after_saving(20):
        pretrain(recipe(tiny_bert, 30, eval_every=4), tmp_path / "resumed", quiet=True, save_every=10)
    resumed = pretrain(recipe(tiny_bert, 30, eval_every=4), tmp_path / "resumed", quiet=True, save_every=10,
                       resume=True)
    assert [step for step, _ in straight.result.evaluations] == [4, 8, 12, 16, 20, 24, 28, 30]
    assert straight.result.best_step == 4
    assert resumed.result.evaluations == straight.result.evaluations
    assert resumed.result.best_step == straight.result.best_step
    assert resumed.dev_scores == straight.dev_scores and resumed.dev_scores
    assert resumed.result.losses == straight.result.losses
    assert resumed.result.final_loss == straight.result.final_loss
    a, b = history(tmp_path / "straight")[-1], history(tmp_path / "resumed")[-1]
    assert a["dev"] == b["dev"] and a["best_step"] == b["best_step"]
    assert same_weights(tmp_path / "straight", tmp_path / "resumed")


def test_pretrain_restores_the_best_weights_not_the_last(tiny_bert: Path, tmp_path: Path, monkeypatch) -> None:
    """With a scripted dev score that peaks at the first evaluation, the saved weights are that step's."""
    import hxtool.workflows.pretrain as pretrain_module

    seen: list[dict[str, torch.Tensor]] = []
    real_predict = pretrain_module.predict_tags

    def predict_and_remember(model, *args, **kwargs):
        seen.append({k: v.clone() for k, v in model.learned_state_dict().items()})
        return real_predict(model, *args, **kwargs)

    scores = iter([0.9, 0.1])
    monkeypatch.setattr(pretrain_module, "predict_tags", predict_and_remember)
    monkeypatch.setattr(pretrain_module, "score_tags",
                        lambda task, gold, predicted: type("Score", (), {"value": next(scores)})())
    cfg = recipe(tiny_bert, 12, eval_every=6)
    cfg.data = cfg.data[:1]  # one dev file: one score per evaluation
    report = pretrain(cfg, tmp_path / "best", quiet=True)
    assert report.result.evaluations == [(6, 0.9), (12, 0.1)]
    assert report.result.best_step == 6 and report.dev_scores == {"pos/en": 0.9}
    saved = weights(tmp_path / "best")
    assert all(torch.equal(saved[k], seen[0][k]) for k in saved)
    assert not all(torch.equal(saved[k], seen[1][k]) for k in saved)


def test_fewshot_resume_matches_an_uninterrupted_run(checkpoint: Path, tmp_path: Path) -> None:
    from hxtool.data.labelled import read_labelled
    from hxtool.workflows.fewshot import fewshot
    from hxtool.store.session import load_model

    pool = read_labelled("pos", TINY_DATA / "fo-pos-train.conllu")
    config = TrainConfig(steps=12, batch_size=4, lr=5e-3, decay=False, warmup=0.0, seed=3)

    def run(output: Path, **kwargs):
        model, meta = load_model(checkpoint)
        return fewshot(model, meta, checkpoint, "pos", "en", pool, None, 8, config, output=output, quiet=True,
                       **kwargs)

    run(tmp_path / "straight")
    with interrupted_after_saving(8):
        run(tmp_path / "resumed", save_every=4)
    assert json.loads((resume_dir(tmp_path / "resumed") / STATE_JSON).read_text())["step"] == 8
    run(tmp_path / "resumed", save_every=4, resume=True)
    assert same_weights(tmp_path / "straight", tmp_path / "resumed")
    assert not same_weights(checkpoint, tmp_path / "resumed")


def test_saved_state_restores_optimizer_and_every_generator(tmp_path: Path) -> None:
    """Optimizer state goes through state_dict (step counts, moments, hyper-parameters), and the Python
    and NumPy generators come back with torch's (only torch's CPU generator was saved before)."""
    from hxtool.training.resume import TrainState, load_state, save_state

    param = torch.nn.Parameter(torch.randn(5))
    optimizer = torch.optim.AdamW([param], lr=0.1, betas=(0.8, 0.9))
    for _ in range(3):
        optimizer.zero_grad()
        (param ** 2).sum().backward()
        optimizer.step()
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    save_state(tmp_path / "s", TrainState(3, {"a": 1}, {}, {}), [param], optimizer, None, torch.arange(4.0))
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))

    fresh = torch.nn.Parameter(torch.zeros(5))
    other = torch.optim.AdamW([fresh], lr=0.5)
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    state, best, losses = load_state(tmp_path / "s", {"a": 1}, [fresh], other)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert torch.equal(fresh, param) and best is None and torch.equal(losses, torch.arange(4.0))
    want, got = optimizer.state_dict(), other.state_dict()
    assert got["param_groups"] == want["param_groups"]
    for key in ("step", "exp_avg", "exp_avg_sq"):
        assert torch.equal(got["state"][0][key], want["state"][0][key])


# --- row routing --------------------------------------------------------------------------------

def test_language_row_commits_on_success_and_restores_on_error(checkpoint: Path, monkeypatch) -> None:
    import hxtool.workflows.add_language as add_module
    from hxtool.workflows.add_language import add_language
    from hxtool.store.session import load_model

    model, meta = load_model(checkpoint)
    before = {k: v.clone() for k, v in model.learned_state_dict().items()}
    names = [n for n, _ in model.named_parameters()]
    languages = [lang.code for lang in model.registry.languages]
    calls = {"n": 0}
    original = add_module.train

    def fails_mid_run(module, loss, *args, **kwargs):
        def failing(pair, batch):  # a real run that breaks after a few steps have moved the row
            calls["n"] += 1
            if calls["n"] == 4:
                raise RuntimeError("out of memory")
            return loss(pair, batch)
        return original(module, failing, *args, **kwargs)

    monkeypatch.setattr(add_module, "train", fails_mid_run)
    config = TrainConfig(steps=10, batch_size=4, lr=1e-1, max_length=64, decay=False, warmup=0.0)
    with pytest.raises(RuntimeError, match="out of memory"):
        add_language(model, meta, "fo", TINY_DATA / "fo-raw.txt", checkpoint, config, quiet=True)
    assert calls["n"] == 4
    after = model.learned_state_dict()
    assert after.keys() == before.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert [n for n, _ in model.named_parameters()] == names
    assert model.hypernet.embeddings.row is None
    assert [lang.code for lang in model.registry.languages] == languages

    monkeypatch.setattr(add_module, "train", original)
    add_language(model, meta, "fo", TINY_DATA / "fo-raw.txt", checkpoint,
                 TrainConfig(steps=3, batch_size=4, lr=1e-1, max_length=64, decay=False, warmup=0.0), quiet=True)
    table = model.hypernet.embeddings.language.weight
    assert table.shape[0] == len(languages) + 1 and model.hypernet.embeddings.row is None
    assert torch.equal(table[:-1], before["hypernet.embeddings.language.weight"])
    assert not torch.equal(table[-1], before["hypernet.embeddings.language.weight"].mean(0))


def test_save_checkpoint_leaves_the_callers_meta_alone(checkpoint: Path, tmp_path: Path) -> None:
    from hxtool.store.session import load_model, save_model

    model, meta = load_model(checkpoint)
    entries = len(meta.history)
    saved = save_model(model, meta, tmp_path / "copy", {"command": "test"}, world_size=3, precision="bf16")
    assert len(meta.history) == entries and meta.world_size == 1
    assert len(saved.history) == entries + 1 and saved.history[-1]["command"] == "test"
    written = json.loads((tmp_path / "copy" / "config.json").read_text())
    assert written["world_size"] == 3 and written["precision"] == "bf16"
    assert written["command_line"] == list(sys.argv)


# --- precision ----------------------------------------------------------------------------------

def test_bf16_autocast_trains_on_the_cpu(tiny_bert: Path, tmp_path: Path) -> None:
    from hxtool.store.session import load_model

    def pos_en(steps: int):  # one pair, so the losses of successive steps are comparable
        cfg = recipe(tiny_bert, steps)
        cfg.data, cfg.mlm = cfg.data[:1], []
        return cfg

    report = pretrain(pos_en(40), tmp_path / "bf16", quiet=True, precision="bf16")
    losses = report.result.losses
    assert report.result.precision == "bf16" and all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    fp32 = pretrain(pos_en(1), tmp_path / "fp32", quiet=True, precision="fp32").result.losses
    assert abs(losses[0] - fp32[0]) < 0.05 * fp32[0], "bf16 computes the same loss, roughly"
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["precision"] == "bf16"
    model, _ = load_model(tmp_path / "bf16")
    adapters = model.adapters("pos", "en")
    for tensor in (adapters.down, adapters.up):
        assert tensor.dtype == torch.float32 and torch.isfinite(tensor).all()
        assert tensor.abs().max() < 10
    assert adapters.up.abs().max() > 0, "the up-projection moved away from its zero start"


def test_fp16_is_refused_on_the_cpu() -> None:
    from hxtool.errors import HxError
    from hxtool.training.precision import resolve_precision

    assert resolve_precision(None, "cpu") == "fp32"
    with pytest.raises(HxError, match="CUDA"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(HxError, match="must be one of"):
        resolve_precision("int8", "cpu")


# --- torchrun -----------------------------------------------------------------------------------

def no_dropout_base(tiny_bert: Path, folder: Path) -> Path:
    """The tiny encoder with dropout off: ranks draw dropout masks per shard, one process per batch, so
    only without dropout can two processes and one reach the same weights."""
    base = Path(shutil.copytree(tiny_bert, folder))
    config = json.loads((base / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (base / "config.json").write_text(json.dumps(config))
    return base


def tiny_recipe_copy(folder: Path, model: str = "", train: str = "") -> Path:
    """recipes/tiny.toml with extra [model] / [train] keys, its data found wherever the copy lives."""
    text = TINY_RECIPE.read_text().replace('data_dir = "tiny"', f'data_dir = "{TINY_DATA}"')
    text = text.replace("[model]\n", f"[model]\n{model}\n").replace("eval_every = 100\n", f"{train}\n")
    path = folder / "tiny-copy.toml"
    path.write_text(text)
    return path


def no_dropout_recipe(folder: Path) -> Path:
    return tiny_recipe_copy(folder, model="head_dropout = 0.0", train="eval_every = 100")


def torchrun(nproc: int, dump: Path, *args: str, **env_vars: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **env_vars}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--standalone", str(REPO / "tests" / "ddp_driver.py"), str(dump), *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_torchrun_two_processes_match_one(tiny_bert: Path, tmp_path: Path) -> None:
    from hxtool.store.session import load_model
    from hxtool.tagging import predict_tags

    base = no_dropout_base(tiny_bert, tmp_path / "base")
    path = no_dropout_recipe(tmp_path)
    steps = 8
    run = torchrun(2, tmp_path, "pretrain-mlm", path, "--base-model", base, "--output", tmp_path / "ddp",
                   "--steps", steps, "--save-every", 0)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("pretrain-mlm ->") == 1, "rank 0 alone prints"
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0]), "both ranks end with the same weights"

    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["world_size"] == 2 and config["precision"] == "fp32"
    model, _ = load_model(tmp_path / "ddp")
    words = [["the", "cat", "sat"], ["a", "dog"]]
    assert [len(t) for t in predict_tags(model, "pos", "en", words)] == [3, 2]

    one = load_recipe(path)
    one.base_model, one.train.steps = str(base), steps
    pretrain(one, tmp_path / "single", quiet=True)
    single, ddp = weights(tmp_path / "single"), weights(tmp_path / "ddp")
    assert single.keys() == ddp.keys()
    assert all(torch.equal(ddp[k], ranks[0][k]) for k in ddp)  # rank 0 saved what it trained
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.slow
def test_torchrun_resume_with_evaluation_matches_an_uninterrupted_run(tiny_bert: Path, tmp_path: Path) -> None:
    """Every rank stops after the state of step 10 is saved; --resume under torchrun ends where an
    uninterrupted two-process run ends, tensor for tensor, with dropout on and dev evaluation."""
    path = tiny_recipe_copy(tmp_path, train="eval_every = 4")
    args = ["pretrain-mlm", path, "--base-model", tiny_bert, "--steps", 20, "--save-every", 5]
    straight = torchrun(2, tmp_path, *args, "--output", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-3000:]
    (tmp_path / "resumed-dump").mkdir()
    stopped = torchrun(2, tmp_path / "resumed-dump", *args, "--output", tmp_path / "resumed", HXTOOL_TEST_STOP_AT="10")
    assert stopped.returncode != 0 and not (tmp_path / "resumed").exists()
    state = json.loads((resume_dir(tmp_path / "resumed") / STATE_JSON).read_text())
    assert state["step"] == 10 and state["world_size"] == 2 and len(state["rng"]) == 2
    alone = subprocess.run([sys.executable, "-m", "hxtool.cli", *map(str, args), "--output", tmp_path / "resumed",
                            "--resume"], env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert alone.returncode == 1 and "had 2 processes" in alone.stderr
    resumed = torchrun(2, tmp_path / "resumed-dump", *args, "--output", tmp_path / "resumed", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert same_weights(tmp_path / "straight", tmp_path / "resumed")
    a, b = history(tmp_path / "straight")[-1], history(tmp_path / "resumed")[-1]
    assert a["dev"] == b["dev"] and a["best_step"] == b["best_step"] and a["world_size"] == 2


def test_background_batches_come_in_the_same_order_and_errors_surface() -> None:
    """The GPU path prepares batches on a thread: same batches, same order as inline; a failing stream
    raises in the training thread."""
    from hxtool.data.align import encode_sentences
    from hxtool.data.labelled import label_ids, label_list, read_labelled
    from hxtool.data.sources import TaggingStream
    from hxtool.model.tiny import _tokenizer
    from hxtool.training.prefetch import prepared
    from hxtool.training.sampler import TemperatureSampler

    tokenizer = _tokenizer("bert")
    streams = []
    for lang in ("en", "tr"):
        data = read_labelled("pos", TINY_DATA / f"{lang}-pos-train.conllu")
        chunks = encode_sentences(tokenizer, data.words, 64, label_ids(data, label_list("pos", [data])))
        streams.append(TaggingStream("pos", lang, chunks, 5, tokenizer.pad_token_id, 1))
    sampler = TemperatureSampler([s.pair for s in streams], [s.size for s in streams], 5.0, 1)

    def draw(background: bool, rank: int = 0, world: int = 1) -> list:
        iterators = {s.pair: iter(s) for s in streams}
        return list(prepared(sampler, iterators, 3, 40, torch.device("cpu"), rank, world, background=background))

    inline, threaded = draw(False), draw(True)
    assert [p for p, _, _ in inline] == [p for p, _, _ in threaded] and len(inline) == 37
    assert all(torch.equal(a.input_ids, b.input_ids) and torch.equal(a.labels, b.labels)
               for (_, a, _), (_, b, _) in zip(inline, threaded))
    # Two ranks' shards put back together are the one-process batch.
    halves = [draw(True, rank, 2) for rank in range(2)]
    for (_, whole, _), (_, first, _), (_, second, _) in zip(inline, *halves):
        assert torch.equal(torch.cat([first.input_ids, second.input_ids]), whole.input_ids)

    def broken():
        yield from ()
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prepared(sampler, {s.pair: broken() for s in streams}, 0, 5, torch.device("cpu"), background=True))


def test_embedding_lr_is_the_embeddings_own_rate(tiny_bert: Path, tmp_path: Path) -> None:
    """train.embedding_lr moves the task/language/layer embeddings at their own rate: at a vanishing one they
    stay where they were drawn while the rest of the hypernetwork trains."""
    from hxtool.errors import HxError

    def trained(embedding_lr: float | None, steps: int) -> dict[str, torch.Tensor]:
        loaded = recipe(tiny_bert, steps=steps)
        loaded.train.embedding_lr = embedding_lr
        folder = tmp_path / f"{embedding_lr}-{steps}"
        pretrain(loaded, folder, quiet=True)
        return weights(folder)

    rows, generator = "hypernet.embeddings.language.weight", "hypernet.generator.linear.weight"
    short, long = trained(1e-12, 2), trained(1e-12, 6)
    assert (short[rows] - long[rows]).abs().max() < 1e-6
    assert not torch.equal(short[generator], long[generator])
    moved_short, moved_long = trained(None, 2), trained(None, 6)
    assert (moved_short[rows] - moved_long[rows]).abs().max() > 1e-3  # at the recipe's lr (1e-2) they move
    path = tmp_path / "bad.toml"
    path.write_text(TINY_RECIPE.read_text().replace("[train]", "[train]\nembedding_lr = -1"), encoding="utf-8")
    with pytest.raises(HxError, match="embedding_lr"):
        load_recipe(path, TINY_DATA).train.validate()
    path.write_text(TINY_RECIPE.read_text().replace("[train]", "[train]\nembedding_lr = 1"), encoding="utf-8")
    assert load_recipe(path, TINY_DATA).train.embedding_lr == 1.0
    # Resume signatures name it only when set: state saved before the field existed still matches.
    unset = dataclasses.asdict(TrainConfig())
    del unset["embedding_lr"]
    assert TrainConfig().signature() == unset
    assert TrainConfig(embedding_lr=0.5).signature()["embedding_lr"] == 0.5
