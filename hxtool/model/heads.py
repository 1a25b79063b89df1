"""Task heads: a linear token classifier per labelled task, and the MLM head.

The MLM head's decoder is tied to the frozen input embeddings, so it is only a transform, a
LayerNorm and an output bias; it runs on masked positions only, which gives the same loss as
full-sequence logits at a fraction of the cost over a 250k vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class TaggingHead(nn.Module):
    def __init__(self, hidden: int, n_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, n_labels)

    def forward(self, word_states: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(word_states))


class MlmHead(nn.Module):
    def __init__(self, hidden: int, vocab_size: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.transform = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def load_base_head(self, state: dict[str, torch.Tensor]) -> None:
        """Start from the base model's own pretrained head (same layout for BERT, XLM-R, DistilBERT)."""
        with torch.no_grad():
            self.transform.weight.copy_(state["transform.weight"])
            self.transform.bias.copy_(state["transform.bias"])
            self.norm.weight.copy_(state["norm.weight"])
            self.norm.bias.copy_(state["norm.bias"])
            self.bias.copy_(state["bias"])

    def forward(self, states: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits [positions, vocab] for hidden states [positions, hidden] at masked positions."""
        hidden = self.norm(F.gelu(self.transform(states)))
        return F.linear(hidden, embeddings, self.bias)
