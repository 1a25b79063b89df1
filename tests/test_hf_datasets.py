"""Hugging Face datasets as inputs: save_to_disk folders of both schemas, text columns for MLM, and the errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TINY_DATA
from hxtool.cli import app
from hxtool.data.corpus import corpus_info, iter_corpus_lines
from hxtool.data.labelled import read_labelled
from hxtool.errors import DataError, HxError

datasets = pytest.importorskip("datasets")
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value  # noqa: E402

runner = CliRunner()
UPOS = ["NOUN", "PUNCT", "ADP", "NUM", "SYM", "SCONJ", "ADJ", "PART", "DET", "CCONJ", "PROPN", "PRON", "X", "_",
        "ADV", "INTJ", "VERB", "AUX"]  # the order of HF's universal_dependencies ClassLabel
WIKIANN = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def run(*args: object, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def ud_dataset(data, ids: bool = True) -> Dataset:
    """A UD-schema Dataset from LabelledData: upos as ClassLabel ids, or as strings."""
    if not ids:
        return Dataset.from_dict({"idx": [str(i) for i in range(len(data))], "tokens": data.words, "upos": data.tags})
    features = Features({"idx": Value("string"), "tokens": Sequence(Value("string")),
                         "upos": Sequence(ClassLabel(names=UPOS))})
    return Dataset.from_dict({"idx": [str(i) for i in range(len(data))], "tokens": data.words,
                              "upos": [[UPOS.index(t) for t in tags] for tags in data.tags]}, features=features)


def ner_dataset(data) -> Dataset:
    features = Features({"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=WIKIANN)),
                         "langs": Sequence(Value("string"))})
    return Dataset.from_dict({"tokens": data.words, "ner_tags": [[WIKIANN.index(t) for t in s] for s in data.tags],
                              "langs": [["en"] * len(s) for s in data.words]}, features=features)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny recipe's data as save_to_disk folders: DatasetDicts for UD and NER, a Dataset per raw corpus."""
    root = tmp_path_factory.mktemp("hfdata")
    folders = {}
    for lang in ("en", "tr"):
        splits = {"train": ud_dataset(read_labelled("pos", TINY_DATA / f"{lang}-pos-train.conllu")),
                  "validation": ud_dataset(read_labelled("pos", TINY_DATA / f"{lang}-pos-dev.conllu"))}
        DatasetDict(splits).save_to_disk(str(root / f"ud_{lang}"))
        folders[f"ud_{lang}"] = root / f"ud_{lang}"
        lines = (TINY_DATA / f"{lang}-raw.txt").read_text(encoding="utf-8").splitlines()
        Dataset.from_dict({"id": list(range(len(lines))), "text": lines}).save_to_disk(str(root / f"raw_{lang}"))
        folders[f"raw_{lang}"] = root / f"raw_{lang}"
    DatasetDict({"train": ner_dataset(read_labelled("ner", TINY_DATA / "en-ner-train.tsv")),
                 "validation": ner_dataset(read_labelled("ner", TINY_DATA / "en-ner-dev.tsv"))}
                ).save_to_disk(str(root / "ner_en"))
    folders["ner_en"] = root / "ner_en"
    DatasetDict({"train": ud_dataset(read_labelled("pos", TINY_DATA / "fo-pos-train.conllu"), ids=False),
                 "test": ud_dataset(read_labelled("pos", TINY_DATA / "fo-pos-test.conllu"), ids=False)}
                ).save_to_disk(str(root / "ud_fo"))
    folders["ud_fo"] = root / "ud_fo"
    lines = (TINY_DATA / "fo-raw.txt").read_text(encoding="utf-8").splitlines()
    Dataset.from_dict({"title": ["t"] * len(lines), "body": lines}).save_to_disk(str(root / "raw_fo"))
    folders["raw_fo"] = root / "raw_fo"
    return folders


