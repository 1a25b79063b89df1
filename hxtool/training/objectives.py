"""HyperX's per-step loss for the shared loop: generate the pair's adapters once, then MLM or tagging."""

from __future__ import annotations

from typing import Any, Callable

import torch

from hxtool.config import MLM_TASK
from hxtool.data.batches import MlmBatch, TagBatch
from hxtool.model.hyperx import HyperX


def hyperx_loss(model: HyperX, pooling: str = "first",
                lang_override: dict[str, int] | None = None) -> Callable[[tuple[str, str], Any], torch.Tensor]:
    """`lang_override` maps a language code to a hypernetwork row the registry does not know yet
    (a language being added)."""
    overrides = lang_override or {}

    def loss(pair: tuple[str, str], batch: MlmBatch | TagBatch) -> torch.Tensor:
        task, lang = pair
        lang_index = overrides[lang] if lang in overrides else model.registry.lang_index(lang)
        adapters = model.hypernet(model.registry.task_index(task), lang_index)  # once per batch
        if task == MLM_TASK:
            assert isinstance(batch, MlmBatch)
            return model.mlm_loss(batch, adapters)
        assert isinstance(batch, TagBatch)
        return model.tagging_loss(task, batch, adapters, pooling, lang)

    return loss
