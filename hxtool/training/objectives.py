"""HyperX's per-step losses for the shared loop: generate the pair's adapters once, then MLM or tagging;
and add-language's anchored MLM for a language's own encoder updates."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.nn import functional as F

from hxtool.config import MLM_TASK
from hxtool.data.batches import IGNORE, MlmBatch, TagBatch
from hxtool.model.hyperx import HyperX
from hxtool.training.loop import LossParts


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


def anchored_mlm_loss(model: HyperX, lang: str,
                      anchor: float) -> Callable[[tuple[str, str], Any], torch.Tensor | LossParts]:
    """MLM on `lang`'s text through its own low-rank encoder updates, plus `anchor` times the KL divergence
    between the tagging heads' token distributions on the same (unmasked) text without and with the updates.

    Measured (BENCHMARKS.md, issue 10): MLM alone on the encoder lowers the MLM loss and wrecks tagging
    (mt 75.5 -> 38 UPOS): the MLM head hxtool trains is weak, and the encoder learns to suit it. The anchor
    keeps what the taggers read while MLM adapts the rest. One tagging task anchors each step, picked from
    the batch itself, so that a resumed run picks as a straight one did.
    """
    tasks = [task.name for task in model.registry.tasks if not task.is_mlm]
    mlm = hyperx_loss(model)

    def loss(pair: tuple[str, str], batch: Any) -> torch.Tensor | LossParts:
        assert pair == (MLM_TASK, lang)

        def masked_lm() -> torch.Tensor:
            with model.language_updates(lang):
                return mlm(pair, batch)

        if not tasks or not anchor:
            return masked_lm()

        def kept_reading() -> torch.Tensor:
            task = tasks[int(batch.attention_mask.sum()) % len(tasks)]  # the batch's piece count
            text = torch.where(batch.labels != IGNORE, batch.labels, batch.input_ids)  # the masked pieces put back
            adapters = model.hypernet(model.registry.task_index(task), model.registry.lang_index(lang))
            head, tokens = model.head(task), batch.attention_mask.bool()
            with torch.no_grad():
                before = F.log_softmax(head(model.encode(text, batch.attention_mask, adapters))[tokens].float(), -1)
            with model.language_updates(lang):
                after = F.log_softmax(head(model.encode(text, batch.attention_mask, adapters))[tokens].float(), -1)
            return anchor * F.kl_div(after, before, log_target=True, reduction="batchmean")

        # Two passes through the encoder with gradients: as parts, the loop frees the first before the second.
        return LossParts([masked_lm, kept_reading])

    return loss
