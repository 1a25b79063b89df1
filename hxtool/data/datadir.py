"""Find files in a data folder laid out like ../shared/data: raw/<lang>.txt, and each task type's files
(pos: ud/<lang>_<treebank>/<split>.conllu, ner: ner/<lang>/<split>.tsv; see hxtool.tasks)."""

from __future__ import annotations

import os
from pathlib import Path

from hxtool.errors import HxError


def data_dir(explicit: Path | None = None) -> Path | None:
    """--data-dir, else $HXTOOL_DATA (the one place that reads it), else None."""
    if explicit is not None:
        return explicit
    env = os.environ.get("HXTOOL_DATA")
    return Path(env) if env else None


def task_file(root: Path, task: str, lang: str, split: str) -> Path:
    """The one file for (task, lang, split), where the task type keeps it; an error when none or several
    treebanks have it."""
    from hxtool.tasks import get_task

    found = get_task(task).data_files(root, lang, split)
    if not found:
        raise HxError(f"no {split} file for {task}/{lang} in {root} (pass it explicitly)")
    if len(found) > 1:
        raise HxError(f"several {split} files for {task}/{lang} in {root}: "
                      f"{', '.join(str(p.relative_to(root)) for p in found)}; pass one explicitly")
    return found[0]


def raw_corpus(root: Path, lang: str) -> Path:
    path = root / "raw" / f"{lang}.txt"
    if not path.is_file():
        raise HxError(f"no raw text for {lang} in {root} (expected {path})")
    return path
