"""The model: a frozen HF encoder (backbone), adapter hooks, the hypernetwork, heads and HyperX."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn


def count_parameters(params: Iterable[nn.Parameter]) -> int:
    """Numbers in a group of parameters: the one counter that commands, baselines and reports use."""
    return sum(p.numel() for p in params)
