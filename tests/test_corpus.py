"""Raw MLM corpora: hashing, line counting, streaming, long-line splitting and input errors."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import pytest

from hxtool.data.corpus import corpus_info, iter_corpus_lines, iter_text_lines
from hxtool.errors import DataError

SHARED_RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw"


def write(tmp_path: Path, data: bytes, name: str = "corpus.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_info_hash_and_line_count(tmp_path: Path) -> None:
    data = "first line\n\n   \nsecond  line\r\nþriðja lína\t\nlast without newline".encode()
    path = write(tmp_path, data)
    info = corpus_info(path)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.lines == 4 and info.path == str(path)
    # Tiny chunks split lines and multi-byte characters across reads: same answer.
    assert corpus_info(path, chunk_size=3) == info


def test_iter_skips_blank_lines_and_strips(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffa  b\n\n \t \n c \r\nlast".encode())
    assert list(iter_corpus_lines(path)) == ["a  b", "c", "last"]


def test_long_lines_are_split(tmp_path: Path) -> None:
    words = [f"w{i}" for i in range(25)]
    path = write(tmp_path, (" ".join(words) + "\nshort line\n").encode())
    pieces = list(iter_corpus_lines(path, max_words=10))
    assert pieces == [" ".join(words[:10]), " ".join(words[10:20]), " ".join(words[20:]), "short line"]
    assert list(iter_corpus_lines(path, max_words=25))[0] == " ".join(words)
    with pytest.raises(ValueError):
        list(iter_corpus_lines(path, max_words=0))


@pytest.mark.parametrize(
    ("data", "line", "fragment"),
    [
        (b"ok\nstill ok\nbad \xff byte\n", 3, "not UTF-8"),
        (b"ok\ntruncated \xe2\x82", 2, "not UTF-8"),
        (b"ok\n\n\x89PNG\x00\x00\x00\rIHDR", 3, "NUL"),
        ("two lines\nin UTF-16".encode("utf-16"), 1, "NUL"),
    ],
)
def test_bad_bytes_name_file_and_line(tmp_path: Path, data: bytes, line: int, fragment: str) -> None:
    path = write(tmp_path, data)
    for call in (corpus_info, lambda p: list(iter_corpus_lines(p))):
        with pytest.raises(DataError) as caught:
            call(path)
        assert str(caught.value).startswith(f"{path}:{line}: "), str(caught.value)
        assert fragment in str(caught.value)
    with pytest.raises(DataError):
        corpus_info(path, chunk_size=2)


@pytest.mark.parametrize("data", [b"", b"\n \n\t\r\n", b"\xef\xbb\xbf\n"])
def test_empty_corpus(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, data)
    with pytest.raises(DataError, match="empty corpus"):
        corpus_info(path)
    with pytest.raises(DataError, match="empty corpus"):
        list(iter_corpus_lines(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        corpus_info(tmp_path / "absent.txt")
    with pytest.raises(DataError, match="cannot read"):
        next(iter_corpus_lines(tmp_path))  # a directory


def test_text_lines_report_terminators(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\r\nb\n\nc")
    assert list(iter_text_lines(path)) == [(1, "a", "\r\n"), (2, "b", "\n"), (3, "", "\n"), (4, "c", "")]


def test_streaming_keeps_memory_small(tmp_path: Path) -> None:
    line = ("lorem ipsum dolor sit amet " * 80).strip() + "\n"  # 400 words, ~2 KB
    path = write(tmp_path, line.encode() * 4000)  # ~8.6 MB
    size = path.stat().st_size
    tracemalloc.start()
    try:
        info = corpus_info(path, chunk_size=1 << 16)
        count = sum(1 for _ in iter_corpus_lines(path, max_words=150))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.lines == 4000 and count == 4000 * 3
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert peak < size / 20, f"peak {peak} bytes for a {size}-byte file: not streaming"


def test_shared_raw_corpora(shared_data: Path) -> None:
    paths = sorted(SHARED_RAW.glob("*.txt"))
    assert paths
    for path in paths[:3]:
        info = corpus_info(path)
        assert info.lines == sum(1 for _ in iter_corpus_lines(path, max_words=10**9))
