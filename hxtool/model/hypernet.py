"""The hypernetwork: (task, language, layer) embeddings -> source projector -> adapter generator.

All layers' adapters for one (task, language) come out of one batched matmul: the layer embeddings
form a [layers, dim] batch that goes through the projector and generator together.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from hxtool.config import HyperConfig


@dataclass
class AdapterWeights:
    """Bottleneck adapters for every layer: x + relu(x @ down + down_bias) @ up + up_bias."""

    down: torch.Tensor  # [layers, hidden, bottleneck]
    down_bias: torch.Tensor  # [layers, bottleneck]
    up: torch.Tensor  # [layers, bottleneck, hidden]
    up_bias: torch.Tensor  # [layers, hidden]

    def detach(self) -> "AdapterWeights":
        return AdapterWeights(self.down.detach(), self.down_bias.detach(), self.up.detach(), self.up_bias.detach())


class SourceEmbeddings(nn.Module):
    """Task, language and layer embeddings.

    A language row can be swapped for a free-standing parameter (`language_row`) so that
    add-language and few-shot train exactly one row and every other row stays bit-identical.
    """

    def __init__(self, n_tasks: int, n_langs: int, n_layers: int, config: HyperConfig) -> None:
        super().__init__()
        self.task = nn.Embedding(n_tasks, config.task_dim)
        self.language = nn.Embedding(n_langs, config.lang_dim)
        self.layer = nn.Embedding(n_layers, config.layer_dim)
        self._row_index: int | None = None
        self.row: nn.Parameter | None = None

    def language_vector(self, index: int) -> torch.Tensor:
        if self.row is not None and index == self._row_index:
            return self.row
        return self.language.weight[index]

    @contextlib.contextmanager
    def language_row(self, index: int, init: torch.Tensor) -> Iterator[nn.Parameter]:
        """Train language `index` (possibly one past the table, for a new language) as a free row.

        Inside, the hypernetwork reads that language from the yielded parameter. On success the row is
        written back into the table (appended when new); on an exception the routing is undone and the
        table is left exactly as it was.
        """
        if self.row is not None:
            raise RuntimeError("a language row is already being trained")
        self._row_index = index
        self.row = nn.Parameter(init.detach().clone())
        try:
            yield self.row
        except BaseException:
            self._release_row()
            raise
        self._commit_row()

    def _release_row(self) -> None:
        del self.row  # a registered parameter: unregister it, then restore the plain attribute
        self.row = None
        self._row_index = None

    def _commit_row(self) -> None:
        """Write the trained row back into the table (appending it when it is new)."""
        assert self.row is not None and self._row_index is not None
        weight = self.language.weight.data
        if self._row_index == weight.shape[0]:
            grown = nn.Embedding(weight.shape[0] + 1, weight.shape[1], device=weight.device, dtype=weight.dtype)
            grown.weight.data[:-1] = weight
            grown.weight.requires_grad_(self.language.weight.requires_grad)
            self.language = grown
        self.language.weight.data[self._row_index] = self.row.data
        self._release_row()

    def add_task(self) -> None:
        """Append one task row (a labelled task first seen after pretraining)."""
        weight = self.task.weight.data
        grown = nn.Embedding(weight.shape[0] + 1, weight.shape[1], device=weight.device, dtype=weight.dtype)
        grown.weight.data[:-1] = weight
        self.task = grown


class SourceProjector(nn.Module):
    """Two linear layers with a ReLU between: the concatenated source -> projected source."""

    def __init__(self, source_dim: int, projected_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(source_dim, projected_dim), nn.ReLU(), nn.Linear(projected_dim, projected_dim)
        )

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        return self.net(source)


class AdapterGenerator(nn.Module):
    """One linear map from a projected source to the flat parameters of one layer's adapter."""

    def __init__(self, projected_dim: int, hidden: int, bottleneck: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.bottleneck = bottleneck
        self.sizes = [hidden * bottleneck, bottleneck, bottleneck * hidden, hidden]
        self.linear = nn.Linear(projected_dim, sum(self.sizes))

    @property
    def up_slice(self) -> slice:
        """Rows of the generator that produce the up-projection and its bias."""
        start = self.sizes[0] + self.sizes[1]
        return slice(start, start + self.sizes[2] + self.sizes[3])

    def forward(self, projected: torch.Tensor) -> AdapterWeights:
        layers = projected.shape[0]
        flat = self.linear(projected)
        down, down_bias, up, up_bias = torch.split(flat, self.sizes, dim=-1)
        return AdapterWeights(
            down=down.view(layers, self.hidden, self.bottleneck),
            down_bias=down_bias,
            up=up.view(layers, self.bottleneck, self.hidden),
            up_bias=up_bias,
        )


class HyperNetwork(nn.Module):
    def __init__(self, n_tasks: int, n_langs: int, n_layers: int, hidden: int, config: HyperConfig) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.embeddings = SourceEmbeddings(n_tasks, n_langs, n_layers, config)
        self.projector = SourceProjector(config.source_dim, config.projected_dim)
        self.generator = AdapterGenerator(config.projected_dim, hidden, config.bottleneck)
        self.reset_parameters(config.init)

    @torch.no_grad()
    def reset_parameters(self, init: str) -> None:
        for emb in (self.embeddings.task, self.embeddings.language, self.embeddings.layer):
            nn.init.normal_(emb.weight, std=1.0)
        gen = self.generator.linear
        if init == "paper":
            # Hyper-X builds on HyperFormer: every hypernetwork linear layer N(0, 0.01), zero bias.
            for linear in (self.projector.net[0], self.projector.net[2], gen):
                nn.init.normal_(linear.weight, std=1e-2)
                nn.init.zeros_(linear.bias)
        else:
            nn.init.normal_(gen.weight, std=1e-2)
            nn.init.zeros_(gen.bias)
            # A zero up-projection makes every generated adapter the identity at step 0.
            gen.weight[self.generator.up_slice].zero_()

    def sources(self, task: int, lang: int) -> torch.Tensor:
        """[layers, source_dim]: the (task, language) pair beside each layer's embedding."""
        emb = self.embeddings
        layer = emb.layer.weight
        task_vec = emb.task.weight[task].expand(self.n_layers, -1)
        lang_vec = emb.language_vector(lang).expand(self.n_layers, -1)
        return torch.cat([task_vec, lang_vec, layer], dim=-1)

    def forward(self, task: int, lang: int) -> AdapterWeights:
        return self.generator(self.projector(self.sources(task, lang)))
