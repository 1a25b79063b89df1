"""Bad input of every kind: one line on stderr, a non-zero exit, no traceback, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TINY_DATA
from hxtool.cli import app

runner = CliRunner()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


CASES = {
    "empty corpus": (lambda d: ["add-language", "--code", "fo", "--corpus", write(d / "e.txt", b"\n \n")],
                     "empty"),
    "binary corpus": (lambda d: ["add-language", "--code", "fo", "--corpus", write(d / "b.txt", b"ab\x00\x01\n")],
                      "b.txt"),
    "latin-1 corpus": (lambda d: ["add-language", "--code", "fo", "--corpus", write(d / "l.txt", "ok\nfær\n"
                                                                                    .encode("latin-1"))],
                       "l.txt:2"),
    "implausible code": (lambda d: ["add-language", "--code", "faroese", "--corpus", TINY_DATA / "fo-raw.txt"],
                         "ISO 639"),
    "wrong columns": (lambda d: ["tag", write(d / "c.conllu", b"1\tword\t_\n\n"), "--task", "pos", "--lang", "en",
                                 "-o", d / "out.conllu"], "c.conllu:1"),
    "bad id": (lambda d: ["tag", write(d / "i.conllu", b"# x\nA\tw\t_\t_\t_\t_\t_\t_\t_\t_\n\n"), "--task", "pos",
                          "--lang", "en", "-o", d / "out.conllu"], "i.conllu:2"),
    "unterminated": (lambda d: ["tag", write(d / "u.conllu", b"1\tw\t_\t_\t_\t_\t_\t_\t_\t_\n"), "--task", "pos",
                                "--lang", "en", "-o", d / "out.conllu"], "u.conllu"),
    "invalid NER tag": (lambda d: ["fewshot", "--task", "ner", "--lang", "en", "--n", "1",
                                   "--train", write(d / "n.tsv", b"anna\tB-PER\noslo\tLOCATION\n\n")], "n.tsv:2"),
    "n zero": (lambda d: ["fewshot", "--task", "pos", "--lang", "tr", "--n", "0",
                          "--train", TINY_DATA / "tr-pos-train.conllu"], "at least 1"),
    "unknown language": (lambda d: ["fewshot", "--task", "pos", "--lang", "mt", "--n", "5",
                                    "--train", TINY_DATA / "tr-pos-train.conllu"], "hxtool add-language --code mt"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_writes_nothing(case: str, checkpoint: Path, tmp_path: Path) -> None:
    make_args, message = CASES[case]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    args = [str(a) for a in make_args(inputs)] + ["-c", str(checkpoint)]
    before_ck, before_inputs = snapshot(checkpoint), snapshot(inputs)
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert snapshot(checkpoint) == before_ck, "the checkpoint is untouched"
    assert snapshot(inputs) == before_inputs, "inputs are never modified and no output file appears"
    assert not [p for p in checkpoint.parent.iterdir() if p.name.startswith(".ck.tmp")]


def test_foreign_and_broken_checkpoints_via_cli(checkpoint: Path, tmp_path: Path) -> None:
    source = TINY_DATA / "fo-pos-test.conllu"

    def tag(ck: Path) -> str:
        result = runner.invoke(app, ["tag", str(source), "--task", "pos", "--lang", "en", "-c", str(ck)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        return result.stderr

    incomplete = Path(shutil.copytree(checkpoint, tmp_path / "incomplete"))
    (incomplete / "model.safetensors").unlink()
    assert "incomplete: model.safetensors is missing" in tag(incomplete)

    future = Path(shutil.copytree(checkpoint, tmp_path / "future"))
    config = json.loads((future / "config.json").read_text())
    config["format_version"] = 99
    (future / "config.json").write_text(json.dumps(config))
    assert "format version 99" in tag(future)

    pickle_only = tmp_path / "pickled"
    pickle_only.mkdir()
    (pickle_only / "pytorch_model.bin").write_bytes(b"not loaded")
    assert "no checkpoint" in tag(pickle_only) or "incomplete" in tag(pickle_only)
