"""Per-language low-rank updates of the frozen encoder's own linear layers (LoRA), applied by hooks.

Two more targets, `attn_norm` and `ffn_norm`, give the language its own shift of each layer's LayerNorm
gain and bias (2 x hidden numbers a norm): full fine-tuning moves those too, and they cost little.

Generated adapters only add a bottleneck after each feed-forward block; full fine-tuning wins at 20+
labelled sentences because it changes the encoder itself. A language's `LanguageLoRA` adds
``scale * (x @ A) @ B`` to the output of chosen linear layers (attention projections, feed-forward) in
every layer or in chosen ones (`layers`), for that language only: the hooks read the active set from a
`LoraContext`, so every other language runs the unchanged encoder. `B` starts at zero, so a fresh set changes nothing.

No model code is copied: forward hooks on the encoder's own `nn.Linear` modules, registered before the
adapter hooks (`prepend=True`) so a generated adapter sees the updated feed-forward output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

# Short target names -> the linear module inside one encoder layer, per model type.
LORA_MODULES: dict[str, dict[str, str]] = {
    **{model_type: {"query": "attention.self.query", "key": "attention.self.key",
                    "value": "attention.self.value", "attn_out": "attention.output.dense",
                    "ffn_in": "intermediate.dense", "ffn_out": "output.dense",
                    "attn_norm": "attention.output.LayerNorm", "ffn_norm": "output.LayerNorm"}
       for model_type in ("bert", "roberta", "xlm-roberta", "electra")},
    "distilbert": {"query": "attention.q_lin", "key": "attention.k_lin", "value": "attention.v_lin",
                   "attn_out": "attention.out_lin", "ffn_in": "ffn.lin1", "ffn_out": "ffn.lin2",
                   "attn_norm": "sa_layer_norm", "ffn_norm": "output_layer_norm"},
}
NORM_TARGETS = ("attn_norm", "ffn_norm")
LAYERS_PATH = {"distilbert": "transformer.layer"}  # others: encoder.layer
DEFAULT_TARGETS = ("ffn_in", "ffn_out")
DEFAULT_LAYERS = "lower-half"
DEFAULT_RANK = 8


@dataclass
class LoraOptions:
    """A language's own low-rank encoder updates: fewshot's `--tune lang+head+lora` and add-language's
    `--adapt-encoder` make the same shape, so few-shot goes on tuning what add-language started."""

    rank: int = DEFAULT_RANK
    targets: tuple[str, ...] = DEFAULT_TARGETS
    alpha: float = 16.0
    lr: float = 1e-3
    # Which encoder layers get updates: "lower-half" (layers 0 .. L/2 - 1; 0 is nearest the input), "all", or
    # numbers and ranges such as "0-5" or "0,2,4". Lower layers: full fine-tuning's few-shot gain comes from
    # tuning them (its top half alone loses ~2 UPOS at n = 50), see BENCHMARKS.md.
    layers: str = DEFAULT_LAYERS
    # fewshot only: the updates' rate in the first round when a self-training round follows, i.e. while the
    # model that will label the raw text is tuned on the shots alone (None: `lr`). The second round uses `lr`.
    teacher_lr: float | None = None
    # fewshot only: rates of more first rounds (each from the same start, seeded alike) whose word probabilities
    # are averaged with the first round's to label the raw text; the second round still goes on from the first.
    # One at 3e-4 beside the first round's 1e-3: ug at full fine-tuning's level or above without mt's loss
    # (a teacher at 3e-4 alone cost mt; CPU suite, 3 seeds, BENCHMARKS.md, issue 10). () : the first round alone.
    extra_teacher_lrs: tuple[float, ...] = (3e-4,)

    def record(self) -> dict:
        """As JSON gives it back (targets a list): resume compares saved signatures with this. Unset teacher
        options are left out, so runs from before they existed resume."""
        record = {**dataclasses.asdict(self), "targets": list(self.targets),
                  "extra_teacher_lrs": list(self.extra_teacher_lrs)}
        for key in ("teacher_lr", "extra_teacher_lrs"):
            if record[key] in (None, []):
                del record[key]
        return record

    def layer_indices(self, count: int) -> tuple[int, ...] | None:
        """`layers` for an encoder of `count` layers: their indices, or None for every layer."""
        return resolve_layers(self.layers, count)

    def spec(self, count: int) -> dict:
        """The shape the registry records for an encoder of `count` layers (see LanguageLoRA.spec)."""
        return shape_spec(self.rank, self.targets, self.alpha, self.layer_indices(count))


def shape_spec(rank: int, targets, alpha: float, layers) -> dict:
    """What the registry records of a language's updates; "layers" only when not every layer has them, so
    checkpoints from before layers could be chosen read the same."""
    spec = {"rank": rank, "targets": list(targets), "alpha": alpha}
    return spec if layers is None else {**spec, "layers": list(layers)}


def resolve_layers(text: str, count: int) -> tuple[int, ...] | None:
    """`--lora-layers` for an encoder of `count` layers: "all" -> None (every layer), "lower-half" -> 0 .. count/2 - 1
    (layer 0 at least), else numbers and ranges such as "0-5", "0,2,4" or "0-3,10", checked against `count`."""
    from hxtool.errors import HxError

    text = text.strip()
    if text == "all":
        return None
    if text == "lower-half":
        return tuple(range(max(1, count // 2)))
    layers: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise HxError("LoRA layers are all, lower-half, or numbers and ranges such as 0-5, comma-separated; "
                          f"got {text!r}") from None
        if lo < 0 or hi < lo:
            raise HxError(f"LoRA layers: {part.strip()!r} is not a range of layers from 0 up")
        layers.update(range(lo, hi + 1))
    check_layers(tuple(layers), count)
    return tuple(sorted(layers))


def check_targets(targets: list[str] | tuple[str, ...]) -> list[str]:
    known = LORA_MODULES["bert"]
    unknown = [t for t in targets if t not in known]
    if unknown or not targets:
        from hxtool.errors import HxError

        raise HxError(f"LoRA targets must be some of {', '.join(known)}, got {', '.join(targets) or 'none'}")
    return list(targets)


def check_layers(layers: list[int] | tuple[int, ...] | None, count: int) -> None:
    """Refuses layer indices the encoder lacks (None: every layer)."""
    if layers is not None and (not layers or min(layers) < 0 or max(layers) >= count):
        from hxtool.errors import HxError

        raise HxError(f"LoRA layers must be some of 0-{count - 1} (this encoder has {count} layers), "
                      f"got {','.join(map(str, layers)) or 'none'}")


def target_linears(encoder: nn.Module, model_type: str, target: str) -> list[nn.Module]:
    """The `target` module of every layer (a Linear, or a LayerNorm for the norm targets), in layer order."""
    layers = encoder.get_submodule(LAYERS_PATH.get(model_type, "encoder.layer"))
    return [layer.get_submodule(LORA_MODULES[model_type][target]) for layer in layers]


class LowRankUpdate(nn.Module):
    """x -> scale * (x @ A) @ B for one linear layer; B = 0 at the start (no change)."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float) -> None:
        super().__init__()
        self.scale = alpha / rank
        self.A = nn.Parameter(torch.empty(in_features, rank))
        self.B = nn.Parameter(torch.zeros(rank, out_features))
        nn.init.kaiming_uniform_(self.A.T, a=math.sqrt(5))  # as nn.Linear, and as LoRA's reference code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(x, self.A), self.B) * self.scale


