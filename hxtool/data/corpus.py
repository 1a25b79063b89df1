"""Raw text corpora for MLM, and the strict UTF-8 line reader the other data readers share.

Everything here streams: files are read in binary, line by line (or chunk by chunk), and decoded
one line at a time so that a bad byte is reported with its line number. A corpus may also be a Hugging
Face dataset's text column (a save_to_disk folder or hf:NAME, see hxtool.data.hf_datasets): its rows are
read as if written one after another into a file, streamed the same way.
"""

from __future__ import annotations

import codecs
import hashlib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hxtool.errors import DataError

_NUL_MESSAGE = "contains NUL bytes: a binary file, or text not encoded as UTF-8 (UTF-16?)"


@dataclass
class CorpusInfo:
    path: str
    sha256: str
    lines: int  # non-blank lines


def open_binary(path: str | Path) -> BinaryIO:
    """Open for reading, turning OS errors (missing file, directory, permissions) into DataError."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror or exc}") from None


def decode_line(path: str | Path, raw: bytes, number: int) -> str:
    """Decode one line strictly as UTF-8; NUL bytes count as binary input."""
    if b"\0" in raw:
        raise DataError(path, _NUL_MESSAGE, line=number)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start]
        raise DataError(path, f"not UTF-8: invalid byte 0x{bad:02x} at byte {exc.start + 1} of the line",
                        line=number) from None


def iter_text_lines(path: str | Path) -> Iterator[tuple[int, str, str]]:
    """Yield (1-based line number, text, terminator) for each line; terminator is "\\r\\n", "\\n" or ""
    (last line without one). A UTF-8 byte order mark stays in the first line's text: callers decide."""
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, 1):
            if raw.endswith(b"\r\n"):
                terminator, body = "\r\n", raw[:-2]
            elif raw.endswith(b"\n"):
                terminator, body = "\n", raw[:-1]
            else:
                terminator, body = "", raw
            yield number, decode_line(path, body, number), terminator


def _has_text(text: str) -> bool:
    # U+FEFF (a byte order mark, or a zero-width no-break space) is not whitespace to str.strip().
    return bool(text.replace("\ufeff", "").strip())


def corpus_info(path: str | Path, chunk_size: int = 1 << 20) -> CorpusInfo:
    """Hash and validate a corpus in fixed-size chunks, so one huge line cannot exhaust memory."""
    from hxtool.data.hf_datasets import dataset_fingerprint, is_dataset

    if is_dataset(path):
        sha256, lines = dataset_fingerprint(path)
        return CorpusInfo(path=str(path), sha256=sha256, lines=lines)
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    number = 1
    nonblank = False  # whether the current line has seen a non-whitespace character

    def feed(piece: bytes, final: bool) -> str:
        try:
            return decoder.decode(piece, final=final)
        except UnicodeDecodeError as exc:
            raise DataError(path, f"not UTF-8: invalid byte 0x{exc.object[exc.start]:02x}", line=number) from None

    with open_binary(path) as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            nul = chunk.find(b"\0")
            if nul >= 0:
                raise DataError(path, _NUL_MESSAGE, line=number + chunk.count(b"\n", 0, nul))
            pieces = chunk.split(b"\n")
            for i, piece in enumerate(pieces):
                at_newline = i < len(pieces) - 1
                # A "\n" byte never occurs inside a multi-byte UTF-8 sequence, so lines decode alone.
                nonblank = _has_text(feed(piece, final=at_newline)) or nonblank
                if at_newline:
                    lines += nonblank
                    nonblank = False
                    number += 1
        nonblank = _has_text(feed(b"", final=True)) or nonblank
        lines += nonblank
    if lines == 0:
        raise DataError(path, "empty corpus: no non-blank line")
    return CorpusInfo(path=str(path), sha256=digest.hexdigest(), lines=lines)


def _cut(text: str, max_words: int) -> Iterator[str]:
    """One stripped, non-blank line as pieces of at most max_words whitespace-separated words."""
    words = text.split()
    if len(words) <= max_words:
        yield text  # keep the original spacing when no cut is needed
    else:
        for start in range(0, len(words), max_words):
            yield " ".join(words[start:start + max_words])


def _raw_lines(path: str | Path) -> Iterator[str]:
    from hxtool.data.hf_datasets import is_dataset, iter_dataset_texts

    if is_dataset(path):
        for text in iter_dataset_texts(path):
            yield from text.splitlines()
    else:
        for _, text, _ in iter_text_lines(path):
            yield text


def iter_corpus_lines(path: str | Path, max_words: int = 200) -> Iterator[str]:
    """Yield the non-blank lines (stripped), cutting lines longer than max_words whitespace-separated
    words into consecutive pieces of at most max_words words each."""
    if max_words < 1:
        raise ValueError(f"max_words must be at least 1, got {max_words}")
    found = False
    for text in _raw_lines(path):
        text = text.replace("\ufeff", "").strip()
        if not text:
            continue
        found = True
        yield from _cut(text, max_words)
    if not found:
        raise DataError(path, "empty corpus: no non-blank line")


# Scripts written without spaces between words. Tagging reads a sentence word by word, so the pieces a text in
# them yields unsegmented are pieces tagging never sees.
UNSPACED_SCRIPTS = ("CJK UNIFIED IDEOGRAPH", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR")


def unsegmented_script(path: str | Path, sample_lines: int = 2000) -> bool:
    """Whether the corpus's first `sample_lines` lines are mostly letters of a script written without spaces
    (UNSPACED_SCRIPTS) and its words were not separated: under one space per five other characters (raw Chinese
    and Japanese text has about one per twenty, the same text with its words separated about one per two)."""
    letters = unspaced = spaces = others = 0
    for number, line in enumerate(iter_corpus_lines(path)):
        if number == sample_lines:
            break
        for char in line:
            if char.isspace():
                spaces += 1
                continue
            others += 1
            if char.isalpha():
                letters += 1
                unspaced += unicodedata.name(char, "").startswith(UNSPACED_SCRIPTS)
    return letters > 0 and unspaced >= letters / 2 and spaces * 5 < others
