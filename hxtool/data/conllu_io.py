"""CoNLL-U reading and byte-lossless writing.

Sentences are kept as their raw lines so that writing a document back reproduces the input file
byte for byte; only the columns a caller explicitly replaces (UPOS, the NER= item of MISC) change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conllu.exceptions import ParseException
from conllu.parser import parse_id_value

from hxtool.store.atomic import atomic_write_text
from hxtool.data.corpus import iter_text_lines
from hxtool.errors import DataError

COLUMNS = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
FORM, UPOS, MISC = 1, 3, 9
_LEGACY_UPOS = {"CONJ": "CCONJ"}  # UD v1 name, still found in old releases (zh_gsd 1.4)
_BOM = "\ufeff"


@dataclass
class ConlluSentence:
    lines: list[str]  # raw lines of the block without terminators: comments, words, ranges, empty nodes
    word_lines: list[int]  # index into `lines` of each syntactic word (integer ID), in order
    words: list[str]  # FORM of each syntactic word (may contain spaces)
    upos: list[str]  # UPOS of each word ("_" when absent), legacy CONJ mapped to CCONJ
    misc: list[str]  # MISC column of each word
    first_line: int  # 1-based line number of the block's first line, for error messages
    blank_before: int = 0  # extra blank lines before this block (beyond the one closing the previous)


@dataclass
class ConlluDocument:
    sentences: list[ConlluSentence]
    newline: str = "\n"  # the file's line terminator, "\n" or "\r\n"
    trailer: str = ""  # text after the blank line closing the last block (extra blank lines)
    bom: bool = False  # the file started with a UTF-8 byte order mark


class _Reader:
    """Streaming parser; after iteration, `newline`, `trailer` and `bom` describe the file's layout."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.newline: str | None = None
        self.trailer = ""
        self.bom = False

    def __iter__(self) -> Iterator[ConlluSentence]:
        block: list[str] = []
        start = 0
        blanks = 1  # blank lines since the last block, counting its closing one (the file start acts as one)
        count = 0
        number = 0
        for number, text, terminator in iter_text_lines(self.path):
            if number == 1 and text.startswith(_BOM):
                self.bom, text = True, text[1:]
            self._check_terminator(number, text, terminator)
            if text:
                if not block:
                    start = number
                block.append(text)
                self._check_line(text, number)
            elif block:
                yield self._close(block, start, blanks - 1)
                block, blanks, count = [], 1, count + 1
            else:
                blanks += 1
        if block:
            raise DataError(self.path, f"unterminated sentence: the sentence starting at line {start} "
                                       "is not closed by a blank line", line=number)
        if count == 0:
            raise DataError(self.path, "empty file: no sentences")
        self.trailer = (self.newline or "\n") * (blanks - 1)

    def _check_terminator(self, number: int, text: str, terminator: str) -> None:
        if not terminator:
            return  # only the last line lacks one; an unclosed sentence is reported at the end
        if self.newline is None:
            self.newline = terminator
        elif terminator != self.newline:
            raise DataError(self.path, f"mixed line endings: {terminator!r} after {self.newline!r} "
                                       "on earlier lines", line=number)

    def _check_line(self, text: str, number: int) -> None:
        if text.startswith("#"):
            return
        columns = text.split("\t")
        if len(columns) != len(COLUMNS):
            raise DataError(self.path, f"expected 10 tab-separated columns, found {len(columns)}", line=number)
        for name, value in zip(COLUMNS, columns):
            if not value:
                raise DataError(self.path, f"column {name} is empty (use '_' for no value)", line=number)
        try:
            ok = parse_id_value(columns[0]) is not None
        except ParseException:
            ok = False
        if not ok or columns[0] == "0":
            raise DataError(self.path, f"bad ID {columns[0]!r}: expected an integer, a range a-b "
                                       "or an empty node a.b", line=number)

    def _close(self, block: list[str], start: int, blank_before: int) -> ConlluSentence:
        word_lines: list[int] = []
        ranges: list[tuple[int, int, int]] = []  # (end of range, line number, index)
        for index, text in enumerate(block):
            if text.startswith("#"):
                continue
            number = start + index
            token_id = parse_id_value(text.split("\t", 1)[0])
            if isinstance(token_id, int):
                if token_id != len(word_lines) + 1:
                    raise DataError(self.path, f"word IDs must run 1..n: expected {len(word_lines) + 1}, "
                                               f"found {token_id}", line=number)
                word_lines.append(index)
            elif token_id[1] == "-":
                if token_id[0] != len(word_lines) + 1:
                    raise DataError(self.path, f"range {token_id[0]}-{token_id[2]} must come just before "
                                               f"word {token_id[0]}", line=number)
                ranges.append((token_id[2], number, index))
            elif token_id[0] != len(word_lines):
                raise DataError(self.path, f"empty node {token_id[0]}.{token_id[2]} must come just after "
                                           f"word {token_id[0]}", line=number)
        if not word_lines:
            raise DataError(self.path, "sentence has no words", line=start)
        for end, number, _ in ranges:
            if end > len(word_lines):
                raise DataError(self.path, f"range ends at word {end} but the sentence has "
                                           f"{len(word_lines)} words", line=number)
        return _make_sentence(block, word_lines, start, blank_before)


def _make_sentence(lines: list[str], word_lines: list[int], first_line: int, blank_before: int) -> ConlluSentence:
    rows = [lines[i].split("\t") for i in word_lines]
    return ConlluSentence(
        lines=lines,
        word_lines=word_lines,
        words=[row[FORM] for row in rows],
        upos=[_LEGACY_UPOS.get(row[UPOS], row[UPOS]) for row in rows],
        misc=[row[MISC] for row in rows],
        first_line=first_line,
        blank_before=blank_before,
    )


