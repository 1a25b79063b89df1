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


def test_output_onto_an_input_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    corpus = Path(shutil.copy(TINY_DATA / "fo-raw.txt", tmp_path / "fo.txt"))
    train = Path(shutil.copy(TINY_DATA / "tr-pos-train.conllu", tmp_path / "train.conllu"))
    before = corpus.read_bytes(), train.read_bytes()
    for args in (["add-language", "--code", "fo", "--corpus", corpus, "-o", corpus],
                 ["fewshot", "--task", "pos", "--lang", "tr", "--n", "3", "--train", train, "-o", train]):
        result = runner.invoke(app, [str(a) for a in args] + ["-c", str(checkpoint)])
        assert result.exit_code == 1 and "never overwrites its input" in result.stderr
    assert (corpus.read_bytes(), train.read_bytes()) == before


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C inside a real add-language, 60 training steps in: the checkpoint stays byte-identical."""
    import contextlib

    import hxtool.training.loop
    from hxtool.training.resume import STATE_JSON, resume_dir

    steps: list[dict] = []

    @contextlib.contextmanager
    def interrupting(description: str, total: int, quiet: bool = False, start: int = 0):
        def advance(**fields: object) -> None:  # called by the training loop after every optimizer step
            steps.append(fields)
            if len(steps) == 60:
                raise KeyboardInterrupt

        yield advance

    monkeypatch.setattr(hxtool.training.loop, "training_progress", interrupting)
    before = snapshot(checkpoint)
    result = runner.invoke(app, ["add-language", "--code", "fo", "--corpus", str(TINY_DATA / "fo-raw.txt"),
                                 "--steps", "200", "--batch-size", "2", "--save-every", "50",
                                 "-c", str(checkpoint)])
    assert result.exit_code == 130
    assert len(steps) == 60  # it stopped mid-training, 60 optimizer steps in
    assert json.loads((resume_dir(checkpoint) / STATE_JSON).read_text())["step"] == 50  # what --resume uses
    assert "--resume" in result.stderr and "Traceback" not in result.output
    assert snapshot(checkpoint) == before


def test_wrong_dtype_is_refused(checkpoint: Path) -> None:
    from safetensors.torch import load_file, save_file

    from hxtool.store.checkpoint import file_sha256
    from hxtool.errors import CheckpointError
    from hxtool.store.session import load_model

    tensors = load_file(str(checkpoint / "model.safetensors"))
    tensors["heads.pos.linear.bias"] = tensors["heads.pos.linear.bias"].double()
    save_file(tensors, str(checkpoint / "model.safetensors"))
    config = json.loads((checkpoint / "config.json").read_text())
    config["files"] = {"model.safetensors": file_sha256(checkpoint / "model.safetensors")}  # reach the dtype check
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="torch.float64, expected"):
        load_model(checkpoint)