def test_ud_schema_ids_and_strings_read_like_the_file(tiny_folders: dict[str, Path]) -> None:
    file = read_labelled("pos", TINY_DATA / "en-pos-train.conllu")
    ids = read_labelled("pos", tiny_folders["ud_en"])  # DatasetDict: train by default
    assert (ids.words, ids.tags) == (file.words, file.tags)
    assert str(ids.path).endswith("ud_en?split=train") and ids.lines[1] == [2] * len(file.words[1])
    dev = read_labelled("pos", f"{tiny_folders['ud_en']}?split=validation")
    assert dev.tags == read_labelled("pos", TINY_DATA / "en-pos-dev.conllu").tags
    strings = read_labelled("pos", f"{tiny_folders['ud_fo']}?split=test")
    assert strings.tags == read_labelled("pos", TINY_DATA / "fo-pos-test.conllu").tags


def test_ud_multiword_tokens_are_dropped(tmp_path: Path) -> None:
    # HF's universal_dependencies keeps "don't" (UPOS "_") before its words "do" and "n't".
    features = Features({"tokens": Sequence(Value("string")), "upos": Sequence(ClassLabel(names=UPOS))})
    Dataset.from_dict({"tokens": [["I", "don't", "do", "n't", "know"]],
                       "upos": [[UPOS.index(t) for t in ("PRON", "_", "AUX", "PART", "VERB")]]},
                      features=features).save_to_disk(str(tmp_path / "mwt"))
    data = read_labelled("pos", tmp_path / "mwt")
    assert data.words == [["I", "do", "n't", "know"]] and data.tags == [["PRON", "AUX", "PART", "VERB"]]


def test_ner_schema_classlabel_and_strings(tiny_folders: dict[str, Path], tmp_path: Path) -> None:
    file = read_labelled("ner", TINY_DATA / "en-ner-train.tsv")
    data = read_labelled("ner", tiny_folders["ner_en"])
    assert (data.words, data.tags) == (file.words, file.tags)
    # strings, IOB1-style I- opening a span: normalised to IOB2 as the file readers do
    Dataset.from_dict({"tokens": [["Ann", "Lee", "in", "Oslo"]], "ner_tags": [["I-PER", "I-PER", "O", "I-LOC"]]}
                      ).save_to_disk(str(tmp_path / "iob1"))
    assert read_labelled("ner", tmp_path / "iob1").tags == [["B-PER", "I-PER", "O", "B-LOC"]]


