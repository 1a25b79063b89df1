"""Interrupted runs, concurrent writers and determinism: each protection has a test that needs it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_DATA, TINY_RECIPE
from hxtool.config import load_recipe
from hxtool.workflows.pretrain import pretrain
from hxtool.training.resume import STATE_JSON, resume_dir


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def tiny_recipe(base: Path, steps: int = 40):
    recipe = load_recipe(TINY_RECIPE)
    recipe.base_model = str(base)
    recipe.train.steps = steps
    recipe.train.eval_every = 15
    return recipe


@contextlib.contextmanager
def interrupted_after_saving(step: int | None, folder_name: str | None = None, saves: list | None = None):
    """Raise KeyboardInterrupt right after resumable state is saved (at `step`, or at the first save; with
    `folder_name`, only a save into that folder). Every save is appended to `saves` as (folder name, step)."""
    from hxtool.training import loop as train_module

    original = train_module.save_state

    def save_then_die(folder, state, *args, **kwargs):
        original(folder, state, *args, **kwargs)
        if saves is not None:
            saves.append((folder.name, state.step))
        if (step is None or state.step == step) and folder_name in (None, folder.name):
            raise KeyboardInterrupt

    train_module.save_state = save_then_die
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        train_module.save_state = original


def test_same_seed_same_checkpoint(tiny_bert: Path, tmp_path: Path) -> None:
    pretrain(tiny_recipe(tiny_bert), tmp_path / "a", quiet=True)
    pretrain(tiny_recipe(tiny_bert), tmp_path / "b", quiet=True)
    assert same_weights(tmp_path / "a", tmp_path / "b")
    other = tiny_recipe(tiny_bert)
    other.train.seed = 2
    pretrain(other, tmp_path / "c", quiet=True)
    assert not same_weights(tmp_path / "a", tmp_path / "c")


def test_resume_ends_with_the_same_weights(tiny_bert: Path, tmp_path: Path) -> None:
    pretrain(tiny_recipe(tiny_bert), tmp_path / "straight", quiet=True)
    # Interrupt a run right after its state at step 20 is saved, as Ctrl-C would.
    with interrupted_after_saving(20):
        pretrain(tiny_recipe(tiny_bert), tmp_path / "resumed", quiet=True, save_every=10)
    assert not (tmp_path / "resumed").exists(), "an interrupted run writes no checkpoint"
    assert json.loads((resume_dir(tmp_path / "resumed") / STATE_JSON).read_text())["step"] == 20
    pretrain(tiny_recipe(tiny_bert), tmp_path / "resumed", quiet=True, save_every=10, resume=True)
    assert same_weights(tmp_path / "straight", tmp_path / "resumed")
    assert not resume_dir(tmp_path / "resumed").exists(), "finished runs clean up their state"


def test_resume_refuses_a_different_run(tiny_bert: Path, tmp_path: Path) -> None:
    from hxtool.errors import HxError

    with interrupted_after_saving(None):
        pretrain(tiny_recipe(tiny_bert), tmp_path / "x", quiet=True, save_every=10)
    with pytest.raises(HxError, match="differs from the interrupted one in train"):
        pretrain(tiny_recipe(tiny_bert, steps=50), tmp_path / "x", quiet=True, resume=True)
    with pytest.raises(HxError, match="nothing to resume"):
        pretrain(tiny_recipe(tiny_bert), tmp_path / "y", quiet=True, resume=True)


def hxtool(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hxtool.cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def env(tiny_bert: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def test_kill_9_then_resume_matches_an_uninterrupted_run(pretrained: Path, tmp_path: Path, env) -> None:
    """A real kill -9 of add-language mid-run: the checkpoint is intact and --resume finishes the job."""
    corpus = TINY_DATA / "fo-raw.txt"
    common = ["--code", "fo", "--corpus", corpus, "--steps", "400", "--batch-size", "2", "--save-every", "5",
              "--quiet"]
    straight = shutil.copytree(pretrained, tmp_path / "straight")
    done = hxtool("add-language", "-c", straight, *common, env=env)
    assert done.wait(timeout=300) == 0, done.stderr.read()

    killed = shutil.copytree(pretrained, tmp_path / "killed")
    before = (killed / "model.safetensors").read_bytes()
    proc = hxtool("add-language", "-c", killed, *common, env=env)
    state = resume_dir(killed) / STATE_JSON
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["step"] >= 20:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed; raise --steps"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (killed / "model.safetensors").read_bytes() == before, "the checkpoint was not touched"
    resumed = hxtool("add-language", "-c", killed, *common, "--resume", env=env)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert same_weights(straight, killed)


def test_two_writers_end_with_both_languages(pretrained: Path, tmp_path: Path, env) -> None:
    ck = shutil.copytree(pretrained, tmp_path / "ck")
    runs = [hxtool("add-language", "-c", ck, "--code", code, "--corpus", TINY_DATA / "fo-raw.txt", "--steps", "30",
                   "--batch-size", "4", "--quiet", env=env) for code in ("fo", "is")]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stderr.read()
    registry = json.loads((ck / "registry.json").read_text())
    assert sorted(lang["code"] for lang in registry["languages"][2:]) == ["fo", "is"]
    assert weights(ck)["hypernet.embeddings.language.weight"].shape[0] == 4
    from hxtool.store.session import load_model

    load_model(ck)  # hashes, names and shapes all check out


def test_a_writer_killed_between_renames_loses_nothing(checkpoint: Path) -> None:
    """Simulate the one moment a save has no folder in place: the next load puts the old one back."""
    from hxtool.store.session import load_model

    before = weights(checkpoint)
    parked = checkpoint.parent / ".ck.old-x1" / "previous"
    parked.parent.mkdir()
    os.replace(checkpoint, parked)
    model, _ = load_model(checkpoint)
    assert checkpoint.is_dir() and not parked.parent.exists()
    assert all(torch.equal(before[k], v) for k, v in model.learned_state_dict().items())
