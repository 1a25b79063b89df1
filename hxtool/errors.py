"""User-facing errors: the CLI prints these as one line on stderr and exits non-zero."""

from __future__ import annotations

from pathlib import Path


class HxError(Exception):
    """An error caused by the user's input or environment, shown without a traceback."""


class DataError(HxError):
    """A problem in an input file, located by file (and line when known)."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class CheckpointError(HxError):
    """A checkpoint that is missing, incomplete, incompatible or tampered with."""
