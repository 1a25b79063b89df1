"""Which (task, language) pair a step trains on: temperature sampling (p_i proportional to
n_i ** (1 / T)) or plain turns.

Each draw is a pure function of (seed, step), so a resumed run draws exactly what an
uninterrupted one would, and every process with the same seed agrees without sharing state.
"""

from __future__ import annotations

import numpy as np


def temperature_probabilities(sizes: list[int], temperature: float,
                              weights: list[float] | None = None) -> np.ndarray:
    """p_i proportional to w_i * n_i ** (1 / T); the recipe's per-pair weights w_i default to 1."""
    scores = np.asarray(sizes, dtype=np.float64) ** (1.0 / temperature)
    if weights is not None:
        scores = scores * np.asarray(weights, dtype=np.float64)
    return scores / scores.sum()


class TemperatureSampler:
    """HyperFormer's sampler: one pair per step, so every batch (and every rank's shard) is homogeneous."""

    def __init__(self, pairs: list[tuple[str, str]], sizes: list[int], temperature: float, seed: int,
                 weights: list[float] | None = None) -> None:
        if len(pairs) != len(sizes) or not pairs or (weights is not None and len(weights) != len(pairs)):
            raise ValueError("need one size (and weight, if any) per pair, and at least one pair")
        self.pairs = pairs
        self.probabilities = temperature_probabilities(sizes, temperature, weights)
        self.seed = seed

    def sample(self, step: int) -> tuple[str, str]:
        rng = np.random.default_rng([self.seed, step])
        return self.pairs[int(rng.choice(len(self.pairs), p=self.probabilities))]


class RoundRobin:
    """Pairs in turn, each getting the same number of steps (the baselines' MAD-X-style schedule)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        if not pairs:
            raise ValueError("need at least one pair")
        self.pairs = list(pairs)

    def sample(self, step: int) -> tuple[str, str]:
        return self.pairs[step % len(self.pairs)]
