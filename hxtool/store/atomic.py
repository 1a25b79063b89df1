"""Replace a folder atomically: build it beside the target, then swap it in with renames.

Readers see the old folder or the new one, never a mix. A writer killed between the two renames
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
