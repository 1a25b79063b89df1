"""Configuration dataclasses and TOML recipe loading.

A recipe names the base model, the hypernetwork size, the training schedule and the data: labelled
files per (task, language) and raw-text corpora per language for MLM.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hxtool.data.datadir import data_dir
from hxtool.errors import HxError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

MLM_TASK = "mlm"
# Tagging tasks are the task types registered in hxtool.tasks (pos and ner built in).

# The paper's two sizes: `base` projects the 192-dim source to 192, `small` to 32 (bottleneck 256 both).
SIZES: dict[str, dict[str, int]] = {
    "base": {"projected_dim": 192, "bottleneck": 256},
    "small": {"projected_dim": 32, "bottleneck": 256},
}


@dataclass
class HyperConfig:
    """Shape and initialisation of the hypernetwork and what of the base model trains."""

    task_dim: int = 64
    lang_dim: int = 64
    layer_dim: int = 64
    projected_dim: int = 192
    bottleneck: int = 256
    # "identity": zero up-projection generator, so adapters start as the identity (frozen outputs
    # unchanged at step 0); "paper": every generator weight drawn small and random, as in Hyper-X.
    init: str = "identity"
    train_layernorms: bool = True
    head_dropout: float = 0.1

    @property
    def source_dim(self) -> int:
        return self.task_dim + self.lang_dim + self.layer_dim

    def validate(self) -> None:
        for name in ("task_dim", "lang_dim", "layer_dim", "projected_dim", "bottleneck"):
            if getattr(self, name) <= 0:
                raise HxError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.init not in ("identity", "paper"):
            raise HxError(f"model.init must be 'identity' or 'paper', got {self.init!r}")


@dataclass
class TrainConfig:
    """Optimisation schedule shared by every command that trains."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-4
    # Heads read frozen-encoder features that are small and highly correlated: at the hypernetwork's
    # rate they learn far too slowly, while a higher rate on the generator wrecks every adapter (each
    # generator weight feeds every generated one). So heads get their own rate.
    head_lr: float = 5e-3
    # pretrain-mlm only: the task, language and layer embeddings (None: `lr`). They start as N(0, 1) rows,
    # which Adam at the hypernetwork's rate moves by at most lr per step: in a short pretraining the
    # language rows stay where they were drawn, so the row space carries nothing add-language could find.
    embedding_lr: float | None = None
    warmup: float = 0.1  # fraction of steps with linear warm-up
    decay: bool = True  # linear decay to zero after warm-up; few-shot uses a constant rate
    max_length: int = 256
    temperature: float = 5.0
    eval_every: int = 0  # 0: evaluate only at the end
    seed: int = 1
    mlm_probability: float = 0.15
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    pooling: str = "first"

    def validate(self) -> None:
        if self.steps <= 0:
            raise HxError(f"train.steps must be positive, got {self.steps}")
        if self.batch_size <= 0:
            raise HxError(f"train.batch_size must be positive, got {self.batch_size}")
        if self.lr <= 0 or self.head_lr <= 0:
            raise HxError(f"train.lr and train.head_lr must be positive, got {self.lr} and {self.head_lr}")
        if self.embedding_lr is not None and self.embedding_lr <= 0:
            raise HxError(f"train.embedding_lr must be positive, got {self.embedding_lr}")
        if not 0 <= self.warmup < 1:
            raise HxError(f"train.warmup is a fraction of steps in [0, 1), got {self.warmup}")
        if self.max_length < 8:
            raise HxError(f"train.max_length must be at least 8, got {self.max_length}")
        if self.temperature <= 0:
            raise HxError(f"train.temperature must be positive, got {self.temperature}")
        if self.pooling not in ("first", "mean"):
            raise HxError(f"train.pooling must be 'first' or 'mean', got {self.pooling!r}")

    def signature(self) -> dict[str, Any]:
        """The schedule as a resume signature: an unset `embedding_lr` is left out, so state saved before
        that field existed still resumes."""
        record = dataclasses.asdict(self)
        if record["embedding_lr"] is None:
            del record["embedding_lr"]
        return record


@dataclass
class LabelledSource:
    task: str
    lang: str
    train: Path
    dev: Path | None = None
    format: str = "auto"
    weight: float = 1.0  # multiplies this pair's temperature-sampling probability (then renormalised)


@dataclass
class MlmSource:
    lang: str
    corpus: Path
    weight: float = 1.0


@dataclass
class Recipe:
    base_model: str
    model: HyperConfig
    train: TrainConfig
    data: list[LabelledSource] = field(default_factory=list)
    mlm: list[MlmSource] = field(default_factory=list)
    path: Path | None = None

    @property
    def languages(self) -> list[str]:
        """Languages in first-seen order: labelled data first, then MLM-only ones."""
        seen: dict[str, None] = {}
        for src in self.data:
            seen.setdefault(src.lang, None)
        for src in self.mlm:
            seen.setdefault(src.lang, None)
        return list(seen)


def _typed(section: str, key: str, value: Any, expected: type) -> Any:
    """Check one recipe value's type, naming the key when it is wrong."""
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool) or not isinstance(value, expected):
        raise HxError(
            f"recipe key {section}{key} must be {expected.__name__}, got {type(value).__name__} ({value!r})"
        )
    return value


def _fill(cls: type, section: str, values: dict[str, Any], base: Any) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    types = {"int": int, "float": float, "bool": bool, "str": str}
    updates = {}
    for key, value in values.items():
        if key not in known:
            raise HxError(f"unknown recipe key {section}{key} (known: {', '.join(sorted(known))})")
        expected = types[str(known[key].type).removesuffix(" | None")]  # optional keys: given means set
        updates[key] = _typed(section, key, value, expected)
    return dataclasses.replace(base, **updates)


