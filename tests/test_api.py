"""The Python API: the README example runs on the tiny model, and the API agrees with the commands."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TINY_DATA


def readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_import_hxtool_stays_light() -> None:
    code = "import sys, hxtool; print(json.dumps(sorted(m for m in ('torch', 'transformers') if m in sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", "import json; " + code], env=env, capture_output=True, text=True,
                          check=True)
    assert json.loads(done.stdout) == []
    done = subprocess.run([sys.executable, "-c", "import hxtool; print(hxtool.load.__module__)"], env=env,
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "hxtool.api"


def test_the_readme_example_runs_and_writes_what_the_commands_would(
        pretrained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    shutil.copytree(pretrained, tmp_path / "tiny-model")
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), scope)
    ck, report, tags = scope["ck"], scope["report"], scope["tags"]

    assert re.fullmatch(r"UPOS \d\.\d{3} -> \d\.\d{3}\n", capsys.readouterr().out)
    assert [len(t) for t in tags] == [5, 4] and all(t in ck.model.registry.task("pos").labels for s in tags for t in s)
    assert ck.languages == ["en", "tr", "fo"] and ck.tasks == ["pos", "ner"]
    registry = json.loads((tmp_path / "tiny-model" / "registry.json").read_text())
    fo = registry["languages"][2]
    assert fo["code"] == "fo" and fo["steps"] == 20 and fo["own_heads"] == ["pos"]
    assert fo["fewshot"] == [{"task": "pos", "n": 10, "seed": 1, "tune": "lang+head", "steps": 5,
                              "train": "recipes/tiny/fo-pos-train.conllu"}]
    assert report.n == 10 and report.after is not None

    # The API's tags are the command's tags, and the exported file imports into a fresh copy.
    import hxtool
    from hxtool.tagging import predict_tags
    from hxtool.store.session import load_model

    reloaded, _ = load_model(tmp_path / "tiny-model")
    assert predict_tags(reloaded, "pos", "fo", [["Hon", "býr", "í", "Havn", "."], ["Eg", "eiti", "Jón", "."]]) == tags
    other = hxtool.load(shutil.copytree(pretrained, tmp_path / "other"))
    assert other.import_language("fo.safetensors").code == "fo"
    assert other.tag("pos", "fo", [["Hon", "býr", "í", "Havn", "."], ["Eg", "eiti", "Jón", "."]]) == tags
    assert hxtool.load(tmp_path / "other").languages == ["en", "tr", "fo"]


def test_writes_go_to_output_and_a_failure_changes_nothing(pretrained: Path, tmp_path: Path) -> None:
    import hxtool
    from hxtool.errors import HxError

    source = shutil.copytree(pretrained, tmp_path / "source")
    before = (source / "model.safetensors").read_bytes()
    ck = hxtool.load(source)
    with pytest.raises(HxError, match="already in the checkpoint"):
        ck.add_language("tr", TINY_DATA / "fo-raw.txt", steps=2)
    assert ck.folder == source
    ck.add_language("fo", TINY_DATA / "fo-raw.txt", steps=2, output=tmp_path / "copy")
    assert ck.folder == tmp_path / "copy" and (source / "model.safetensors").read_bytes() == before
    assert hxtool.load(tmp_path / "copy").languages == ["en", "tr", "fo"]
    ck.save(tmp_path / "saved")
    assert hxtool.load(tmp_path / "saved").languages == ["en", "tr", "fo"]