def read_conllu(path: str | Path) -> ConlluDocument:
    """Read and validate a whole CoNLL-U file; errors are DataError naming file and line."""
    reader = _Reader(path)
    sentences = list(reader)
    return ConlluDocument(sentences, reader.newline or "\n", reader.trailer, reader.bom)


def iter_conllu(path: str | Path) -> Iterator[ConlluSentence]:
    """Stream the sentences of a CoNLL-U file with the same validation as read_conllu."""
    yield from _Reader(path)


def raw_upos(sentence: ConlluSentence) -> list[str]:
    """UPOS exactly as written in the file (no CONJ -> CCONJ mapping), for lossless write-back."""
    return [sentence.lines[i].split("\t")[UPOS] for i in sentence.word_lines]


def _check_values(sentence: ConlluSentence, values: list[str], what: str) -> None:
    if len(values) != len(sentence.word_lines):
        raise ValueError(f"{len(values)} {what} for a sentence of {len(sentence.word_lines)} words "
                         f"(line {sentence.first_line})")
    for value in values:
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"invalid {what} value {value!r}: must be non-empty without whitespace")


def _replace_column(sentence: ConlluSentence, column: int, values: list[str]) -> list[str]:
    lines = list(sentence.lines)
    for index, value in zip(sentence.word_lines, values):
        row = lines[index].split("\t")
        row[column] = value
        lines[index] = "\t".join(row)
    return lines


def column_values(sentence: ConlluSentence, column: int) -> list[str]:
    """One column of every syntactic word, as written in the file."""
    return [sentence.lines[i].split("\t")[column] for i in sentence.word_lines]


def set_column(sentence: ConlluSentence, column: int, values: list[str]) -> ConlluSentence:
    """A copy of the sentence with one column of its word lines replaced (UPOS and MISC keep their
    own setters, which also update the parsed fields)."""
    if column == UPOS:
        return set_upos(sentence, values)
    _check_values(sentence, values, f"{COLUMNS[column]} values")
    return dataclasses.replace(sentence, lines=_replace_column(sentence, column, values))


def set_upos(sentence: ConlluSentence, tags: list[str]) -> ConlluSentence:
    """A copy of the sentence with the UPOS column of its word lines replaced (ranges and empty
    nodes keep theirs)."""
    _check_values(sentence, tags, "UPOS tags")
    lines = _replace_column(sentence, UPOS, tags)
    return dataclasses.replace(sentence, lines=lines, upos=[_LEGACY_UPOS.get(t, t) for t in tags])


def _with_ner(misc: str, tag: str) -> str:
    if misc == "_":
        return f"NER={tag}"
    items = misc.split("|")
    for i, item in enumerate(items):
        if item.startswith("NER="):
            items[i] = f"NER={tag}"
            break
    else:
        items.append(f"NER={tag}")
    return "|".join(items)


def set_misc_ner(sentence: ConlluSentence, tags: list[str]) -> ConlluSentence:
    """A copy with NER=<tag> in each word's MISC: an existing NER= item is replaced in place,
    otherwise it is appended; other items keep their order."""
    _check_values(sentence, tags, "NER tags")
    misc = [_with_ner(m, t) for m, t in zip(sentence.misc, tags)]
    lines = _replace_column(sentence, MISC, misc)
    return dataclasses.replace(sentence, lines=lines, misc=misc)


def ner_tags_from_misc(sentence: ConlluSentence) -> list[str]:
    """The NER= value of each word's MISC ("O" when there is none)."""
    tags = []
    for misc in sentence.misc:
        found = [item[4:] for item in misc.split("|") if item.startswith("NER=")]
        tags.append(found[0] if found else "O")
    return tags


def format_conllu(doc: ConlluDocument) -> str:
    """The document's exact text: a file read with read_conllu comes back byte for byte."""
    nl = doc.newline
    parts = [_BOM] if doc.bom else []
    for sentence in doc.sentences:
        parts.append(nl * sentence.blank_before)
        parts.append(nl.join(sentence.lines))
        parts.append(nl + nl)
    parts.append(doc.trailer)
    return "".join(parts)


def write_conllu(doc: ConlluDocument, path: str | Path) -> None:
    """Write the document atomically (temp file in the same directory, then os.replace)."""
    atomic_write_text(path, format_conllu(doc))


def sentences_from_text(words_per_line: list[list[str]]) -> ConlluDocument:
    """A minimal CoNLL-U document (ID, FORM, "# text =" comment, other columns "_") for tokenised text."""
    sentences = []
    line = 1
    for words in words_per_line:
        if not words:
            raise ValueError("a sentence needs at least one word")
        for word in words:
            if not word or "\t" in word or "\n" in word or "\r" in word:
                raise ValueError(f"invalid word {word!r} for CoNLL-U")
        lines = ["# text = " + " ".join(words)]
        lines += [f"{i}\t{word}\t" + "\t".join("_" * 8) for i, word in enumerate(words, 1)]
        sentences.append(_make_sentence(lines, list(range(1, len(lines))), line, 0))
        line += len(lines) + 1
    return ConlluDocument(sentences)


def read_text(path: str | Path) -> list[list[str]]:
    """Plain text, one sentence a line, split on whitespace; blank lines are skipped."""
    sentences = []
    for number, text, _ in iter_text_lines(path):
        if number == 1:
            text = text.removeprefix(_BOM)
        words = text.split()
        if words:
            sentences.append(words)
    if not sentences:
        raise DataError(path, "empty file: no sentences")
    return sentences
