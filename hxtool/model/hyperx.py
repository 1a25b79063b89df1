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
from hxtool.data.batches import IGNORE, MlmBatch, TagBatch
from hxtool.errors import CheckpointError
from hxtool.model.backbone import Backbone, layernorm_parameters
from hxtool.model.hooks import AdaptedEncoder
from hxtool.model.heads import MlmHead, TaggingHead
from hxtool.model.hypernet import AdapterWeights, HyperNetwork
from hxtool.model.lora import LanguageLoRA, LoraContext, attach_lora
from hxtool.registry import Registry

ENCODER_PREFIX = "encoder."
UNSEEN_LABEL_BIAS = -4.0  # about 2% of the probability mass of a seen label with a zero logit
LANGUAGE_TABLE = "hypernet.embeddings.language.weight"  # in learned_state_dict: one row per language


def own_head_key(task: str, lang: str) -> str:
    return f"{task}@{lang}"


def is_language_owned(name: str) -> bool:
    """Whether a learned_state_dict key belongs to languages (their table, own heads, own low-rank updates)."""
    return (name == LANGUAGE_TABLE or name.startswith("lora.")
            or (name.startswith("heads.") and "@" in name.split(".")[1]))


class HyperX(AdaptedEncoder):
    """The adapted encoder (`encode`, `word_states` from AdaptedEncoder) plus hypernetwork and heads."""

    def __init__(self, backbone: Backbone, config: HyperConfig, registry: Registry) -> None:
        super().__init__(backbone)
        self.config = config
        self.registry = registry
        hidden = backbone.hidden_size
        self.hypernet = HyperNetwork(len(registry.tasks), len(registry.languages), backbone.num_layers,
                                     hidden, config)
        self.heads = nn.ModuleDict({
            task.name: TaggingHead(hidden, len(task.labels), config.head_dropout)
            for task in registry.tasks if not task.is_mlm
        })
        eps = next((m.eps for m in self.encoder.modules() if isinstance(m, nn.LayerNorm)), 1e-12)
        self.mlm_head = MlmHead(hidden, backbone.input_embeddings.weight.shape[0], eps)
        if backbone.mlm_head_state is not None:
            self.mlm_head.load_base_head(backbone.mlm_head_state)
        self.encoder_norms = layernorm_parameters(self.encoder)
        # Per-language low-rank updates of the encoder (few-shot `--tune lang+head+lora`); hooks are
        # attached with the first one, so a checkpoint without any runs the encoder as it was.
        self.lora = nn.ModuleDict()
        self.lora_context = LoraContext()
        self._lora_hooks: list = []
        for lang in registry.languages:
            self._build_owned(lang)

    @property
    def device(self) -> torch.device:
        return self.mlm_head.bias.device

    # --- adapters -------------------------------------------------------------------------
    def adapters(self, task: str, lang: str | int) -> AdapterWeights:
        """All layers' adapters for one (task, language), from one pass through the hypernetwork."""
        lang_index = lang if isinstance(lang, int) else self.registry.lang_index(lang)
        return self.hypernet(self.registry.task_index(task), lang_index)

    # --- forward passes (encode and word_states come from AdaptedEncoder) --------------------
    def language_updates(self, lang: str | None):
        """Context in which the encoder runs with `lang`'s own low-rank updates (none: unchanged)."""
        return self.lora_context.use(self.lora[lang] if lang is not None and lang in self.lora else None)

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

    def mute_labels(self, task: str, labels: list[str]) -> None:
        """Start the shared head's rows of labels the pretraining data never shows (a closed set's tags
        such as UPOS PRON) unlikely: zero weight and a low bias, so the head need not first learn to
        push them down, while few-shot data that holds them can still raise them through the weights."""
        head = self.heads[task].linear
        rows = [self.registry.task(task).labels.index(label) for label in labels]
        with torch.no_grad():
            head.weight[rows] = 0.0
            head.bias[rows] = UNSEEN_LABEL_BIAS

    def extend_labels(self, task: str, lang: str, new: list[str]) -> None:
        """Give the language's own head for `task` output rows for labels the task lacks (copied from the
        shared head on first use, so no other language's head changes). The new rows start at zero
        weight and the lowest existing bias: unlikely until training on the language's data moves them."""
        head = self.own_head(task, lang).linear
        known = head.out_features
        grown = nn.Linear(head.in_features, known + len(new)).to(head.weight.device, head.weight.dtype)
        with torch.no_grad():
            grown.weight.zero_()
            grown.weight[:known] = head.weight
            grown.bias[:known] = head.bias
            grown.bias[known:] = head.bias.min()
        self.own_head(task, lang).linear = grown
        extra = self.registry.language(lang).extra_labels
        extra[task] = extra.get(task, []) + list(new)

    def drop_own_heads(self, lang: str) -> None:
        """Forget what few-shot gave the language (own heads, low-rank encoder updates)."""
        for task in self.registry.language(lang).own_heads:
            del self.heads[own_head_key(task, lang)]
        self.registry.language(lang).own_heads = []
        self.registry.language(lang).extra_labels = {}  # they lived in the own heads
        self.drop_lora(lang)

    def drop_lora(self, lang: str) -> None:
        """Forget the language's own low-rank encoder updates (its row and heads stay)."""
        if lang in self.lora:
            del self.lora[lang]
        self.registry.language(lang).lora = None

    def _add_lora(self, lang: str, spec: dict) -> LanguageLoRA:
        if not self._lora_hooks:
            self._lora_hooks = attach_lora(self.encoder, self.backbone.model_type, self.lora_context)
        lora = LanguageLoRA.from_spec(self.encoder, self.backbone.model_type, spec)
        self.lora[lang] = lora.to(self.device)
        return lora

    def own_lora(self, lang: str, spec: dict) -> LanguageLoRA:
        """The language's low-rank encoder updates of shape `spec` (LoraOptions.spec()), made (as no change)
        on first use."""
        if lang not in self.lora:
            self._add_lora(lang, spec)
            self.registry.language(lang).lora = self.lora[lang].spec()
        return self.lora[lang]

    def snapshot(self) -> dict:
        """A copy (never a view) of every learned tensor and of the registry, for `restore`."""
        return {"state": {k: v.detach().clone() for k, v in self.learned_state_dict().items()},
                "registry": copy.deepcopy(self.registry)}

    def restore(self, snapshot: dict) -> None:
        """Return to a `snapshot` of this model: tensors, own heads, low-rank updates and registry."""
        registry = copy.deepcopy(snapshot["registry"])
        for lang in self.registry.languages:
            if self.registry.has_language(lang.code):
                self.drop_own_heads(lang.code)
        self.registry.tasks, self.registry.languages = registry.tasks, registry.languages
        for lang in self.registry.languages:
            self._build_owned(lang)  # shapes only: the tensors are loaded just below
        self.load_learned_state(snapshot["state"], source="snapshot")

    def _build_owned(self, lang) -> None:
        """Untrained modules of the shapes a language's registry entry records: its own heads (sized
        for its own labels) and its low-rank updates. Loading the checkpoint's tensors fills them."""
        for task in lang.own_heads:
            self.heads[own_head_key(task, lang.code)] = TaggingHead(
                self.backbone.hidden_size, len(self.registry.labels(task, lang.code)),
                self.config.head_dropout).to(self.device)
        if lang.lora:
            self._add_lora(lang.code, lang.lora)

    def tag_logits(self, task: str, batch: TagBatch, adapters: AdapterWeights | None,
                   pooling: str = "first", lang: str | None = None) -> torch.Tensor:
        with self.language_updates(lang):
            states = self.word_states(batch, adapters, pooling)
        return self.head(task, lang)(states)

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
        state.update({f"lora.{k}": v for k, v in self.lora.state_dict().items()})
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
        """The language's embedding row, its own heads and its low-rank encoder updates, keyed without the code.
        (Their shapes come from the registry entry: own labels, LoRA rank and targets.)"""
        index = self.registry.lang_index(code)
        state = {"embedding": self.hypernet.embeddings.language.weight[index]}
        for task in self.registry.language(code).own_heads:
            for name, tensor in self.heads[own_head_key(task, code)].state_dict().items():
                state[f"heads.{task}.{name}"] = tensor
        if code in self.lora:
            state.update({f"lora.{k}": v for k, v in self.lora[code].state_dict().items()})
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
        unexpected = sorted(k for k in state if k != "embedding" and not k.startswith(("heads.", "lora.")))
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
            labels = self.registry.labels(task, code)  # the shared labels plus the language's own extra ones
            head = TaggingHead(shared.linear.in_features, len(labels), self.config.head_dropout)
            try:  # strict: refuses missing, unexpected and mis-shaped tensors
                head.load_state_dict(tensors)
            except RuntimeError as exc:
                raise CheckpointError(f"{source}: head {task} does not fit this checkpoint ({exc})") from None
            heads[task] = head.to(self.device).train(self.training)
        spec = self.registry.language(code).lora
        lora_state = {k[len("lora."):]: v for k, v in state.items() if k.startswith("lora.")}
        lora = None
        if spec or lora_state:
            if not spec:
                raise CheckpointError(f"{source}: low-rank updates for {code!r} but no rank or targets recorded")
            lora = LanguageLoRA.from_spec(self.encoder, self.backbone.model_type, spec)
            try:
                lora.load_state_dict(lora_state)
            except RuntimeError as exc:
                raise CheckpointError(f"{source}: low-rank updates do not fit this checkpoint ({exc})") from None
        for key in [k for k in self.heads if k.endswith(f"@{code}")]:
            del self.heads[key]
        for task, head in heads.items():
            self.heads[own_head_key(task, code)] = head
        self.registry.language(code).own_heads = sorted(heads)
        if code in self.lora:
            del self.lora[code]
        if lora is not None:
            self._add_lora(code, spec)
            self.lora[code].load_state_dict(lora.state_dict())
        with self.hypernet.embeddings.language_row(index, row.to(self.device)):
            pass  # written back into the table (appended when new)
