"""export-language / import-language: a language moves between copies of one pretraining, tagging identically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY_DATA
from hxtool.cli import app
from hxtool.errors import CheckpointError
from hxtool.store.checkpoint import REGISTRY_FILE, WEIGHTS_FILE
from hxtool.store.language_file import read_language_file, shared_fingerprint
from hxtool.store.session import load_model, new_meta, save_model

runner = CliRunner()
TEST_FILE = TINY_DATA / "fo-pos-test.conllu"


def cli(*args: object, code: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output + repr(result.exception)
    return result


def add_fo(ck: Path, code: str = "fo") -> None:
    cli("add-language", "--code", code, "--corpus", TINY_DATA / "fo-raw.txt", "--steps", "6", "--batch-size", "4",
        "--quiet", "-c", ck)


def tag(ck: Path, lang: str = "fo") -> str:
    return cli("tag", TEST_FILE, "--task", "pos", "--lang", lang, "--quiet", "-c", ck).stdout


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def exported(pretrained: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the pretraining that added fo and few-shot tuned it (own pos head), and fo's file."""
    ck = Path(shutil.copytree(pretrained, tmp_path / "exporter"))
    add_fo(ck)
    cli("fewshot", "--task", "pos", "--lang", "fo", "--n", "6", "--train", TINY_DATA / "fo-pos-train.conllu",
        "--epochs", "2", "--quiet", "-c", ck)
    file = tmp_path / "fo.safetensors"
    assert "exported fo" in cli("export-language", "--lang", "fo", "--output", file, "-c", ck).stdout
    return ck, file


def test_the_file_holds_what_fo_owns_and_its_provenance(exported: tuple[Path, Path]) -> None:
    ck, file = exported
    header, tensors = read_language_file(file)
    model, _ = load_model(ck)
    index = model.registry.lang_index("fo")
    assert sorted(tensors) == ["embedding", "heads.pos.linear.bias", "heads.pos.linear.weight"]
    assert torch.equal(tensors["embedding"], model.hypernet.embeddings.language.weight[index])
    assert torch.equal(tensors["heads.pos.linear.weight"], model.heads["pos@fo"].linear.weight)
    assert header["language"]["source"] == "add-language" and header["language"]["fewshot"][0]["n"] == 6
    assert header["shared_fingerprint"] == shared_fingerprint(model)


def test_import_tags_byte_identically_even_after_another_language_was_added(
        exported: tuple[Path, Path], pretrained: Path, tmp_path: Path) -> None:
    source, file = exported
    ck = Path(shutil.copytree(pretrained, tmp_path / "importer"))
    add_fo(ck, code="is")  # fo's row index differs here (3, not 2) and the table has other contents
    result = cli("import-language", file, "-c", ck)
    assert "added fo as language row 3" in result.stdout
    assert tag(ck) == tag(source)
    assert tag(ck, "is") != tag(ck)  # the tags depend on the language, so equality above means something

    registry = json.loads((ck / REGISTRY_FILE).read_text())
    fo = registry["languages"][3]
    assert fo["code"] == "fo" and fo["source"] == "import" and fo["own_heads"] == ["pos"]
    assert fo["imported"]["file"] == str(file) and fo["imported"]["provenance"]["source"] == "add-language"
    assert fo["fewshot"][0]["n"] == 6  # the exporter's history comes along
    info = cli("info", "-c", ck).stdout
    assert f"fo: imported from {file} (sha256 " in info and "there: add-language, init mean" in info
    load_model(ck)  # hashes, names and shapes check out


def test_refusals_leave_the_checkpoint_untouched(exported: tuple[Path, Path], pretrained: Path,
                                                 tmp_path: Path, tiny_bert: Path) -> None:
    source, file = exported
    from hxtool.model.backbone import load_backbone
    from hxtool.model.hyperx import HyperX
    from hxtool.model.tiny import build_tiny_model

    model, meta = load_model(pretrained)
    fresh = tmp_path / "other-pretraining"  # same base, other (untrained) shared weights
    save_model(HyperX(load_backbone(str(tiny_bert)), meta.model, model.registry), meta, fresh, {"command": "test"})
    other_base = build_tiny_model(tmp_path / "other-base", "bert", seed=5)
    backbone = load_backbone(str(other_base))
    elsewhere = HyperX(backbone, meta.model, model.registry)
    save_model(elsewhere, new_meta(elsewhere), tmp_path / "other-base-ck", {"command": "test"})
    cases = [(fresh, "comes from another pretraining"), (tmp_path / "other-base-ck", "exported from a checkpoint on "
             "base model"), (source, "already in the checkpoint; pass --overwrite")]
    for ck, message in cases:
        before = snapshot(ck)
        result = cli("import-language", file, "-c", ck, code=1)
        assert message in result.stderr and "Traceback" not in result.output
        assert snapshot(ck) == before

    not_ours = tmp_path / "plain.safetensors"
    from safetensors.torch import save_file

    save_file({"embedding": torch.zeros(64)}, str(not_ours))
    assert "not a language file" in cli("import-language", not_ours, "-c", source, code=1).stderr
    before = snapshot(source)
    assert "inside the checkpoint folder" in cli("export-language", "--lang", "fo", "-o", source / WEIGHTS_FILE,
                                                 "-c", source, code=1).stderr
    assert snapshot(source) == before


