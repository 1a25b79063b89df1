"""NER data: tagged sentences in TSV, CoNLL-2003, WikiANN and CoNLL-U (NER= in MISC) formats.

Tags are IOB2 (O, B-X, I-X); IOB1 input (a span may open with I-X) is normalised on reading.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from hxtool.store.atomic import atomic_write_text
from hxtool.data.conllu_io import ner_tags_from_misc, read_conllu
from hxtool.data.corpus import iter_text_lines
from hxtool.errors import DataError

FORMATS = ("auto", "tsv", "conll", "wikiann", "conllu")
_TAG = re.compile(r"O|[BI]-\S+")
# WikiANN (Pan et al. 2017 / Rahimi et al. 2019) prefixes tokens with the wiki's language code.
_WIKIANN_PREFIX = re.compile(r"[a-z]{2,}(?:[-_][a-z]+)*:")
_DOCSTART = "-DOCSTART-"
_SNIFF_LINES = 50


@dataclass
class TaggedSentence:
    words: list[str]
    tags: list[str]
    lines: list[int] = field(default_factory=list, compare=False)  # 1-based file line of each word


@dataclass
class TsvDocument:
    """A token-per-line file kept with its layout, so predictions can be written back into it."""

    lines: list[str]  # every line of the file, without terminators
    newline: str  # the file's line terminator
    final_newline: bool  # whether the last line had a terminator
    columns: int  # 1 (tokens only) or 2 (token, tag)
    token_lines: list[list[int]]  # per sentence: indices into `lines` of its tokens
    sentences: list[list[str]]  # per sentence: its tokens


def normalise_iob2(tags: list[str]) -> list[str]:
    """IOB1 -> IOB2: an I-X that opens a span (after O, another type, or at the start) becomes B-X."""
    out = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def _split_tsv(line: str) -> tuple[str, str] | None:
    columns = line.split("\t")
    return (columns[0], columns[1]) if len(columns) == 2 else None


def _split_conll(line: str) -> tuple[str, str] | None:
    columns = line.split()
    return (columns[0], columns[-1]) if len(columns) >= 2 else None


def _split_wikiann(line: str) -> tuple[str, str] | None:
    pair = _split_tsv(line) if "\t" in line else _split_conll(line)
    if pair is None:
        return None
    prefix = _WIKIANN_PREFIX.match(pair[0])
    if prefix is None or prefix.end() == len(pair[0]):
        return None
    return pair[0][prefix.end():], pair[1]


_SPLITTERS: dict[str, tuple[Callable[[str], tuple[str, str] | None], str]] = {
    "tsv": (_split_tsv, "expected 'token<TAB>tag'"),
    "conll": (_split_conll, "expected whitespace-separated columns, token first and tag last"),
    "wikiann": (_split_wikiann, "expected 'lang:token<TAB>tag'"),
}


def _content_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    for number, text, _ in iter_text_lines(path):
        yield number, text.removeprefix("\ufeff") if number == 1 else text


def sniff_format(path: str | Path) -> str:
    """Guess the NER format from the extension and the first non-blank lines."""
    if str(path).endswith(".conllu"):
        return "conllu"
    sample = []
    for _, text in _content_lines(path):
        if text.strip() and not text.startswith(_DOCSTART):
            sample.append(text)
            if len(sample) >= _SNIFF_LINES:
                break
    if not sample:
        raise DataError(path, "empty file: no sentences")
    tokens = [line for line in sample if not line.startswith("#")]
    if tokens and all(len(line.split("\t")) == 10 for line in tokens):
        return "conllu"
    prefixes = {m.group() if (m := _WIKIANN_PREFIX.match(line)) else None for line in sample}
    if len(prefixes) == 1 and None not in prefixes and all(_split_wikiann(line) for line in sample):
        return "wikiann"
    if all(_split_tsv(line) for line in sample):
        return "tsv"
    if all(_split_conll(line) for line in sample):
        return "conll"
    raise DataError(path, "cannot tell the NER format (tsv, conll, wikiann or conllu) from its first lines; "
                          "name it explicitly")


def check_tag(path: str | Path, tag: str, number: int) -> None:
    if not _TAG.fullmatch(tag):
        raise DataError(path, f"invalid NER tag {tag!r}: expected O, B-<type> or I-<type>", line=number)


def _read_lines(path: str | Path, fmt: str) -> list[TaggedSentence]:
    split, expected = _SPLITTERS[fmt]
    sentences: list[TaggedSentence] = []
    words: list[str] = []
    tags: list[str] = []
    numbers: list[int] = []
    for number, text in _content_lines(path):
        line = text.strip()
        if not line or line.split()[0] == _DOCSTART:
            if words:
                sentences.append(TaggedSentence(words, normalise_iob2(tags), numbers))
                words, tags, numbers = [], [], []
            continue
        pair = split(text if fmt == "tsv" else line)
        if pair is None:
            raise DataError(path, f"bad {fmt} line: {expected}", line=number)
        word, tag = pair[0].strip(), pair[1].strip()
        if not word:
            raise DataError(path, "empty token", line=number)
        check_tag(path, tag, number)
        words.append(word)
        tags.append(tag)
        numbers.append(number)
    if words:
        sentences.append(TaggedSentence(words, normalise_iob2(tags), numbers))
    return sentences


def _read_conllu_ner(path: str | Path) -> list[TaggedSentence]:
    sentences = []
    for sentence in read_conllu(path).sentences:
        tags = ner_tags_from_misc(sentence)
        for index, tag in zip(sentence.word_lines, tags):
            check_tag(path, tag, sentence.first_line + index)
        numbers = [sentence.first_line + index for index in sentence.word_lines]
        sentences.append(TaggedSentence(list(sentence.words), normalise_iob2(tags), numbers))
    return sentences


def read_ner(path: str | Path, fmt: str = "auto") -> list[TaggedSentence]:
    """Read NER data in the given format ("auto" sniffs it); tags come back as IOB2."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown NER format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = sniff_format(path)
    sentences = _read_conllu_ner(path) if fmt == "conllu" else _read_lines(path, fmt)
    if not sentences:
        raise DataError(path, "empty file: no sentences")
    return sentences


