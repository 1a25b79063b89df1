"""MAD-X-style baseline (Pfeiffer et al., 2020) with static bottleneck adapters on the frozen encoder.

- One language adapter per language, trained by MLM on that language's raw text. The base
  (multilingual-e5-small) has no MLM head, so one is trained jointly with the source languages'
  adapters (as hxtool's pretrain-mlm trains its own), then frozen while a target's adapter learns.
- One task adapter and a linear head, trained on the source languages' labelled data with each
  batch's own language adapter below it: [language adapter, task adapter] in every layer, through
  the same hooks that apply Hyper-X's generated adapters.
- At test time the target's language adapter is swapped in under the unchanged task adapter; with
  n labelled target sentences, the task adapter and head are then tuned on them.

Not reproduced: MAD-X's invertible adapters on the embeddings (they would need hooks hxtool lacks).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from hxtool.baselines import (AdaptedEncoder, TrainResult, encoder_max_length, predict_words, tagging_loss,
                              tagging_stream, train_in_turns)
from hxtool.config import TrainConfig
from hxtool.data.batches import IGNORE, MlmBatch, TagBatch
from hxtool.data.corpus import corpus_info
from hxtool.data.labelled import LabelledData
from hxtool.data.sources import MlmStream
from hxtool.model.backbone import Backbone
from hxtool.model.heads import MlmHead, TaggingHead
from hxtool.model.hypernet import AdapterWeights
from hxtool.model.static import StaticAdapters

# MAD-X's sizes: language adapters with reduction factor 2, task adapters with 16.
LANG_REDUCTION = 2
TASK_REDUCTION = 16


class MadX(nn.Module):
    def __init__(self, backbone: Backbone, labels: list[str], lang_bottleneck: int | None = None,
                 task_bottleneck: int | None = None, head_dropout: float = 0.1) -> None:
        super().__init__()
        hidden = backbone.hidden_size
        self.backbone = backbone
        self.adapted = AdaptedEncoder(backbone)
        self.labels = list(labels)
        self.lang_bottleneck = lang_bottleneck or max(hidden // LANG_REDUCTION, 1)
        self.task_bottleneck = task_bottleneck or max(hidden // TASK_REDUCTION, 1)
        self.lang_adapters = nn.ModuleDict()
        self.task_adapter = StaticAdapters(backbone.num_layers, hidden, self.task_bottleneck)
        self.head = TaggingHead(hidden, len(labels), head_dropout)
        eps = next((m.eps for m in backbone.encoder.modules() if isinstance(m, nn.LayerNorm)), 1e-12)
        self.mlm_head = MlmHead(hidden, backbone.input_embeddings.weight.shape[0], eps)
        if backbone.mlm_head_state is not None:
            self.mlm_head.load_base_head(backbone.mlm_head_state)

    @property
    def device(self) -> torch.device:
        return self.head.linear.weight.device

    def add_language(self, code: str) -> StaticAdapters:
        """A fresh language adapter for `code` (replacing any it had)."""
        adapter = StaticAdapters(self.backbone.num_layers, self.backbone.hidden_size, self.lang_bottleneck)
        self.lang_adapters[code] = adapter.to(self.device)
        return adapter

    def stack(self, lang: str) -> list[AdapterWeights]:
        """Per layer: the language's adapter first, then the task adapter (MAD-X's stacking order)."""
        return [self.lang_adapters[lang](), self.task_adapter()]

    def tag_logits(self, batch: TagBatch, lang: str, pooling: str = "first") -> torch.Tensor:
        return self.head(self.adapted.word_states(batch, self.stack(lang), pooling))

    def mlm_loss(self, batch: MlmBatch, lang: str) -> torch.Tensor:
        """Language adapter alone (no task adapter), MLM head at masked positions only, as HyperX.mlm_loss."""
        states = self.adapted.encode(batch.input_ids, batch.attention_mask, self.lang_adapters[lang]())
        masked = batch.labels != IGNORE
        logits = self.mlm_head(states[masked], self.backbone.input_embeddings.weight)
        return F.cross_entropy(logits, batch.labels[masked])

    def predict(self, sentences: list[list[str]], lang: str, pooling: str = "first",
                batch_size: int = 32) -> list[list[str]]:
        self.eval()
        with torch.inference_mode():
            stack = [a.detach() for a in self.stack(lang)]  # once for the whole input
        return predict_words(lambda batch: self.head(self.adapted.word_states(batch, stack, pooling)),
                             self.backbone.tokenizer, sentences, self.labels, encoder_max_length(self.backbone),
                             batch_size, self.device)

    def task_state(self) -> dict[str, torch.Tensor]:
        """Task adapter and head: what few-shot tuning changes, to restore before the next run."""
        return {k: v.detach().clone() for k, v in
                {**{f"task_adapter.{k}": v for k, v in self.task_adapter.state_dict().items()},
                 **{f"head.{k}": v for k, v in self.head.state_dict().items()}}.items()}

    def load_task_state(self, state: dict[str, torch.Tensor]) -> None:
        self.task_adapter.load_state_dict({k[len("task_adapter."):]: v for k, v in state.items()
                                           if k.startswith("task_adapter.")})
        self.head.load_state_dict({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})


def _freeze_all(model: MadX) -> None:
    for param in model.parameters():
        param.requires_grad_(False)


def _trainable(params: list[nn.Parameter]) -> list[nn.Parameter]:
    for param in params:
        param.requires_grad_(True)
    return params


def train_language_adapters(model: MadX, corpora: dict[str, Path], config: TrainConfig,
                            train_mlm_head: bool) -> TrainResult:
    """MLM on each language's raw text, `config.steps` steps per language, languages in turn.

    With `train_mlm_head` (the source languages) the MLM head learns with the adapters; for a target
    language it stays frozen, so the only thing that can adapt to the new text is its own adapter,
    as with hxtool's add-language and its one embedding row.
    """
    _freeze_all(model)
    tokenizer = model.backbone.tokenizer
    adapters = {lang: model.add_language(lang) for lang in corpora}
    streams = [MlmStream(lang, Path(path), corpus_info(path).lines, tokenizer, config.batch_size, config.max_length,
                         config.mlm_probability, config.seed) for lang, path in corpora.items()]
    groups = [(_trainable([p for a in adapters.values() for p in a.parameters()]), config.lr)]
    if train_mlm_head:
        groups.append((_trainable(list(model.mlm_head.parameters())), config.head_lr))
    result = train_in_turns(model, lambda pair, batch: model.mlm_loss(batch, pair[1]), streams, groups,
                            dataclasses.replace(config, steps=config.steps * len(corpora)),
                            "madx language adapters")
    _freeze_all(model)
    return result


def _train_task(model: MadX, data: dict[str, LabelledData], config: TrainConfig, decay: bool) -> TrainResult:
    """Task adapter + head on labelled batches, each under its own language's (frozen) adapter."""
    _freeze_all(model)
    tokenizer = model.backbone.tokenizer
    streams = [tagging_stream(tokenizer, "pos", lang, d, model.labels, config.batch_size, config.max_length,
                              config.seed) for lang, d in data.items()]

    def loss(pair: tuple[str, str], batch: TagBatch) -> torch.Tensor:
        return tagging_loss(model.tag_logits(batch, pair[1], config.pooling), batch.labels)

    groups = [(_trainable(list(model.task_adapter.parameters())), config.lr),
              (_trainable(list(model.head.parameters())), config.head_lr)]
    result = train_in_turns(model, loss, streams, groups, dataclasses.replace(config, decay=decay),
                            "madx task adapter")
    _freeze_all(model)
    return result


def train_task_adapter(model: MadX, sources: dict[str, LabelledData], config: TrainConfig) -> TrainResult:
    """The task adapter on the source languages, each stacked on its own language adapter."""
    missing = [lang for lang in sources if lang not in model.lang_adapters]
    if missing:
        raise ValueError(f"no language adapter for {', '.join(missing)}: train_language_adapters first")
    return _train_task(model, sources, config, decay=config.decay)


def tune_on_shots(model: MadX, lang: str, shots: LabelledData, config: TrainConfig) -> TrainResult:
    """Tune the task adapter and head on the target's n sentences (its language adapter stays fixed)."""
    return _train_task(model, {lang: shots}, config, decay=False)


def added_per_language(model: MadX, lang: str, tuned: bool) -> dict[str, torch.Tensor]:
    """What a new language needs stored: its adapter; after tuning, its own task adapter and head too."""
    state = {f"lang_adapter.{k}": v.detach() for k, v in model.lang_adapters[lang].state_dict().items()}
    if tuned:
        state.update(model.task_state())
    return state

