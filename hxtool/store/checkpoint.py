"""Self-describing checkpoint folders: config.json, registry.json and model.safetensors.

Only learned tensors are saved; the base model is referenced by name and fingerprint. Writes go
to a temporary sibling folder that is renamed into place, so a killed run never leaves a
half-written checkpoint where a good one was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import load_file, save_file

from hxtool import __version__
from hxtool.store.atomic import atomic_folder, recover_folder
from hxtool.config import HyperConfig
from hxtool.errors import CheckpointError
from hxtool.registry import Registry

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
REGISTRY_FILE = "registry.json"
WEIGHTS_FILE = "model.safetensors"
DEFAULT_CHECKPOINT = "hxtool-model"


def default_checkpoint() -> Path:
    return Path(os.environ.get("HXTOOL_CHECKPOINT", DEFAULT_CHECKPOINT))


@dataclass
class CheckpointMeta:
    model: HyperConfig
    base_model: str
    base_fingerprint: str
    format_version: int = FORMAT_VERSION
    versions: dict[str, str] = field(default_factory=dict)
    command_line: list[str] = field(default_factory=list)
    world_size: int = 1  # processes of the run that wrote it (torchrun --nproc_per_node)
    precision: str = "fp32"  # autocast precision of that run
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per command that wrote it
    files: dict[str, str] = field(default_factory=dict)  # sha256 of the weights file

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["model"] = dataclasses.asdict(self.model)
        return data


def current_versions() -> dict[str, str]:
    import transformers

    return {"hxtool": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def checkpoint_lock(folder: Path, notify=None) -> Iterator[None]:
    """Hold an exclusive lock on a checkpoint for a whole read-modify-write command.

    A second command writing the same checkpoint waits here (after saying so) and then starts from
    what the first one wrote, so two add-language runs end with both languages, never a mix.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder).resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder.parent / f".{folder.name}.lock"))  # fcntl on POSIX, msvcrt on Windows
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if notify is not None:
            notify(f"waiting for another hxtool command that is writing {folder} …")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def save_checkpoint(folder: Path, meta: CheckpointMeta, registry: Registry,
                    tensors: dict[str, torch.Tensor], event: dict[str, Any], *, world_size: int = 1,
                    precision: str = "fp32") -> CheckpointMeta:
    """Write atomically: build the folder beside the target, then swap it in with renames.

    Returns the meta that was written (the caller's plus versions, command line, how the run was
    launched and one more history entry); the caller's `meta` is left as it was.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    meta = dataclasses.replace(
        meta, versions=current_versions(), command_line=list(sys.argv), world_size=world_size, precision=precision,
        history=[*meta.history, {**event, "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}])
    with atomic_folder(folder) as tmp:
        contiguous = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        save_file(contiguous, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "hxtool": __version__})
        meta.files = {WEIGHTS_FILE: file_sha256(tmp / WEIGHTS_FILE)}
        (tmp / CONFIG_FILE).write_text(json.dumps(meta.to_dict(), indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
        (tmp / REGISTRY_FILE).write_text(json.dumps(registry.to_dict(), indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
    return meta


def read_checkpoint(folder: Path) -> tuple[CheckpointMeta, Registry, dict[str, torch.Tensor]]:
    """Read and check a checkpoint's files (format version, weights hash); no model is built here."""
    folder = Path(folder)
    recover_folder(folder, CONFIG_FILE)  # a writer killed between its two renames parked it
    if not folder.is_dir():
        raise CheckpointError(
            f"no checkpoint at {folder} (pass --checkpoint DIR or set HXTOOL_CHECKPOINT; "
            "create one with `hxtool pretrain-mlm RECIPE`)"
        )
    for name in (CONFIG_FILE, REGISTRY_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise CheckpointError(f"checkpoint {folder} is incomplete: {name} is missing")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        registry_data = json.loads((folder / REGISTRY_FILE).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {folder}: unreadable JSON: {exc}") from None
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {folder} has format version {version}; this hxtool ({__version__}) reads version "
            f"{FORMAT_VERSION}"
        )
    try:
        model = HyperConfig(**config.pop("model"))
        meta = CheckpointMeta(model=model, **config)
        registry = Registry.from_dict(registry_data)
    except (TypeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {folder}: malformed config or registry ({exc})") from None
    expected_hash = meta.files.get(WEIGHTS_FILE)
    if not expected_hash:
        raise CheckpointError(f"checkpoint {folder}: {CONFIG_FILE} records no sha256 for {WEIGHTS_FILE}")
    if file_sha256(folder / WEIGHTS_FILE) != expected_hash:
        raise CheckpointError(
            f"checkpoint {folder}: {WEIGHTS_FILE} does not match the sha256 recorded in {CONFIG_FILE} "
            "(the file was changed or damaged)"
        )
    try:
        tensors = load_file(str(folder / WEIGHTS_FILE))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"checkpoint {folder}: cannot read {WEIGHTS_FILE}: {exc}") from None
    return meta, registry, tensors