def _check_cell(value: str, what: str) -> None:
    if not value or "\t" in value or "\n" in value or "\r" in value:
        raise ValueError(f"invalid {what} {value!r}: must be non-empty without tabs or line breaks")


def format_ner_tsv(sentences: list[TaggedSentence]) -> str:
    """The two-column `token<TAB>tag` text, a blank line after each sentence."""
    parts = []
    for sentence in sentences:
        if len(sentence.words) != len(sentence.tags):
            raise ValueError(f"{len(sentence.words)} words but {len(sentence.tags)} tags")
        for word, tag in zip(sentence.words, sentence.tags):
            _check_cell(word, "token")
            _check_cell(tag, "tag")
            parts.append(f"{word}\t{tag}\n")
        parts.append("\n")
    return "".join(parts)


def write_ner_tsv(sentences: list[TaggedSentence], path_or_stream: str | Path | TextIO) -> None:
    """Write `token<TAB>tag` lines; a path is written atomically, a stream as is."""
    text = format_ner_tsv(sentences)
    if isinstance(path_or_stream, (str, Path)):
        atomic_write_text(path_or_stream, text)
    else:
        path_or_stream.write(text)


def read_tsv_document(path: str | Path) -> TsvDocument:
    """Read a one-column (tokens) or two-column (token<TAB>tag) file, keeping its layout. Blank lines
    and -DOCSTART- lines separate sentences and are kept verbatim."""
    lines: list[str] = []
    newline = ""
    final_newline = False
    columns = 0
    token_lines: list[list[int]] = []
    sentences: list[list[str]] = []
    current: list[int] = []
    for number, text, terminator in iter_text_lines(path):
        if number == 1:
            text = text.removeprefix("\ufeff")
        newline = newline or terminator
        final_newline = bool(terminator)
        lines.append(text)
        if not text.strip() or text.split()[0] == _DOCSTART:
            if current:
                token_lines.append(current)
                current = []
            continue
        cells = text.split("\t")
        if len(cells) > 2:
            raise DataError(path, f"expected 1 or 2 tab-separated columns (token[, tag]), found {len(cells)}",
                            line=number)
        if columns and len(cells) != columns:
            raise DataError(path, f"{len(cells)} column(s) here but {columns} on earlier lines", line=number)
        columns = len(cells)
        if not cells[0].strip():
            raise DataError(path, "empty token", line=number)
        current.append(len(lines) - 1)
    if current:
        token_lines.append(current)
    if not token_lines:
        raise DataError(path, "empty file: no sentences")
    sentences = [[lines[i].split("\t")[0].strip() for i in group] for group in token_lines]
    return TsvDocument(lines, newline or "\n", final_newline, columns, token_lines, sentences)


def format_tsv_with_tags(doc: TsvDocument, tags_per_sentence: list[list[str]]) -> str:
    """The document's text with each token line's tag column set (replaced, or added to a
    tokens-only file); every other line is unchanged."""
    if len(tags_per_sentence) != len(doc.token_lines):
        raise ValueError(f"{len(tags_per_sentence)} tag lists for {len(doc.token_lines)} sentences")
    lines = list(doc.lines)
    for group, tags in zip(doc.token_lines, tags_per_sentence):
        if len(tags) != len(group):
            raise ValueError(f"{len(tags)} tags for a sentence of {len(group)} tokens (line {group[0] + 1})")
        for index, tag in zip(group, tags):
            _check_cell(tag, "tag")
            lines[index] = lines[index].split("\t")[0] + "\t" + tag
    return doc.newline.join(lines) + (doc.newline if doc.final_newline else "")
