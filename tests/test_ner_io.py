"""NER readers (tsv, conll, wikiann, conllu), IOB handling and the tsv write-back used by `tag`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hxtool.data.ner_io import (
    TaggedSentence,
    format_tsv_with_tags,
    normalise_iob2,
    read_ner,
    read_tsv_document,
    sniff_format,
    write_ner_tsv,
)
from hxtool.errors import DataError

RESOURCES = Path(__file__).parent / "resources"
SHARED_NER = Path(__file__).resolve().parents[2] / "shared" / "data" / "ner"


def as_pairs(sentences: list[TaggedSentence]) -> list[list[tuple[str, str]]]:
    return [list(zip(s.words, s.tags)) for s in sentences]


def test_tsv() -> None:
    sentences = read_ner(RESOURCES / "io_ner.tsv", "tsv")
    assert as_pairs(sentences) == [
        [("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O")],
        [("Peter", "B-PER"), ("Blackburn", "I-PER")],
        [("New York", "B-LOC")],  # tokens may hold spaces; the last sentence lacks a closing blank line
    ]


def test_conll_skips_docstart_and_normalises_iob1() -> None:
    sentences = read_ner(RESOURCES / "io_ner.conll", "conll")
    assert as_pairs(sentences) == [
        [("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O")],
        [("Peter", "B-PER"), ("Blackburn", "I-PER")],
    ]


def test_wikiann_strips_language_prefix() -> None:
    sentences = read_ner(RESOURCES / "io_ner_wikiann.txt", "wikiann")
    assert as_pairs(sentences) == [
        [("Ankara", "B-LOC"), ("'da", "O"), ("Türkiye", "B-ORG"), ("Büyük", "I-ORG")],
        [("Ali", "B-PER"), ("gelir:mi", "O")],
    ]


def test_conllu_reads_misc_ner() -> None:
    sentences = read_ner(RESOURCES / "io_ner.conllu", "conllu")
    assert as_pairs(sentences) == [
        [("Peter", "B-PER"), ("Smith", "I-PER"), ("visited", "O"), ("Paris", "B-LOC")],
        [("Bye", "O")],
    ]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("io_ner.tsv", "tsv"), ("io_ner.conll", "conll"), ("io_ner_wikiann.txt", "wikiann"),
     ("io_ner.conllu", "conllu"), ("io_multiword.conllu", "conllu")],
)
def test_auto_detects_format(name: str, fmt: str, tmp_path: Path) -> None:
    assert sniff_format(RESOURCES / name) == fmt
    assert read_ner(RESOURCES / name) == read_ner(RESOURCES / name, fmt)
    # Detection from content alone, without the .conllu extension.
    copy = tmp_path / "data.txt"
    copy.write_bytes((RESOURCES / name).read_bytes())
    assert sniff_format(copy) == fmt


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["I-PER", "I-PER", "O", "I-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
        (["I-PER", "I-LOC", "B-LOC", "I-LOC"], ["B-PER", "B-LOC", "B-LOC", "I-LOC"]),
        (["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),
        ([], []),
    ],
)
def test_normalise_iob2(tags: list[str], expected: list[str]) -> None:
    assert normalise_iob2(tags) == expected


@pytest.mark.parametrize(
    ("fmt", "data", "line", "fragment"),
    [
        ("tsv", "EU\tB-ORG\nrejects\tS-PER\n", 2, "invalid NER tag 'S-PER'"),
        ("tsv", "EU\tB-ORG\n\nx\to\n", 3, "invalid NER tag 'o'"),
        ("tsv", "EU\tB-ORG\nrejects\n", 2, "bad tsv line"),
        ("tsv", "EU\tB-ORG\na\tb\tO\n", 2, "bad tsv line"),
        ("conll", "EU NNP B-\n", 1, "invalid NER tag 'B-'"),
        ("wikiann", "en:EU\tB-ORG\nEU\tO\n", 2, "bad wikiann line"),
        ("conllu", "1\tEU\t_\t_\t_\t_\t_\t_\t_\tNER=B_ORG\n\n", 1, "invalid NER tag 'B_ORG'"),
        ("tsv", "EU\tB-ORG\nr\xe9jects\tO\n", 2, "not UTF-8"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, fmt: str, data: str, line: int, fragment: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(data.encode("latin-1" if "\xe9" in data else "utf-8"))
    with pytest.raises(DataError) as caught:
        read_ner(path, fmt)
    assert str(caught.value).startswith(f"{path}:{line}: ") and fragment in str(caught.value)


@pytest.mark.parametrize("data", [b"", b"\n\n", b"-DOCSTART-\tO\n\n"])
def test_empty_input_is_an_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "empty.tsv"
    path.write_bytes(data)
    with pytest.raises(DataError, match="empty file"):
        read_ner(path)
    with pytest.raises(DataError, match="empty file"):
        read_ner(path, "tsv")


def test_undetectable_format(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("just\nwords\n", encoding="utf-8")
    with pytest.raises(DataError, match="cannot tell the NER format"):
        read_ner(path)
    with pytest.raises(ValueError):
        read_ner(path, "iob")


def test_write_ner_tsv_round_trips(tmp_path: Path) -> None:
    sentences = read_ner(RESOURCES / "io_ner.conll")
    stream = io.StringIO()
    write_ner_tsv(sentences, stream)
    assert stream.getvalue().startswith("EU\tB-ORG\nrejects\tO\n")
    assert stream.getvalue().endswith("Blackburn\tI-PER\n\n")
    path = tmp_path / "out.tsv"
    write_ner_tsv(sentences, path)
    assert path.read_text(encoding="utf-8") == stream.getvalue()
    assert read_ner(path) == sentences
    with pytest.raises(ValueError):
        write_ner_tsv([TaggedSentence(["a", "b"], ["O"])], io.StringIO())


def test_tsv_document_one_column_adds_tags() -> None:
    doc = read_tsv_document(RESOURCES / "io_tokens.tsv")
    assert doc.columns == 1
    assert doc.sentences == [["The", "EU", "says"], ["Peter", "Blackburn"]]
    text = format_tsv_with_tags(doc, [["O", "B-ORG", "O"], ["B-PER", "I-PER"]])
    # Blank, whitespace-only and -DOCSTART- lines stay; no final newline was there, none is added.
    assert text == "The\tO\nEU\tB-ORG\nsays\tO\n\n \n-DOCSTART-\nPeter\tB-PER\nBlackburn\tI-PER"


def test_tsv_document_two_columns_replaces_tags(tmp_path: Path) -> None:
    source = RESOURCES / "io_ner.tsv"
    doc = read_tsv_document(source)
    assert doc.columns == 2 and [len(s) for s in doc.sentences] == [4, 2, 1]
    original = [[t for t in s.tags] for s in read_ner(source)]
    assert format_tsv_with_tags(doc, original) == source.read_text(encoding="utf-8")
    text = format_tsv_with_tags(doc, [["O"] * 4, ["O"] * 2, ["B-LOC"]])
    assert text.splitlines()[:2] == ["EU\tO", "rejects\tO"] and text.count("\n") == 10
    with pytest.raises(ValueError):
        format_tsv_with_tags(doc, [["O"] * 4])
    crlf = tmp_path / "crlf.tsv"
    crlf.write_bytes(b"a\r\nb\r\n\r\nc\r\n")
    doc = read_tsv_document(crlf)
    assert format_tsv_with_tags(doc, [["O", "O"], ["O"]]) == "a\tO\r\nb\tO\r\n\r\nc\tO\r\n"


@pytest.mark.parametrize(
    ("data", "line", "fragment"),
    [(b"a\tO\nb\tO\tx\n", 2, "1 or 2"), (b"a\tO\nb\n", 2, "2 on earlier"), (b"a\tO\n\tO\n", 2, "empty token"),
     (b"", None, "empty file")],
)
def test_tsv_document_errors(tmp_path: Path, data: bytes, line: int | None, fragment: str) -> None:
    path = tmp_path / "in.tsv"
    path.write_bytes(data)
    with pytest.raises(DataError, match=fragment) as caught:
        read_tsv_document(path)
    assert caught.value.line == line and str(path) in str(caught.value)


def ner_files() -> list[Path]:
    return sorted(SHARED_NER.glob("*/*.tsv"))


@pytest.mark.parametrize("path", ner_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shared_ner_files(shared_data: Path, path: Path) -> None:
    sentences = read_ner(path)
    assert sentences and all(len(s.words) == len(s.tags) > 0 for s in sentences)
    labels = {t for s in sentences for t in s.tags}
    assert labels <= {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"}
    blocks = path.read_text(encoding="utf-8").strip("\n").split("\n\n")
    assert len(sentences) == len(blocks)
