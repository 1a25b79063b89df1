"""`hxtool tag` on every shared UD test file: byte-identical except the UPOS column of word lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from hxtool.store.session import load_model
from hxtool.tagging import tag_file


@pytest.fixture(scope="module")
def model(pretrained: Path):
    return load_model(pretrained)[0]


def treebank_files() -> list[Path]:
    from conftest import SHARED_DATA

    return sorted(SHARED_DATA.glob("ud/*/*.conllu")) if SHARED_DATA.is_dir() else []


def only_upos_differs(original: str, tagged: str, path: Path) -> int:
    """Check line by line; return how many word lines were tagged."""
    a_lines, b_lines = original.split("\n"), tagged.split("\n")
    assert len(a_lines) == len(b_lines), path
    words = 0
    for a, b in zip(a_lines, b_lines):
        cells_a, cells_b = a.split("\t"), b.split("\t")
        if len(cells_a) == 10 and cells_a[0].isdigit():
            assert cells_a[:3] + cells_a[4:] == cells_b[:3] + cells_b[4:], (path, a, b)
            words += 1
        else:
            assert a == b, (path, a, b)
    return words


@pytest.mark.parametrize("name", ["test", pytest.param("dev", marks=pytest.mark.slow),
                                  pytest.param("train", marks=pytest.mark.slow)])
def test_tag_round_trip_on_every_shared_treebank(model, shared_data: Path, name: str) -> None:
    """Test files by default; dev and train files too with --runslow."""
    files = [p for p in treebank_files() if p.stem == name]
    assert files
    for path in files:
        original = path.read_bytes().decode("utf-8")
        tagged = tag_file(model, path, "pos", "en", quiet=True)
        assert only_upos_differs(original, tagged.text, path) == tagged.words
