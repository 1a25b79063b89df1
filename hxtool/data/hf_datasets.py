"""Hugging Face datasets as inputs: folders written by `save_to_disk` and hub names `hf:NAME[:CONFIG]`.

A dataset input is named by a reference string that travels wherever a file path does (recipes, the
registry's provenance, `LabelledData.path`): the folder or hub name, then optionally the split and
column, as in `wikiann_fo?split=test` or `hf:wikiann:fo?split=train` or `wiki_ug?column=text`. So the
training loop, MlmStream and the checkpoint code need no change, and two splits of one folder are two
different inputs (few-shot refuses to train on its evaluation data by comparing them).

Labelled schemas: Universal Dependencies (`tokens` + `upos`) and WikiANN / CoNLL-2003 (`tokens` +
`ner_tags`), tags as ClassLabel ids or as strings. MLM corpora: one text column, iterated in batches
from the memory-mapped Arrow files (or streamed from the hub), so a large dump never sits in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from hxtool.errors import DataError, HxError

if TYPE_CHECKING:
    from hxtool.data.labelled import LabelledData
    from hxtool.tasks.base import TaskType

HUB_PREFIX = "hf:"
TOKEN_COLUMNS = ("tokens", "words")
TEXT_COLUMN = "text"
_QUERY_KEYS = ("split", "column")
_ROWS_PER_BATCH = 256  # rows read from Arrow at a time when streaming a text column
# Tag columns and per-row rules (UD's multiword tokens, IOB2) belong to each task type: TaskType.dataset_row.


@dataclass(frozen=True)
class DatasetRef:
    """A dataset input: a save_to_disk folder or a hub name, with an optional split and text column."""

    source: str  # the folder, or the hub name without the "hf:" prefix
    hub: bool
    config: str | None = None  # hub configuration (e.g. a WikiANN language)
    split: str | None = None
    column: str | None = None

    def __str__(self) -> str:
        name = self.source
        if self.hub:
            name = f"{HUB_PREFIX}{self.source}" + (f":{self.config}" if self.config else "")
        query = {key: getattr(self, key) for key in _QUERY_KEYS if getattr(self, key)}
        return name + (f"?{urlencode(query)}" if query else "")


def _split_query(value: str) -> tuple[str, dict[str, str]]:
    base, sep, query = value.partition("?")
    return base, dict(parse_qsl(query, keep_blank_values=True)) if sep else {}


def is_dataset_folder(path: str | Path) -> bool:
    """A folder written by save_to_disk: a Dataset (state.json) or a DatasetDict (dataset_dict.json)."""
    path = Path(path)
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def is_dataset(value: str | Path) -> bool:
    """Whether an input names a dataset (a save_to_disk folder or hf:NAME, with or without ?split=…) rather
    than a file; any other folder stays a path, so file readers report it as they always have."""
    text = str(value)
    if text.startswith(HUB_PREFIX):
        return True
    return is_dataset_folder(_split_query(text)[0])


def parse_ref(value: str | Path) -> DatasetRef:
    """Read a reference string; unknown query keys are refused, naming the known ones."""
    base, query = _split_query(str(value))
    for key in query:
        if key not in _QUERY_KEYS:
            raise HxError(f"{value}: unknown dataset option {key!r} (known: {', '.join(_QUERY_KEYS)})")
    split, column = query.get("split") or None, query.get("column") or None
    if base.startswith(HUB_PREFIX):
        name, _, config = base[len(HUB_PREFIX):].partition(":")
        if not name:
            raise HxError(f"{value}: give a hub dataset as hf:NAME or hf:NAME:CONFIG")
        return DatasetRef(name, True, config or None, split, column)
    return DatasetRef(base, False, None, split, column)


def dataset_ref(value: str | Path, split: str | None = None, column: str | None = None) -> str:
    """The reference string for an input with a split/column chosen elsewhere (a CLI option, a recipe key);
    one already written into the reference wins."""
    ref = parse_ref(value)
    return str(DatasetRef(ref.source, ref.hub, ref.config, ref.split or split, ref.column or column))


def _hub_unreachable(ref: DatasetRef) -> HxError:
    return HxError(f"{ref}: the Hugging Face hub is not reachable (offline?); on a connected machine run "
                   f"datasets.load_dataset(...).save_to_disk(FOLDER) and pass the folder instead")


def _load(ref: DatasetRef, default_split: str, streaming: bool = False) -> Any:
    """The Dataset (or IterableDataset) of one split; a folder holding a single Dataset has no splits."""
    import datasets

    split = ref.split or default_split
    if ref.hub:
        from hxtool.model.backbone import hub_reachable

        if not hub_reachable():
            raise _hub_unreachable(ref)
        try:
            return datasets.load_dataset(ref.source, ref.config, split=split, streaming=streaming)
        except (ValueError, KeyError) as exc:  # an unknown split or config
            raise HxError(f"{ref}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the hub client raises many kinds; say which in one line
            raise HxError(f"{ref}: cannot load from the hub: {type(exc).__name__}: {exc}") from None
    folder = Path(ref.source)
    if not is_dataset_folder(folder):
        raise DataError(folder, "not a dataset folder: expected one written by datasets' save_to_disk "
                                "(state.json or dataset_dict.json)")
    try:
        loaded = datasets.load_from_disk(str(folder))
    except (OSError, ValueError) as exc:
        raise DataError(folder, f"cannot read the dataset: {exc}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(folder, f"no split {split!r} in the dataset (splits: {', '.join(loaded)}); "
                                    "choose one with the split option")
        return loaded[split]
    return loaded  # a single Dataset: the split name does not apply


def _names(feature: Any) -> list[str] | None:
    """The class names of a list-of-ClassLabel column, or None when it holds strings."""
    inner = getattr(feature, "feature", None)
    return list(inner.names) if inner is not None and hasattr(inner, "names") else None


def _column(task: TaskType, columns: list[str], where: str) -> tuple[str, str]:
    tokens = next((c for c in TOKEN_COLUMNS if c in columns), None)
    tags = next((c for c in task.dataset_columns if c in columns), None)
    if tokens is None or tags is None:
        raise DataError(where, f"no {task.name} schema in the dataset: expected a tokens column and "
                               f"{' or '.join(task.dataset_columns)} (Universal Dependencies: tokens + upos; "
                               f"WikiANN / CoNLL-2003: tokens + ner_tags); found columns: {', '.join(columns)}")
    return tokens, tags


def read_dataset_labelled(task: str, value: str | Path, default_split: str = "train") -> LabelledData:
    """LabelledData from a dataset: words and gold tags per row; `lines` holds the 1-based row number."""
    from hxtool.data.labelled import LabelledData
    from hxtool.tasks import get_task, task_names

    readable = [name for name in task_names() if get_task(name).dataset_columns]
    if task not in readable:
        raise HxError(f"no dataset reader for task {task!r} (known: {', '.join(readable)})")
    task_type = get_task(task)
    ref = parse_ref(value)
    ref = DatasetRef(ref.source, ref.hub, ref.config, ref.split or default_split, ref.column)
    where = str(ref)
    data = _load(ref, default_split)
    token_column, tag_column = _column(task_type, list(data.column_names), where)
    names = _names(data.features[tag_column]) if data.features else None
    words, tags, lines = [], [], []
    for row, example in enumerate(data.select_columns([token_column, tag_column]), 1):
        tokens, labels = example[token_column] or [], example[tag_column] or []
        if len(tokens) != len(labels):
            raise DataError(where, f"{len(tokens)} tokens but {len(labels)} {tag_column}", line=row)
        if names is not None:
            labels = [names[i] for i in labels]
        elif any(not isinstance(label, str) for label in labels):
            raise DataError(where, f"{tag_column} holds class ids but the dataset has no ClassLabel naming "
                                   "them; cast the column to ClassLabel or to strings", line=row)
        tokens, labels = task_type.dataset_row(list(tokens), list(labels), where, row)
        for token in tokens:
            if not isinstance(token, str) or not token.strip():
                raise DataError(where, f"empty or non-text token {token!r} in {token_column}", line=row)
        if tokens:
            words.append(list(tokens))
            tags.append(list(labels))
            lines.append([row] * len(tokens))
    if not words:
        raise DataError(where, "no labelled sentences")
    return LabelledData(Path(where), words, tags, lines)


def _text_column(columns: list[str], features: Any, wanted: str | None, where: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise DataError(where, f"no column {wanted!r} (columns: {', '.join(columns)})")
        return wanted
    if TEXT_COLUMN in columns:
        return TEXT_COLUMN
    strings = [c for c in columns if features is not None and getattr(features[c], "dtype", None) == "string"]
    if len(strings) == 1:
        return strings[0]
    raise DataError(where, f"cannot tell which column holds the text (columns: {', '.join(columns)}); "
                           "name it with the column option")


def iter_dataset_texts(value: str | Path) -> Iterator[str]:
    """Every row's text, in order, without holding the dataset in memory: Arrow batches from a folder,
    datasets' streaming from the hub. Splits default to train."""
    ref = parse_ref(value)
    data = _load(ref, "train", streaming=ref.hub)
    where = str(ref)
    columns = list(data.column_names or [])
    column = _text_column(columns, data.features, ref.column, where) if columns else (ref.column or TEXT_COLUMN)
    if ref.hub:
        rows: Iterator[Any] = (example[column] for example in data)
    else:
        rows = (text for batch in data.select_columns([column]).iter(batch_size=_ROWS_PER_BATCH)
                for text in batch[column])
    for row, text in enumerate(rows, 1):
        if text is None:
            continue
        if not isinstance(text, str):
            raise DataError(where, f"column {column!r} holds {type(text).__name__}, not text", line=row)
        yield text


def dataset_fingerprint(value: str | Path) -> tuple[str, int]:
    """sha256 over the rows' text (each row's UTF-8 and a newline, so a dataset whose rows are a file's
    lines hashes like that file) and the count of non-blank lines; content only, so it is stable across
    copies of the folder."""
    digest = hashlib.sha256()
    lines = 0
    for text in iter_dataset_texts(value):
        digest.update(text.encode("utf-8") + b"\n")
        lines += sum(1 for line in text.splitlines() if line.replace("\ufeff", "").strip())
    if lines == 0:
        raise DataError(str(value), "empty corpus: no non-blank line")
    return digest.hexdigest(), lines
