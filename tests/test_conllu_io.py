"""CoNLL-U reading, validation and byte-lossless writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from hxtool.data.conllu_io import (
    ConlluDocument,
    format_conllu,
    iter_conllu,
    ner_tags_from_misc,
    raw_upos,
    read_conllu,
    read_text,
    sentences_from_text,
    set_misc_ner,
    set_upos,
    write_conllu,
)
from hxtool.errors import DataError

RESOURCES = Path(__file__).parent / "resources"
SHARED_UD = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud"

MULTIWORD = RESOURCES / "io_multiword.conllu"
CRLF = RESOURCES / "io_crlf.conllu"
ROW = "1\tHi\thi\tINTJ\t_\t_\t0\troot\t_\t_"


def columns(line: str) -> list[str]:
    return line.split("\t")


@pytest.mark.parametrize("path", [MULTIWORD, CRLF, RESOURCES / "io_ner.conllu"], ids=lambda p: p.name)
def test_round_trip_is_byte_identical(path: Path, tmp_path: Path) -> None:
    doc = read_conllu(path)
    assert format_conllu(doc).encode("utf-8") == path.read_bytes()
    write_conllu(doc, tmp_path / "out.conllu")
    assert (tmp_path / "out.conllu").read_bytes() == path.read_bytes()


def test_sentence_fields() -> None:
    doc = read_conllu(MULTIWORD)
    assert doc.newline == "\n" and doc.trailer == "\n" and not doc.bom
    first, second, third = doc.sentences
    assert first.first_line == 2 and first.blank_before == 1
    assert first.words == ["vamos", "nos", "#", "ya"]  # the range line is not a word
    assert first.lines[2] == "# text = vámonos # ya" and first.lines[3] == "#"
    assert second.words == ["Peter", "likes", "New", "York", "and", "10 000", "apples", "."]
    assert second.upos[4] == "CCONJ" and raw_upos(second)[4] == "CONJ"
    assert second.misc[0] == "NER=B-PER|SpaceAfter=No|Translit=Peter"
    assert [columns(second.lines[i])[0] for i in second.word_lines] == [str(i) for i in range(1, 9)]
    assert third.blank_before == 2 and third.first_line == 28
    assert first.lines[first.word_lines[0]].startswith("1\tvamos\t")


def test_crlf_is_detected_and_kept(tmp_path: Path) -> None:
    doc = read_conllu(CRLF)
    assert doc.newline == "\r\n"
    assert all("\r" not in line for s in doc.sentences for line in s.lines)
    # A CRLF copy made here too, in case a checkout converted the fixture's line endings.
    path = tmp_path / "crlf.conllu"
    path.write_bytes(MULTIWORD.read_bytes().replace(b"\n", b"\r\n"))
    doc = read_conllu(path)
    assert doc.trailer == "\r\n"
    assert format_conllu(doc).encode() == path.read_bytes()


@pytest.mark.parametrize("tail", [b"", b"\n", b"\n\n\n"])
def test_trailing_blank_lines(tail: bytes, tmp_path: Path) -> None:
    path = tmp_path / "t.conllu"
    path.write_bytes(ROW.encode() + b"\n\n" + tail)
    assert format_conllu(read_conllu(path)).encode() == path.read_bytes()


def test_byte_order_mark_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "bom.conllu"
    path.write_bytes(b"\xef\xbb\xbf# x\n" + ROW.encode() + b"\n\n")
    doc = read_conllu(path)
    assert doc.bom and doc.sentences[0].lines[0] == "# x"
    assert format_conllu(doc).encode() == path.read_bytes()


def test_iter_conllu_matches_read() -> None:
    assert list(iter_conllu(MULTIWORD)) == read_conllu(MULTIWORD).sentences


def test_set_upos_changes_only_column_4_of_word_lines() -> None:
    sentence = read_conllu(MULTIWORD).sentences[1]
    tags = [f"T{i}" for i in range(len(sentence.words))]
    tagged = set_upos(sentence, tags)
    assert tagged.upos == tags and raw_upos(tagged) == tags
    assert sentence.upos[0] == "PROPN"  # the original is not modified
    for index, (old, new) in enumerate(zip(sentence.lines, tagged.lines)):
        if index in sentence.word_lines:
            old_cols, new_cols = columns(old), columns(new)
            assert new_cols[3] == tags[sentence.word_lines.index(index)]
            assert old_cols[:3] + old_cols[4:] == new_cols[:3] + new_cols[4:]
        else:  # comments, the 3-4 range and the 8.1 empty node keep their UPOS
            assert old == new
    assert set_upos(sentence, ["CONJ"] * 8).upos == ["CCONJ"] * 8


def test_set_upos_identity_is_lossless() -> None:
    doc = read_conllu(MULTIWORD)
    same = ConlluDocument([set_upos(s, raw_upos(s)) for s in doc.sentences], doc.newline, doc.trailer, doc.bom)
    assert format_conllu(same) == MULTIWORD.read_text(encoding="utf-8")


def test_set_upos_rejects_wrong_length_and_bad_tags() -> None:
    sentence = read_conllu(MULTIWORD).sentences[0]
    with pytest.raises(ValueError):
        set_upos(sentence, ["NOUN"])
    with pytest.raises(ValueError):
        set_upos(sentence, ["NOUN", "NOUN", "NO UN", "NOUN"])


def test_set_misc_ner_replaces_appends_and_fills_underscore() -> None:
    sentence = read_conllu(MULTIWORD).sentences[1]
    tags = ["B-PER", "O", "B-LOC", "I-LOC", "O", "O", "O", "O"]
    tagged = set_misc_ner(sentence, ["I-ORG"] + tags[1:])
    assert tagged.misc[0] == "NER=I-ORG|SpaceAfter=No|Translit=Peter"  # replaced in place
    assert tagged.misc[1] == "Gloss=likes|NER=O"  # existing item kept in order
    assert tagged.misc[4] == "NER=O"  # "_" becomes the single item
    assert columns(tagged.lines[tagged.word_lines[0]])[9] == tagged.misc[0]
    assert ner_tags_from_misc(tagged) == ["I-ORG"] + tags[1:]
    first = read_conllu(MULTIWORD).sentences[0]
    appended = set_misc_ner(first, ["O", "B-X", "O", "B-Y"])
    assert appended.misc == ["NER=O", "SpaceAfter=No|Gloss=us|NER=B-X", "NER=O", "NER=B-Y"]
    # The range line keeps its own MISC.
    assert columns(appended.lines[5])[9] == "_"


def test_ner_tags_from_misc_defaults_to_o() -> None:
    sentence = read_conllu(MULTIWORD).sentences[0]
    assert ner_tags_from_misc(sentence) == ["O", "O", "O", "O"]
    assert ner_tags_from_misc(read_conllu(MULTIWORD).sentences[1])[:4] == ["B-PER", "O", "B-LOC", "I-LOC"]


def write(tmp_path: Path, data: bytes, name: str = "bad.conllu") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "line", "fragment"),
    [
        (b"# ok\n" + ROW.encode() + b"\n2\tx\t_\n\n", 3, "10 tab-separated columns"),
        (b"1 Hi hi INTJ _ _ 0 root _ _\n\n", 1, "10 tab-separated columns"),
        (ROW.replace("1", "x", 1).encode() + b"\n\n", 1, "bad ID"),
        (ROW.replace("1", "0", 1).encode() + b"\n\n", 1, "bad ID"),
        (ROW.replace("1", "1.0", 1).encode() + b"\n\n", 1, "bad ID"),
        (ROW.encode() + b"\n" + ROW.replace("1", "3", 1).encode() + b"\n\n", 2, "expected 2, found 3"),
        (ROW.replace("1", "2", 1).encode() + b"\n\n", 1, "expected 1, found 2"),
        (ROW.replace("1", "1-2", 1).encode() + b"\n" + ROW.encode() + b"\n\n", 1, "range ends at word 2"),
        (ROW.encode() + b"\n" + ROW.replace("1", "2.1", 1).encode() + b"\n\n", 2, "empty node"),
        (ROW.replace("Hi", "", 1).encode() + b"\n\n", 1, "FORM is empty"),
        (b"# only a comment\n\n", 1, "no words"),
        (ROW.encode() + b"\n\n" + ROW.encode() + b"\n", 3, "unterminated sentence"),
        (ROW.encode() + b"\n\n" + ROW.encode(), 3, "unterminated sentence"),
        (b"# c\n" + ROW.encode() + b"\n", 2, "unterminated sentence"),
        (ROW.encode() + b"\n" + ROW.replace("Hi", "H\xffi").encode("latin-1") + b"\n\n", 2, "not UTF-8"),
        (ROW.encode() + b"\r\n\n", 2, "mixed line endings"),
        (ROW.encode() + b"\x00\n\n", 1, "NUL"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path: Path, data: bytes, line: int, fragment: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(DataError) as caught:
        read_conllu(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message
    with pytest.raises(DataError):  # the streaming reader validates the same way
        list(iter_conllu(path))


@pytest.mark.parametrize("data", [b"", b"\n\n\n"])
def test_empty_file_is_an_error(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, data)
    with pytest.raises(DataError, match="empty file") as caught:
        read_conllu(path)
    assert str(path) in str(caught.value)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_conllu(tmp_path / "nope.conllu")


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out.conllu"
    target.write_text("old", encoding="utf-8")
    write_conllu(read_conllu(CRLF), target)
    assert target.read_bytes() == CRLF.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["out.conllu"]


def test_sentences_from_text_is_valid_conllu(tmp_path: Path) -> None:
    doc = sentences_from_text([["Hello", "world", "!"], ["Bye"]])
    text = format_conllu(doc)
    assert text.startswith("# text = Hello world !\n1\tHello\t_\t_\t_\t_\t_\t_\t_\t_\n")
    path = tmp_path / "made.conllu"
    write_conllu(doc, path)
    again = read_conllu(path)
    assert [s.words for s in again.sentences] == [["Hello", "world", "!"], ["Bye"]]
    assert [s.first_line for s in again.sentences] == [s.first_line for s in doc.sentences] == [1, 6]
    tagged = set_upos(doc.sentences[0], ["INTJ", "NOUN", "PUNCT"])
    assert columns(tagged.lines[1])[3] == "INTJ"
    with pytest.raises(ValueError):
        sentences_from_text([[]])


def test_read_text() -> None:
    assert read_text(RESOURCES / "io_text.txt") == [["The", "EU", "says", "so", "."], ["Peter", "Blackburn"]]


@pytest.mark.parametrize(("data", "line"), [(b"ok\n\xc3(\n", 2), (b" \n\n", None)])
def test_read_text_errors(tmp_path: Path, data: bytes, line: int | None) -> None:
    path = write(tmp_path, data, "in.txt")
    with pytest.raises(DataError) as caught:
        read_text(path)
    assert caught.value.line == line and str(path) in str(caught.value)


def ud_files() -> list[Path]:
    return sorted(SHARED_UD.glob("*/*.conllu"))


@pytest.mark.parametrize("path", ud_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shared_ud_treebanks_round_trip(shared_data: Path, path: Path) -> None:
    raw = path.read_bytes()
    doc = read_conllu(path)
    assert doc.sentences and all(s.words for s in doc.sentences)
    assert format_conllu(doc).encode("utf-8") == raw
    same = [set_upos(s, raw_upos(s)) for s in doc.sentences]
    assert format_conllu(ConlluDocument(same, doc.newline, doc.trailer, doc.bom)).encode("utf-8") == raw
    assert all("CONJ" not in s.upos for s in doc.sentences)


def test_shared_ud_directory_has_treebanks(shared_data: Path) -> None:
    assert ud_files(), "no *.conllu under shared data/ud"