class NormShift(nn.Module):
    """A LayerNorm's own gain and bias shifted for one language: adds x_hat * dw + db to its output.
    Both start at zero, so a fresh shift changes nothing."""

    def __init__(self, norm: nn.LayerNorm) -> None:
        super().__init__()
        self.shape, self.eps = tuple(norm.normalized_shape), norm.eps
        self.dw = nn.Parameter(torch.zeros(self.shape))
        self.db = nn.Parameter(torch.zeros(self.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.layer_norm(x, self.shape, None, None, self.eps) * self.dw + self.db


class LanguageLoRA(nn.Module):
    """One language's low-rank updates: `updates["<layer>_<target>"]` (layers without updates run as they are)."""

    def __init__(self, encoder: nn.Module, model_type: str, rank: int, targets: list[str], alpha: float,
                 layers: list[int] | tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.rank, self.targets, self.alpha = rank, list(targets), alpha
        self.layers = None if layers is None else sorted(layers)
        self.updates = nn.ModuleDict()
        for target in self.targets:
            modules = target_linears(encoder, model_type, target)
            check_layers(self.layers, len(modules))
            for layer, module in enumerate(modules):
                if self.layers is None or layer in self.layers:
                    self.updates[f"{layer}_{target}"] = NormShift(module) if target in NORM_TARGETS else \
                        LowRankUpdate(module.in_features, module.out_features, rank, alpha)

    @classmethod
    def from_spec(cls, encoder: nn.Module, model_type: str, spec: dict) -> "LanguageLoRA":
        return cls(encoder, model_type, spec["rank"], spec["targets"], spec["alpha"], spec.get("layers"))

    def spec(self) -> dict:
        """What the registry records, enough to rebuild the shapes before loading the tensors."""
        return shape_spec(self.rank, self.targets, self.alpha, self.layers)


class LoraContext:
    """Which language's updates the hooks apply in the current forward pass (None: the bare encoder)."""

    def __init__(self) -> None:
        self.active: LanguageLoRA | None = None

    @contextlib.contextmanager
    def use(self, lora: LanguageLoRA | None) -> Iterator[None]:
        previous, self.active = self.active, lora
        try:
            yield
        finally:
            self.active = previous


def attach_lora(encoder: nn.Module, model_type: str, context: LoraContext) -> list:
    """One forward hook per (layer, target) module; it adds the active language's update, if it has one."""

    def make_hook(key: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            lora = context.active
            if lora is None or key not in lora.updates:
                return None
            return output + lora.updates[key](inputs[0])

        return hook

    handles = []
    for target in LORA_MODULES[model_type]:
        for layer, linear in enumerate(target_linears(encoder, model_type, target)):
            handles.append(linear.register_forward_hook(make_hook(f"{layer}_{target}"), prepend=True))
    return handles
