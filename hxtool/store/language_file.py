"""Share one language as a single safetensors file: what it owns, plus its provenance.

The file holds `HyperX.language_state` (embedding row, own heads, …) and, in the safetensors
metadata, a JSON header: the language's registry entry and a fingerprint of the weights every
language shares. It goes only into a checkpoint with the same fingerprint, i.e. another copy of
the same pretraining: there the language tags exactly as it did where it was exported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from hxtool import __version__
from hxtool.errors import CheckpointError, HxError
from hxtool.model.hyperx import HyperX
from hxtool.registry import LanguageInfo
from hxtool.store.checkpoint import CheckpointMeta, file_sha256
from hxtool.store.session import save_model

FORMAT = "hxtool-language"
FORMAT_VERSION = 1
HEADER_KEY = "hxtool-language"  # safetensors metadata key holding the JSON header


def shared_fingerprint(model: HyperX) -> str:
    """sha256 of the base model's fingerprint, the task label lists and every shared learned tensor."""
    digest = hashlib.sha256()
    digest.update(model.backbone.fingerprint.encode())
    digest.update(json.dumps([[t.name, t.labels] for t in model.registry.tasks]).encode())
    for name, tensor in sorted(model.shared_state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()


@dataclass
class ImportReport:
    code: str
    index: int
    replaced: bool
    output: Path
    provenance: dict[str, Any]
    meta: CheckpointMeta | None = None  # what was saved: pass it on to a next command in the same process


def export_language(model: HyperX, code: str, path: str | Path, checkpoint: str | Path | None = None) -> Path:
    """Write `code`'s own tensors and provenance to one file (atomically: a temp file renamed into place)."""
    path = Path(path)
    if path.is_dir():
        raise HxError(f"--output {path} is a folder; give a file name such as {code}.safetensors")
    if checkpoint is not None and Path(checkpoint).resolve() in path.resolve().parents:
        raise HxError(f"--output {path} is inside the checkpoint folder; write the file elsewhere")
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "hxtool": __version__, "code": code,
        "language": dataclasses.asdict(model.registry.language(code)),
        "base_model": model.backbone.name, "base_fingerprint": model.backbone.fingerprint,
        "shared_fingerprint": shared_fingerprint(model),
    }
    tensors = {k: v.contiguous() for k, v in model.language_state(code).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": "pt", HEADER_KEY: json.dumps(header, ensure_ascii=False)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_language_file(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The header and tensors of a language file; one clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise HxError(f"language file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        header = json.loads(metadata[HEADER_KEY])
    except Exception:  # safetensors, KeyError and JSON errors: the file is not one of ours
        raise CheckpointError(f"{path} is not a language file written by `hxtool export-language`") from None
    if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: language file format {header.get('format_version')!r}; this hxtool "
                              f"({__version__}) reads version {FORMAT_VERSION}")
    return header, tensors


def import_language(model: HyperX, meta: CheckpointMeta, path: str | Path, output: str | Path,
                    overwrite: bool = False) -> ImportReport:
    """Add the language in `path` to `model` and save the result to `output`.

    Refused (nothing changes) when the file was exported from another base model or another
    pretraining, or when the code is already there and `overwrite` is False.
    """
    path = Path(path)
    header, tensors = read_language_file(path)
    code = header["code"]
    if header["base_fingerprint"] != model.backbone.fingerprint:
        raise CheckpointError(
            f"{path} was exported from a checkpoint on base model {header['base_model']!r} "
            f"({header['base_fingerprint'][:23]}); this checkpoint's base is {model.backbone.name!r} "
            f"({model.backbone.fingerprint[:23]})")
    if header["shared_fingerprint"] != shared_fingerprint(model):
        raise CheckpointError(
            f"{path} comes from another pretraining: its shared weights ({header['shared_fingerprint'][:19]}) "
            f"differ from this checkpoint's ({shared_fingerprint(model)[:19]}); a language moves only between "
            "copies of the same pretrained checkpoint")
    registry = model.registry
    replaced = registry.has_language(code)
    if replaced and not overwrite:
        raise HxError(f"language {code!r} is already in the checkpoint; pass --overwrite to replace it")
    original = header["language"]
    known = {f.name for f in dataclasses.fields(LanguageInfo)}
    provenance = {"file": str(path.resolve()), "sha256": file_sha256(path), "provenance": original}
    entry = LanguageInfo(**{**{k: v for k, v in original.items() if k in known},
                            "source": "import", "imported": provenance})
    index = registry.lang_index(code) if replaced else len(registry.languages)
    previous = registry.languages[index] if replaced else None
    if replaced:
        registry.languages[index] = entry
    else:
        registry.languages.append(entry)
    try:
        model.load_language_state(code, tensors, source=str(path))
    except BaseException:
        if previous is not None:
            registry.languages[index] = previous
        else:
            registry.languages.pop()
        raise
    event = {"command": "import-language", "lang": code, "file": str(path), "sha256": provenance["sha256"],
             "overwrite": replaced}
    saved = save_model(model, meta, Path(output), event)
    return ImportReport(code, index, replaced, Path(output), provenance, saved)