def test_overwrite_replaces_the_row_and_heads(exported: tuple[Path, Path], tmp_path: Path) -> None:
    source, file = exported
    ck = Path(shutil.copytree(source, tmp_path / "again"))
    cli("fewshot", "--task", "pos", "--lang", "fo", "--n", "6", "--train", TINY_DATA / "fo-pos-train.conllu",
        "--epochs", "3", "--seed", "7", "--quiet", "-c", ck)  # fo moves on here …
    _, tensors = read_language_file(file)
    moved = load_model(ck)[0].language_state("fo")
    assert not torch.equal(moved["embedding"], tensors["embedding"])
    assert "replaced fo as language row 2" in cli("import-language", file, "--overwrite", "-c", ck).stdout
    back = load_model(ck)[0].language_state("fo")  # … and the import brings the exported fo back
    assert sorted(back) == sorted(tensors) and all(torch.equal(back[k], tensors[k]) for k in back)
    assert tag(ck) == tag(source)


def test_load_language_state_checks_before_it_changes_anything(checkpoint: Path) -> None:
    model, _ = load_model(checkpoint)
    state = model.language_state("tr")
    before = {k: v.clone() for k, v in model.learned_state_dict().items()}
    bad = [{**state, "embedding": state["embedding"][:-1]}, {**state, "embedding": state["embedding"].double()},
           {**state, "heads.pos.linear.weight": torch.zeros(3, 32)},
           {**state, "heads.pos.linear.bias": torch.zeros(7, dtype=torch.float16)},
           {**state, "lora.x": torch.zeros(1)}, {**state, "heads.dep.linear.bias": torch.zeros(7)}]
    bad[2]["heads.pos.linear.bias"] = torch.zeros(3)
    for broken in bad:
        with pytest.raises(CheckpointError):
            model.load_language_state("tr", broken)
    after = model.learned_state_dict()
    assert sorted(after) == sorted(before) and all(torch.equal(before[k], after[k]) for k in before)


def test_low_rank_updates_and_own_labels_travel_with_the_language(pretrained: Path, tmp_path: Path) -> None:
    """fo tuned with --tune lang+head+lora on data holding a label the task lacks: the file carries the
    updates and the grown head, and the importing copy tags byte-identically."""
    ck = Path(shutil.copytree(pretrained, tmp_path / "exporter"))
    add_fo(ck)
    train = tmp_path / "fo-train-xpos.conllu"
    lines = (TINY_DATA / "fo-pos-train.conllu").read_text(encoding="utf-8").splitlines(keepends=True)
    first_word = next(i for i, line in enumerate(lines) if line[:1].isdigit())
    cols = lines[first_word].split("\t")
    cols[3] = "CLF"  # no UPOS tag: fo's own head must grow by one label
    lines[first_word] = "\t".join(cols)
    train.write_text("".join(lines), encoding="utf-8")
    cli("fewshot", "--task", "pos", "--lang", "fo", "--n", "30", "--train", train, "--epochs", "2",
        "--tune", "lang+head+lora", "--lora-rank", "2", "--lora-targets", "query,ffn_out", "--lora-layers", "1",
        "--quiet", "-c", ck)
    file = tmp_path / "fo.safetensors"
    cli("export-language", "--lang", "fo", "--output", file, "-c", ck)
    header, tensors = read_language_file(file)
    assert any(k.startswith("lora.updates.") for k in tensors)
    assert all(k.startswith("lora.updates.1_") for k in tensors if k.startswith("lora."))  # layer 1 alone
    assert tensors["heads.pos.linear.weight"].shape[0] == 18  # 17 UPOS + CLF
    other = Path(shutil.copytree(pretrained, tmp_path / "importer"))
    cli("import-language", file, "-c", other)
    reloaded, _ = load_model(other)
    assert reloaded.registry.language("fo").lora == {"rank": 2, "targets": ["query", "ffn_out"], "alpha": 16.0,
                                                     "layers": [1]}
    assert tag(other) == tag(ck)
