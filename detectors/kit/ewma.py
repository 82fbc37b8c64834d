"""Exponentially weighted baselines of a per-window count (DoS per bucket, exfiltration per
hour): mean and variance updated with weight `alpha` for the newest value, empty windows
folded in as zeros (bounded: after enough of them the baseline is ~0 anyway)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Ewma:
    mean: float = 0.0
    var: float = 0.0
    n: int = 0                      # values folded in

    def update(self, x: float, alpha: float) -> None:
        self.n += 1
        diff = x - self.mean
        self.mean += alpha * diff
        self.var = (1 - alpha) * (self.var + alpha * diff * diff)

    def decay(self, empty: int, alpha: float, max_steps: int) -> None:
        """Fold in `empty` windows without traffic (at most `max_steps` of them), in closed
        form: k zeros scale the mean by q = (1 - alpha)^k and give var_k = q (var + mean^2
        (1 - q)), what k calls of update(0) give (a loop of them was 40 % of the re-keyed
        detection stage: a target seen again after a quiet spell folds hundreds of buckets)."""
        steps = min(empty, max_steps)
        if steps <= 0:
            return
        q = (1 - alpha) ** steps
        self.var = q * (self.var + self.mean * self.mean * (1 - q))
        self.mean *= q
        self.n += steps

    def threshold(self, deviations: float) -> float:
        """Mean plus `deviations` standard deviations: above it is unusual."""
        return self.mean + deviations * self.var ** 0.5


@dataclass
class SeededEwma(Ewma):
    """An EWMA whose first value becomes the mean (no ramp up from 0), and which ignores
    quiet windows before that first value (they say nothing about the target)."""

    def update(self, x: float, alpha: float) -> None:
        if self.n == 0:
            self.n, self.mean = 1, x
            return
        super().update(x, alpha)

    def decay(self, empty: int, alpha: float, max_steps: int) -> None:
        if self.n:
            super().decay(empty, alpha, max_steps)
