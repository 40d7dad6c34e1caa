"""``RandomWalk``: the baseline every price forecast must beat.

    x_t = x_{t-1} + eps_t,   eps_t ~ N(0, sigma^2)

On a differenced series (``differenced=True``: the data are the increments, e.g. log returns) the same model
reads ``y_t ~ N(0, sigma^2)``: tomorrow's best guess is today's price. ``sigma`` is fitted by maximum
likelihood on the training increments (zero mean, as the model says).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from seqlab.base import SequenceModel
from seqlab.distributions import Gaussian
from seqlab.errors import SeqlabError
from seqlab.models.linear_ar import as_series


class RandomWalk(SequenceModel):
    kind = "random_walk"
    head = Gaussian()

    def __init__(self, differenced: bool = True) -> None:
        self.differenced = differenced
        self.sigma: float | None = None

    def _increments(self, y: np.ndarray) -> np.ndarray:
        return y if self.differenced else np.diff(y)

    def fit(self, train, valid=None, **unused) -> RandomWalk:
        steps = self._increments(as_series(train, model="RandomWalk", source="training series"))
        if len(steps) < 1:
            raise SeqlabError("RandomWalk needs at least 2 values to fit")
        self.sigma = float(np.sqrt(np.mean(steps**2))) or 1e-12
        return self

    def _mean(self, history: np.ndarray) -> float:
        return 0.0 if self.differenced or len(history) == 0 else float(history[-1])

    def log_prob(self, x) -> torch.Tensor:
        """``log N(y_t; mean, sigma^2)``; without differencing the first value has no predecessor: NaN there."""
        y = as_series(x, model="RandomWalk")
        mean = np.zeros_like(y) if self.differenced else np.concatenate([[np.nan], y[:-1]])
        return torch.from_numpy(-0.5 * math.log(2 * math.pi * self.sigma**2) - 0.5 * ((y - mean) / self.sigma) ** 2)

    def initial_state(self) -> tuple:
        return ()

    def step(self, x_prev, state: tuple):
        if self.sigma is None:
            raise SeqlabError("RandomWalk is not fitted yet: call fit(series) first")
        state = state if x_prev is None else (float(x_prev),)
        return torch.tensor([self._mean(np.array(state)), math.log(self.sigma)], dtype=torch.float64), state

    def describe(self) -> str:
        return f"RandomWalk(sigma={self.sigma:.6g}{', on increments' if self.differenced else ''})"
