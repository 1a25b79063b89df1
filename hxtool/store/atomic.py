"""Replace a file or a folder atomically: build it beside the target, then swap it in with renames.

Readers see the old file or folder or the new one, never a mix. A writer killed between the two renames
leaves the old folder parked in `.NAME.old-*/previous`; `recover_folder` puts it back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder; when the block succeeds, it replaces `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            parking = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, parking / "previous")
            os.replace(tmp, target)
            shutil.rmtree(parking, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def recover_folder(target: Path, marker: str) -> None:
    """Put back a folder that a killed writer parked (one holding the file `marker`)."""
    target = Path(target)
    if target.exists():
        return
    for candidate in sorted(target.parent.glob(f".{target.name}.old-*/previous")):
        if (candidate / marker).is_file():
            with contextlib.suppress(OSError):
                os.replace(candidate, target)
                shutil.rmtree(candidate.parent, ignore_errors=True)
                return


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text to a temporary file beside `path`, then rename it over `path`, so readers never
    see a half-written file. Newlines are written as given (no platform translation)."""
    path = Path(path)
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