def test_schema_and_split_errors(tiny_folders: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no pos schema.*found columns: tokens, ner_tags, langs"):
        read_labelled("pos", tiny_folders["ner_en"])
    with pytest.raises(DataError, match=r"no split 'test' in the dataset \(splits: train, validation\)"):
        read_labelled("pos", f"{tiny_folders['ud_en']}?split=test")
    with pytest.raises(HxError, match="unknown dataset option 'splt'"):
        read_labelled("pos", f"{tiny_folders['ud_en']}?splt=test")
    Dataset.from_dict({"tokens": [["a", "b"], ["Q", "x"]], "ner_tags": [["O", "O"], ["Q-XYZ", "O"]]}
                      ).save_to_disk(str(tmp_path / "bad_tag"))
    with pytest.raises(DataError, match=r"bad_tag\?split=train:2: invalid NER tag 'Q-XYZ'"):
        read_labelled("ner", tmp_path / "bad_tag")
    Dataset.from_dict({"tokens": [["a", "b"]], "upos": [[1, 2]]}).save_to_disk(str(tmp_path / "bare_ids"))
    with pytest.raises(DataError, match="class ids but the dataset has no ClassLabel"):
        read_labelled("pos", tmp_path / "bare_ids")
    Dataset.from_dict({"tokens": [["a", "b"]], "upos": [["NOUN"]]}).save_to_disk(str(tmp_path / "short"))
    with pytest.raises(DataError, match=r":1: 2 tokens but 1 upos"):
        read_labelled("pos", tmp_path / "short")


def test_text_column_streams_like_the_file(tiny_folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import hxtool.data.hf_datasets as hf

    monkeypatch.setattr(hf, "_ROWS_PER_BATCH", 7)  # many Arrow batches, order kept across them
    file = TINY_DATA / "en-raw.txt"
    assert list(iter_corpus_lines(tiny_folders["raw_en"], max_words=5)) == list(iter_corpus_lines(file, max_words=5))
    info, file_info = corpus_info(tiny_folders["raw_en"]), corpus_info(file)
    assert (info.sha256, info.lines) == (file_info.sha256, file_info.lines)  # rows hash like the file's lines
    assert info.sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    # no "text" column and two string columns: refused, then chosen with ?column=
    with pytest.raises(DataError, match=r"cannot tell which column holds the text \(columns: title, body\)"):
        corpus_info(tiny_folders["raw_fo"])
    with pytest.raises(DataError, match=r"no column 'txt' \(columns: title, body\)"):
        corpus_info(f"{tiny_folders['raw_fo']}?column=txt")
    lines = list(iter_corpus_lines(f"{tiny_folders['raw_fo']}?column=body"))
    assert lines == list(iter_corpus_lines(TINY_DATA / "fo-raw.txt"))


def test_text_rows_with_line_breaks_and_blanks(tmp_path: Path) -> None:
    Dataset.from_dict({"text": ["first para\nsecond para", "", None, "  last  "]}).save_to_disk(str(tmp_path / "w"))
    assert list(iter_corpus_lines(tmp_path / "w")) == ["first para", "second para", "last"]
    assert corpus_info(tmp_path / "w").lines == 3
    Dataset.from_dict({"text": ["", " "]}).save_to_disk(str(tmp_path / "empty"))
    with pytest.raises(DataError, match="empty corpus"):
        corpus_info(tmp_path / "empty")


def test_hub_name_offline_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HxError, match=r"hf:wikiann:fo\?split=train: the Hugging Face hub is not reachable"):
        read_labelled("ner", "hf:wikiann:fo")
    result = run("eval", "hf:universal_dependencies:fo_oft", "--task", "pos", "--lang", "fo", ok=False)
    assert result.exit_code == 1
    assert "hf:universal_dependencies:fo_oft?split=test: the Hugging Face hub is not reachable" in result.output


def test_recipe_keys(tiny_folders: dict[str, Path], tmp_path: Path) -> None:
    from hxtool.config import load_recipe

    recipe = tmp_path / "r.toml"
    recipe.write_text(f'''base_model = "tiny-random:bert"
[[data]]
task = "pos"
lang = "en"
train = "{tiny_folders['ud_en']}"
dev = "{tiny_folders['ud_en']}"
[[mlm]]
lang = "fo"
corpus = "{tiny_folders['raw_fo']}"
column = "body"
''')
    loaded = load_recipe(recipe)
    assert str(loaded.data[0].train).endswith("ud_en?split=train")
    assert str(loaded.data[0].dev).endswith("ud_en?split=validation")
    assert str(loaded.mlm[0].corpus).endswith("raw_fo?split=train&column=body")
    recipe.write_text(f'''[[mlm]]
lang = "en"
corpus = "{TINY_DATA / 'en-raw.txt'}"
column = "text"
''')
    with pytest.raises(HxError, match=r"mlm\[0\].corpus: split and column apply to a dataset folder"):
        load_recipe(recipe)


def test_pretrain_fewshot_add_language_from_dataset_folders(tiny_folders: dict[str, Path], tiny_bert: Path,
                                                             tmp_path: Path) -> None:
    recipe = tmp_path / "datasets.toml"
    recipe.write_text(f'''base_model = "{tiny_bert}"
size = "small"
[model]
task_dim = 8
lang_dim = 8
layer_dim = 8
projected_dim = 16
bottleneck = 16
[train]
steps = 40
batch_size = 8
lr = 1e-2
max_length = 64
[[data]]
task = "pos"
lang = "en"
train = "{tiny_folders['ud_en']}"
dev = "{tiny_folders['ud_en']}"
dev_split = "validation"
[[data]]
task = "pos"
lang = "tr"
train = "{tiny_folders['ud_tr']}"
split = "train"
[[data]]
task = "ner"
lang = "en"
train = "{tiny_folders['ner_en']}"
[[mlm]]
lang = "en"
corpus = "{tiny_folders['raw_en']}"
[[mlm]]
lang = "tr"
corpus = "{tiny_folders['raw_tr']}"
column = "text"
''')
    ck = tmp_path / "ck"
    result = run("pretrain-mlm", recipe, "--output", ck, "--quiet")
    assert "dev pos/en" in result.stdout
    info = json.loads(run("info", "--checkpoint", ck, "--json").stdout)
    en = info["registry"]["languages"][0]
    assert en["corpus"]["path"].endswith("raw_en?split=train")
    assert en["corpus"]["sha256"] == hashlib.sha256((TINY_DATA / "en-raw.txt").read_bytes()).hexdigest()
    tasks = {t["name"]: t["labels"] for t in info["registry"]["tasks"]}
    assert "B-PER" in tasks["ner"] and "NOUN" in tasks["pos"] and "_" not in tasks["pos"]

    result = run("add-language", "--code", "fo", "--corpus", tiny_folders["raw_fo"], "--column", "body",
                 "--checkpoint", ck, "--steps", "4", "--batch-size", "4", "--quiet")
    assert "added fo" in result.stdout
    # a DatasetDict with train and test: --train reads train, --eval reads test, by default
    result = run("fewshot", "--task", "pos", "--lang", "fo", "--n", "5", "--train", tiny_folders["ud_fo"],
                 "--eval", tiny_folders["ud_fo"], "--checkpoint", ck, "--epochs", "2", "--quiet")
    assert "UPOS accuracy on ud_fo?split=test" in result.stdout
    info = json.loads(run("info", "--checkpoint", ck, "--json").stdout)
    fo = info["registry"]["languages"][-1]
    assert fo["corpus"]["path"].endswith("raw_fo?split=train&column=body")
    assert fo["fewshot"][0]["train"].endswith("ud_fo?split=train")
    # the same split for both is refused, as the same file is
    result = run("fewshot", "--task", "pos", "--lang", "fo", "--n", "5", "--train", tiny_folders["ud_fo"],
                 "--eval", tiny_folders["ud_fo"], "--eval-split", "train", "--checkpoint", ck, ok=False)
    assert result.exit_code == 1 and "same file as --train" in result.output
    # eval: gold and predicted both datasets, test split by default
    result = run("eval", tiny_folders["ud_fo"], tiny_folders["ud_fo"], "--task", "pos", "--json")
    assert json.loads(result.stdout)["value"] == 1.0


def test_hub_names_load_the_split_and_stream_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the hub reachable, hf:NAME:CONFIG goes to load_dataset with its config and split; text streams."""
    import hxtool.model.backbone as backbone

    calls = []
    wikiann = ner_dataset(read_labelled("ner", TINY_DATA / "en-ner-dev.tsv"))
    text = Dataset.from_dict({"text": ["one line", "two\nlines"]})

    def load_dataset(name, config=None, split=None, streaming=False):
        calls.append((name, config, split, streaming))
        return text.to_iterable_dataset() if streaming else wikiann

    monkeypatch.setattr(backbone, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    data = read_labelled("ner", "hf:unimelb-nlp/wikiann:en?split=validation")
    assert data.tags == read_labelled("ner", TINY_DATA / "en-ner-dev.tsv").tags
    assert list(iter_corpus_lines("hf:some/wiki")) == ["one line", "two", "lines"]
    assert calls == [("unimelb-nlp/wikiann", "en", "validation", False), ("some/wiki", None, "train", True)]


def test_text_column_streams_in_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    line = ("lorem ipsum dolor sit amet " * 80).strip()  # ~2 KB a row
    peaks = {}
    for rows in (1000, 4000):  # ~2 MB and ~9 MB of text
        folder = tmp_path / f"big{rows}"
        Dataset.from_dict({"text": [line] * rows}).save_to_disk(str(folder))
        corpus_info(folder)  # first use: imports and caches outside the measurement
        tracemalloc.start()
        try:
            info = corpus_info(folder)
            count = sum(1 for _ in iter_corpus_lines(folder, max_words=150))
            peaks[rows] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert info.lines == rows and count == rows * 3
    size = 4000 * (len(line) + 1)
    assert peaks[4000] < 1.5 * peaks[1000] and peaks[4000] < size / 5, f"peaks {peaks}: not streaming"