def data_dir_from(explicit: Path | None, recipe_value: str | None, recipe_dir: Path) -> Path:
    """Where relative data paths point: --data-dir, then $HXTOOL_DATA, then the recipe's own data_dir."""
    found = data_dir(explicit)
    if found is not None:
        return found
    if recipe_value is not None:
        return (recipe_dir / recipe_value).resolve()
    return recipe_dir


def _resolve_file(root: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str):
        raise HxError(f"recipe key {key} must be a path string, got {value!r}")
    path = Path(value) if Path(value).is_absolute() else root / value
    if not path.is_file():
        raise HxError(f"recipe key {key}: file not found: {path}")
    return path


def _optional(section: str, key: str, entry: dict[str, Any]) -> str | None:
    return _typed(section, key, entry[key], str) if key in entry else None


def _resolve_input(root: Path, value: Any, key: str, split: str | None = None, column: str | None = None,
                   default_split: str = "train") -> Path:
    """A labelled file or corpus, or a Hugging Face dataset (a save_to_disk folder or hf:NAME[:CONFIG]) with
    its split/column folded into the reference string that the data readers understand."""
    from hxtool.data.hf_datasets import HUB_PREFIX, dataset_ref, is_dataset

    if not isinstance(value, str):
        raise HxError(f"recipe key {key} must be a path string, got {value!r}")
    if value.startswith(HUB_PREFIX):
        return Path(dataset_ref(value, split or default_split, column))
    path = Path(value) if Path(value).is_absolute() else root / value
    if is_dataset(path):
        return Path(dataset_ref(path, split or default_split, column))
    if split is not None or column is not None:
        raise HxError(f"recipe key {key}: split and column apply to a dataset folder (save_to_disk) or hf:NAME, "
                      f"and {path} is not one")
    return _resolve_file(root, value, key)


def _weight(where: str, entry: dict) -> float:
    """A pair's sampling weight (default 1): a positive number."""
    weight = entry.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        raise HxError(f"recipe key {where}weight must be a positive number, got {weight!r}")
    return float(weight)


def load_recipe(path: str | Path, data_dir: Path | None = None) -> Recipe:
    """Read and validate a TOML recipe; relative data paths resolve against the data folder."""
    path = Path(path)
    if not path.is_file():
        raise HxError(f"recipe not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HxError(f"{path}: not a valid TOML recipe: {exc}") from None

    top_keys = {"base_model", "size", "data_dir", "model", "train", "data", "mlm"}
    for key in raw:
        if key not in top_keys:
            raise HxError(f"unknown recipe key {key} (known: {', '.join(sorted(top_keys))})")
    base_model = _typed("", "base_model", raw.get("base_model", "pypi:multilingual-e5-small"), str)
    size = _typed("", "size", raw.get("size", "base"), str)
    if size not in SIZES:
        raise HxError(f"recipe key size must be one of {', '.join(SIZES)}, got {size!r}")
    model = _fill(HyperConfig, "model.", _typed("", "model", raw.get("model", {}), dict),
                  HyperConfig(**SIZES[size]))
    train = _fill(TrainConfig, "train.", _typed("", "train", raw.get("train", {}), dict), TrainConfig())
    root = data_dir_from(data_dir, raw.get("data_dir"), path.parent.resolve())

    labelled = []
    for i, entry in enumerate(_typed("", "data", raw.get("data", []), list)):
        where = f"data[{i}]."
        entry = _typed("", f"data[{i}]", entry, dict)
        known = {"task", "lang", "train", "dev", "format", "split", "dev_split", "weight"}
        for key in entry:
            if key not in known:
                raise HxError(f"unknown recipe key {where}{key} (known: {', '.join(sorted(known))})")
        for key in ("task", "lang", "train"):
            if key not in entry:
                raise HxError(f"recipe entry {where[:-1]} lacks the key {key}")
        task = _typed(where, "task", entry["task"], str)
        from hxtool.tasks import task_names

        if task not in task_names():
            raise HxError(f"recipe key {where}task must be one of {', '.join(task_names())}, got {task!r}")
        labelled.append(
            LabelledSource(
                task=task,
                lang=_typed(where, "lang", entry["lang"], str),
                # Dataset splits: `split` for train (default train), `dev_split` for dev (default validation).
                train=_resolve_input(root, entry["train"], where + "train", _optional(where, "split", entry)),
                dev=_resolve_input(root, entry["dev"], where + "dev", _optional(where, "dev_split", entry),
                                   default_split="validation") if "dev" in entry else None,
                format=_typed(where, "format", entry.get("format", "auto"), str),
                weight=_weight(where, entry),
            )
        )
    mlm = []
    for i, entry in enumerate(_typed("", "mlm", raw.get("mlm", []), list)):
        where = f"mlm[{i}]."
        entry = _typed("", f"mlm[{i}]", entry, dict)
        for key in entry:
            if key not in {"lang", "corpus", "column", "split", "weight"}:
                raise HxError(f"unknown recipe key {where}{key} (known: column, corpus, lang, split, weight)")
        for key in ("lang", "corpus"):
            if key not in entry:
                raise HxError(f"recipe entry {where[:-1]} lacks the key {key}")
        split, column = _optional(where, "split", entry), _optional(where, "column", entry)
        mlm.append(MlmSource(lang=_typed(where, "lang", entry["lang"], str),
                             corpus=_resolve_input(root, entry["corpus"], where + "corpus", split, column),
                             weight=_weight(where, entry)))
    if not labelled and not mlm:
        raise HxError(f"{path}: the recipe names no data ([[data]] or [[mlm]] entries)")
    model.validate()
    train.validate()
    return Recipe(base_model=base_model, model=model, train=train, data=labelled, mlm=mlm, path=path)
