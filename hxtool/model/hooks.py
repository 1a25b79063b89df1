"""Adapters into a frozen HF encoder through forward hooks, and the context that says which ones.

No model code is copied: a hook on the module that produces each layer's feed-forward output
(before its residual + LayerNorm) adds that layer's bottleneck adapter(s), read from an
`AdapterContext` set for the current forward pass (AdapterHub's habit). `AdaptedEncoder` is the one
`encode` / `word_states` that HyperX and the baselines share.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from hxtool.data.batches import TagBatch, pool_words
from hxtool.model.backbone import Backbone, ffn_output_modules
from hxtool.model.hypernet import AdapterWeights

Stack = AdapterWeights | list[AdapterWeights] | None
LayerWeights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # down, down_bias, up, up_bias


class AdapterContext:
    """Which adapters the hooks apply during the current forward pass: none (the bare encoder), one
    set, or a stack applied in order (a MAD-X-style language adapter, then a task adapter)."""

    def __init__(self) -> None:
        self.weights: Stack = None
        # Per layer, the stack's (down, down_bias, up, up_bias) views, sliced once per forward pass
        # rather than in every hook call.
        self.layers: list[list[LayerWeights]] | None = None

    @contextlib.contextmanager
    def use(self, weights: Stack) -> Iterator[None]:
        previous = self.weights, self.layers
        self.weights, self.layers = weights, _per_layer(weights)
        try:
            yield
        finally:
            self.weights, self.layers = previous


def _per_layer(weights: Stack) -> list[list[LayerWeights]] | None:
    if weights is None:
        return None
    stack = weights if isinstance(weights, list) else [weights]
    return [[(a.down[layer], a.down_bias[layer], a.up[layer], a.up_bias[layer]) for a in stack]
            for layer in range(stack[0].down.shape[0])]


def apply_adapter(output: torch.Tensor, down: torch.Tensor, down_bias: torch.Tensor, up: torch.Tensor,
                  up_bias: torch.Tensor) -> torch.Tensor:
    """x + relu(x @ down + down_bias) @ up + up_bias for one layer, in four kernels: the bias adds are
    fused into the matmuls (addmm), the ReLU runs in place on a fresh tensor (addmm's backward needs
    its inputs, not its output), and the residual x rides in the second addmm."""
    flat = output.reshape(-1, output.shape[-1])
    hidden = torch.addmm(down_bias, flat, down).relu_()
    return torch.addmm(flat, hidden, up).add_(up_bias).view(output.shape)


def attach_adapters(encoder: nn.Module, model_type: str, context: AdapterContext) -> list:
    """Register one forward hook per layer; each adds that layer's adapter(s) from the context."""

    def make_hook(layer: int):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            if context.layers is None:
                return None
            for weights in context.layers[layer]:
                output = apply_adapter(output, *weights)
            return output

        return hook

    modules = ffn_output_modules(encoder, model_type)
    return [module.register_forward_hook(make_hook(i)) for i, module in enumerate(modules)]


class AdaptedEncoder(nn.Module):
    """A backbone's encoder with hxtool's adapter hooks: `encode` runs it under a given adapter stack.

    HyperX builds on it (its adapters come from the hypernetwork); the baselines use it directly:
    with no adapters the hooks do nothing, so it serves full fine-tuning (encoder weights unfrozen) and
    MAD-X (encoder frozen, [language adapter, task adapter] per layer) alike.
    """

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.encoder = backbone.encoder
        self.context = AdapterContext()
        self._hooks = attach_adapters(self.encoder, backbone.model_type, self.context)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, adapters: Stack = None) -> torch.Tensor:
        with self.context.use(adapters):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def word_states(self, batch: TagBatch, adapters: Stack = None, pooling: str = "first") -> torch.Tensor:
        """[B, W, hidden]: one vector per word, its first piece's state or the mean over its pieces."""
        return pool_words(self.encode(batch.input_ids, batch.attention_mask, adapters), batch, pooling)

