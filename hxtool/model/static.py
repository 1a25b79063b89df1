"""Static (directly learned) bottleneck adapters: the MAD-X-style baseline of the same size.

The same adapter as the generated ones, ``x + relu(x @ down + down_bias) @ up + up_bias`` in every
layer, only its tensors are parameters instead of coming out of the hypernetwork. `forward()` returns
`AdapterWeights`, so they go through the same hooks:

    adapters = StaticAdapters(backbone.num_layers, backbone.hidden_size, bottleneck=256)
    states = model.encode(ids, mask, adapters())

The up-projection and both biases start at zero, so a fresh set is the identity (the frozen encoder's
outputs are unchanged at step 0), as generated adapters are with the default "identity" init.
"""

from __future__ import annotations

import torch
from torch import nn

from hxtool.model.hypernet import AdapterWeights

# AdapterHub's default ("bert") initialisation draws adapter weights from N(0, 0.02).
DOWN_STD = 0.02


class StaticAdapters(nn.Module):
    """Per-layer bottleneck adapters: down [L, H, B], down_bias [L, B], up [L, B, H], up_bias [L, H]."""

    def __init__(self, n_layers: int, hidden: int, bottleneck: int, down_std: float = DOWN_STD,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if min(n_layers, hidden, bottleneck) <= 0:
            raise ValueError(f"n_layers, hidden and bottleneck must be positive, got {n_layers}, {hidden}, {bottleneck}")
        self.n_layers = n_layers
        self.hidden = hidden
        self.bottleneck = bottleneck
        self.down_std = down_std
        factory = {"device": device, "dtype": dtype}
        self.down = nn.Parameter(torch.empty(n_layers, hidden, bottleneck, **factory))
        self.down_bias = nn.Parameter(torch.empty(n_layers, bottleneck, **factory))
        self.up = nn.Parameter(torch.empty(n_layers, bottleneck, hidden, **factory))
        self.up_bias = nn.Parameter(torch.empty(n_layers, hidden, **factory))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.down, std=self.down_std)
        nn.init.zeros_(self.down_bias)
        nn.init.zeros_(self.up)  # zero up-projection and bias: the identity at step 0
        nn.init.zeros_(self.up_bias)

    def forward(self) -> AdapterWeights:
        return AdapterWeights(self.down, self.down_bias, self.up, self.up_bias)

    def num_parameters(self) -> int:
        from hxtool.model import count_parameters

        return count_parameters(self.parameters())

    def extra_repr(self) -> str:
        return f"n_layers={self.n_layers}, hidden={self.hidden}, bottleneck={self.bottleneck}"
