"""Build a HyperX model from a checkpoint folder (checking its base model) and save it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hxtool.store.checkpoint import CheckpointMeta, read_checkpoint, save_checkpoint
from hxtool.errors import CheckpointError
from hxtool.model.backbone import load_backbone
from hxtool.model.hyperx import HyperX


def load_model(folder: str | Path, device: str = "cpu") -> tuple[HyperX, CheckpointMeta]:
    folder = Path(folder)
    meta, registry, tensors = read_checkpoint(folder)
    backbone = load_backbone(meta.base_model, device)
    if backbone.fingerprint != meta.base_fingerprint:
        raise CheckpointError(
            f"checkpoint {folder} was built on base model {meta.base_model!r} ({meta.base_fingerprint}), "
            f"but that name now loads a different model ({backbone.fingerprint})"
        )
    model = HyperX(backbone, meta.model, registry)
    model.load_learned_state(tensors, source=f"checkpoint {folder}")
    model.to(device)
    model.eval()
    return model, meta


def save_model(model: HyperX, meta: CheckpointMeta, folder: str | Path, event: dict[str, Any],
               **launch: Any) -> CheckpointMeta:
    """Save and return the meta written (`launch`: world_size, precision); `meta` itself is not changed."""
    return save_checkpoint(Path(folder), meta, model.registry, model.learned_state_dict(), event, **launch)


def new_meta(model: HyperX) -> CheckpointMeta:
    return CheckpointMeta(model=model.config, base_model=model.backbone.name,
                          base_fingerprint=model.backbone.fingerprint)


def trained_pooling(meta: CheckpointMeta) -> str:
    """The word pooling the checkpoint was pretrained with: tagging and few-shot should use the same."""
    for event in meta.history:
        if event.get("command") == "pretrain-mlm":
            return event.get("train", {}).get("pooling", "first")
    return "first"
