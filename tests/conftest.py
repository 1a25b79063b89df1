"""Shared fixtures: tiny random encoders and tokenizers built offline, and the --runslow switch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"
SHARED_REFERENCE = SHARED / "reference"
RESOURCES = Path(__file__).parent / "resources"


def pytest_configure(config: pytest.Config) -> None:
    # Tiny models gain nothing from intra-op threads, and on a busy 2-core machine two threads per op
    # made the tiny pretraining 80x slower in one measurement.
    import torch

    torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run slow real-model tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


REPO = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO / "recipes" / "tiny.toml"
TINY_DATA = REPO / "recipes" / "tiny"


def tiny_data_dir(root: Path, layout: dict[str, str]) -> Path:
    """A data folder in ../shared/data's layout (`layout`: its path -> a file of the tiny recipe's toy data)."""
    import shutil

    for dest, source in layout.items():
        (root / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(TINY_DATA / source, root / dest)
    return root


def benchmark_module(name: str) -> Iterator[ModuleType]:
    """Import the script benchmarks/<name>.py as a module for a fixture to yield (the scripts are no package)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(f"{name}_under_test", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep built models (tiny-random:*, pypi:*) out of the user's cache unless a test sets its own."""
    import os

    if "HXTOOL_CACHE" not in os.environ:
        monkeypatch.setenv("HXTOOL_CACHE", str(tmp_path_factory.getbasetemp() / "hxcache"))
    monkeypatch.delenv("HXTOOL_CHECKPOINT", raising=False)
    monkeypatch.delenv("HXTOOL_DATA", raising=False)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hxtool.model.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"), "bert")


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """A checkpoint pretrained on the tiny recipe (built once; copy it before changing it)."""
    from hxtool.config import load_recipe
    from hxtool.workflows.pretrain import pretrain

    recipe = load_recipe(TINY_RECIPE)
    recipe.base_model = str(tiny_bert)
    folder = tmp_path_factory.mktemp("pretrained") / "ck"
    pretrain(recipe, folder, quiet=True)
    return folder


@pytest.fixture
def checkpoint(pretrained: Path, tmp_path: Path) -> Path:
    """A private copy of the pretrained tiny checkpoint."""
    import shutil

    return Path(shutil.copytree(pretrained, tmp_path / "ck"))
