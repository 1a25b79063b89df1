"""HyperX: the frozen encoder, the hypernetwork that writes its adapters, and the task heads.

The hypernetwork lives outside the HF `PreTrainedModel`, so transformers' initialisation and
`from_pretrained` never touch it; only the tensors listed by `learned_state_dict` are saved.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from hxtool.config import HyperConfig
from hxtool.data.batches import IGNORE, MlmBatch, TagBatch, pool_words
from hxtool.errors import CheckpointError
from hxtool.model.backbone import AdapterContext, Backbone, attach_adapters, layernorm_parameters
from hxtool.model.heads import MlmHead, TaggingHead
from hxtool.model.hypernet import AdapterWeights, HyperNetwork
from hxtool.registry import Registry

ENCODER_PREFIX = "encoder."
LANGUAGE_TABLE = "hypernet.embeddings.language.weight"  # in learned_state_dict: one row per language


def own_head_key(task: str, lang: str) -> str:
    return f"{task}@{lang}"


def is_language_owned(name: str) -> bool:
    """Whether a learned_state_dict key belongs to languages (their table, their own heads), not to all."""
    return name == LANGUAGE_TABLE or (name.startswith("heads.") and "@" in name.split(".")[1])


class HyperX(nn.Module):
    def __init__(self, backbone: Backbone, config: HyperConfig, registry: Registry) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config
        self.registry = registry
        self.encoder = backbone.encoder
        self.context = AdapterContext()
        self._hooks = attach_adapters(self.encoder, backbone.model_type, self.context)
        hidden = backbone.hidden_size
        self.hypernet = HyperNetwork(len(registry.tasks), len(registry.languages), backbone.num_layers,
                                     hidden, config)
        self.heads = nn.ModuleDict({
            task.name: TaggingHead(hidden, len(task.labels), config.head_dropout)
            for task in registry.tasks if not task.is_mlm
        })
        for lang in registry.languages:
            for task in lang.own_heads:
                self.heads[own_head_key(task, lang.code)] = TaggingHead(
                    hidden, len(registry.task(task).labels), config.head_dropout)
        eps = next((m.eps for m in self.encoder.modules() if isinstance(m, nn.LayerNorm)), 1e-12)
        self.mlm_head = MlmHead(hidden, backbone.input_embeddings.weight.shape[0], eps)
        if backbone.mlm_head_state is not None:
            self.mlm_head.load_base_head(backbone.mlm_head_state)
        self.encoder_norms = layernorm_parameters(self.encoder)

    @property
    def device(self) -> torch.device:
        return self.mlm_head.bias.device

    # --- adapters -------------------------------------------------------------------------
    def adapters(self, task: str, lang: str | int) -> AdapterWeights:
        """All layers' adapters for one (task, language), from one pass through the hypernetwork."""
        lang_index = lang if isinstance(lang, int) else self.registry.lang_index(lang)
        return self.hypernet(self.registry.task_index(task), lang_index)

    # --- forward passes -------------------------------------------------------------------
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               adapters: AdapterWeights | list[AdapterWeights] | None) -> torch.Tensor:
        with self.context.use(adapters):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def word_states(self, batch: TagBatch, adapters: AdapterWeights | None, pooling: str = "first") -> torch.Tensor:
        return pool_words(self.encode(batch.input_ids, batch.attention_mask, adapters), batch, pooling)

    def head(self, task: str, lang: str | None = None) -> TaggingHead:
        """The language's own copy of the task head when few-shot made one, else the shared head."""
        if lang is not None and own_head_key(task, lang) in self.heads:
            return self.heads[own_head_key(task, lang)]
        return self.heads[task]

    def own_head(self, task: str, lang: str) -> TaggingHead:
        """The language's own head for `task`, copied from the shared head on first use."""
        key = own_head_key(task, lang)
        if key not in self.heads:
            self.heads[key] = copy.deepcopy(self.heads[task])
            self.registry.language(lang).own_heads.append(task)
        return self.heads[key]

    def drop_own_heads(self, lang: str) -> None:
        for task in self.registry.language(lang).own_heads:
            del self.heads[own_head_key(task, lang)]
        self.registry.language(lang).own_heads = []

    def tag_logits(self, task: str, batch: TagBatch, adapters: AdapterWeights | None,
                   pooling: str = "first", lang: str | None = None) -> torch.Tensor:
        return self.head(task, lang)(self.word_states(batch, adapters, pooling))

    def tagging_loss(self, task: str, batch: TagBatch, adapters: AdapterWeights, pooling: str = "first",
                     lang: str | None = None) -> torch.Tensor:
        logits = self.tag_logits(task, batch, adapters, pooling, lang)
        return F.cross_entropy(logits.flatten(0, 1), batch.labels.flatten(), ignore_index=IGNORE)

    def mlm_loss(self, batch: MlmBatch, adapters: AdapterWeights) -> torch.Tensor:
        states = self.encode(batch.input_ids, batch.attention_mask, adapters)
        masked = batch.labels != IGNORE
        logits = self.mlm_head(states[masked], self.backbone.input_embeddings.weight)
        return F.cross_entropy(logits, batch.labels[masked])

    # --- what trains and what is saved ------------------------------------------------------
    def set_trainable(self, what: str, lang: str | None = None) -> list[nn.Parameter]:
        """Freeze everything, then unfreeze one group and return its parameters.

        "all": hypernetwork, heads, MLM head and (if configured) the base model's LayerNorms;
        "heads": the tagging heads; "lang": the row of `lang` (trained as a free parameter).
        """
        for param in self.parameters():
            param.requires_grad_(False)
        params: list[nn.Parameter] = []
        if what in ("all", "heads"):
            groups = [self.heads] if what == "heads" else [self.hypernet, self.heads, self.mlm_head]
            for group in groups:
                params.extend(group.parameters())
            if what == "all" and self.config.train_layernorms:
                params.extend(self.encoder_norms.values())
        elif what == "lang":
            params.append(self.hypernet.embeddings.row)
        else:
            raise ValueError(what)
        for param in params:
            param.requires_grad_(True)
        return params

    def learned_state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"hypernet.{k}": v for k, v in self.hypernet.state_dict().items()}
        state.update({f"heads.{k}": v for k, v in self.heads.state_dict().items()})
        state.update({f"mlm_head.{k}": v for k, v in self.mlm_head.state_dict().items()})
        if self.config.train_layernorms:
            state.update({ENCODER_PREFIX + k: v.data for k, v in self.encoder_norms.items()})
        return {k: v.detach() for k, v in state.items()}

    def load_learned_state(self, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
        """Load exactly the expected tensors; refuse missing, unexpected, mis-shaped or mis-typed ones."""
        expected = self.learned_state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing tensors {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
            if unexpected:
                parts.append(f"unexpected tensors {', '.join(unexpected[:5])}{' …' if len(unexpected) > 5 else ''}")
            raise CheckpointError(f"{source}: {'; '.join(parts)}")
        for name, tensor in state.items():
            want = expected[name]
            if tensor.shape != want.shape or tensor.dtype != want.dtype:
                raise CheckpointError(
                    f"{source}: tensor {name} is {tuple(tensor.shape)} {tensor.dtype}, "
                    f"expected {tuple(want.shape)} {want.dtype}"
                )
        with torch.no_grad():
            for name, tensor in state.items():
                expected[name].copy_(tensor)

    # --- what one language owns (export-language / import-language) ------------------------
    # The one place that says what belongs to a language alone: extend these methods together.
    def language_state(self, code: str) -> dict[str, torch.Tensor]:
        """The language's embedding row and its own heads, keyed without the code."""
        index = self.registry.lang_index(code)
        state = {"embedding": self.hypernet.embeddings.language.weight[index]}
        for task in self.registry.language(code).own_heads:
            for name, tensor in self.heads[own_head_key(task, code)].state_dict().items():
                state[f"heads.{task}.{name}"] = tensor
        return {k: v.detach().to("cpu").clone() for k, v in state.items()}

    def shared_state_dict(self) -> dict[str, torch.Tensor]:
        """Learned tensors that every language uses: what a language file must have been trained against."""
        return {k: v for k, v in self.learned_state_dict().items() if not is_language_owned(k)}

    def load_language_state(self, code: str, state: dict[str, torch.Tensor], source: str = "language file") -> None:
        """Install `language_state` output for `code`, a registry language whose row may be one past the table.

        Everything is checked before anything changes; the language's previous own heads are replaced.
        """
        index = self.registry.lang_index(code)
        row = state.get("embedding")
        table = self.hypernet.embeddings.language.weight
        if row is None or tuple(row.shape) != (table.shape[1],) or row.dtype != table.dtype:
            got = "none" if row is None else f"{tuple(row.shape)} {row.dtype}"
            raise CheckpointError(f"{source}: embedding row is {got}, expected ({table.shape[1]},) {table.dtype}")
        if index > table.shape[0]:
            raise CheckpointError(f"{source}: language {code!r} has row {index}, but the table has {table.shape[0]}")
        unexpected = sorted(k for k in state if k != "embedding" and not k.startswith("heads."))
        if unexpected:
            raise CheckpointError(f"{source}: unexpected tensors {', '.join(unexpected[:5])}")
        heads: dict[str, TaggingHead] = {}
        for task in sorted({k.split(".")[1] for k in state if k.startswith("heads.")}):
            prefix = f"heads.{task}."
            if task not in self.heads or "@" in task:
                raise CheckpointError(f"{source}: a head for {task!r}, a tagging task this checkpoint does not have")
            shared = self.heads[task]
            tensors = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if any(v.dtype != shared.linear.weight.dtype for v in tensors.values()):
                raise CheckpointError(f"{source}: head {task} is not {shared.linear.weight.dtype}")
            head = TaggingHead(shared.linear.in_features, shared.linear.out_features, self.config.head_dropout)
            try:  # strict: refuses missing, unexpected and mis-shaped tensors
                head.load_state_dict(tensors)
            except RuntimeError as exc:
                raise CheckpointError(f"{source}: head {task} does not fit this checkpoint ({exc})") from None
            heads[task] = head.to(self.device).train(self.training)
        for key in [k for k in self.heads if k.endswith(f"@{code}")]:
            del self.heads[key]
        for task, head in heads.items():
            self.heads[own_head_key(task, code)] = head
        self.registry.language(code).own_heads = sorted(heads)
        self.hypernet.embeddings.train_language_row(index, row.to(self.device))
        self.hypernet.embeddings.commit_language_row()
