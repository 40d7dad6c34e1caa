"""``RandomWalk``: the baseline every price forecast must beat.

    x_t = x_{t-1} + eps_t,   eps_t ~ N(0, sigma^2)

On a differenced series (``differenced=True``: the data are the increments, e.g. log returns) the same model
reads ``y_t ~ N(0, sigma^2)``: tomorrow's best guess is today's price. ``sigma`` is fitted by maximum
likelihood on the training increments (zero mean, as the model says). On levels (``differenced=False``) the
first value has no predecessor and no distribution: its ``log_prob`` (and the first ``step``'s mean) is NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from seqlab.base import ConformanceCase, SequenceModel
from seqlab.data.arrays import as_series
from seqlab.distributions import Gaussian
from seqlab.errors import SeqlabError


class RandomWalk(SequenceModel):
    kind = "random_walk"
    head = Gaussian()

    def __init__(self, differenced: bool = True) -> None:
        self.differenced = differenced
        self.sigma: float | None = None

    def _increments(self, y: np.ndarray) -> np.ndarray:
        return y if self.differenced else np.diff(y)

    def _check_fitted(self) -> None:
        if self.sigma is None:
            raise SeqlabError("RandomWalk is not fitted yet: call fit(series) first")

    def fit(self, train, valid=None) -> RandomWalk:
        steps = self._increments(as_series(train, model="RandomWalk", source="training series"))
        if len(steps) < 1:
            raise SeqlabError("RandomWalk needs at least 2 values to fit")
        self.sigma = float(np.sqrt(np.mean(steps**2))) or 1e-12
        return self

    def _mean(self, history: tuple) -> float:
        if self.differenced:
            return 0.0
        return float(history[-1]) if history else math.nan

    def log_prob(self, x) -> torch.Tensor:
        """``log N(y_t; mean, sigma^2)``; without differencing the first value has no predecessor: NaN there."""
        self._check_fitted()
        y = as_series(x, model="RandomWalk")
        mean = np.zeros_like(y) if self.differenced else np.concatenate([[np.nan], y[:-1]])
        return torch.from_numpy(-0.5 * math.log(2 * math.pi * self.sigma**2) - 0.5 * ((y - mean) / self.sigma) ** 2)

    def initial_state(self) -> tuple:
        return ()

    def step(self, x_prev, state: tuple):
        """state: the last value (levels) or nothing (increments); params: the Gaussian's (mean, log sigma)."""
        self._check_fitted()
        state = state if x_prev is None else (float(x_prev),)
        return torch.tensor([self._mean(state), math.log(self.sigma)], dtype=torch.float64), state

    @torch.no_grad()
    def sample_paths(self, context, horizon, num_samples, temperature=1.0, seed=None) -> torch.Tensor:
        """All paths at once: cumulative sums of Gaussian increments from the last value (or iid increments)."""
        self._check_fitted()
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        y = as_series(context, model="RandomWalk", source="context")
        noise = self.sigma * temperature * torch.randn(num_samples, horizon, generator=generator)
        if self.differenced:
            return noise.double()
        if len(y) == 0:
            raise SeqlabError("a random walk on levels needs at least one context value to forecast from")
        return float(y[-1]) + noise.double().cumsum(dim=1)

    # -- persistence ------------------------------------------------------------------------------------------
    def to_config(self) -> dict:
        return {"config": {"differenced": self.differenced}}

    @classmethod
    def from_config(cls, config: dict) -> RandomWalk:
        return cls(**config["config"])

    def state_dict(self) -> dict[str, torch.Tensor]:
        self._check_fitted()
        return {"sigma": torch.tensor(self.sigma, dtype=torch.float64)}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        if set(tensors) != {"sigma"} or tensors["sigma"].numel() != 1:
            raise RuntimeError(f"expected one tensor 'sigma', got {sorted(tensors)}")
        self.sigma = float(tensors["sigma"])

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        return [
            ConformanceCase("increments", "series", lambda y: cls(differenced=True)),
            ConformanceCase("levels", "series", lambda y: cls(differenced=False)),
        ]

    def describe(self) -> str:
        sigma = "not fitted" if self.sigma is None else f"sigma={self.sigma:.6g}"
        return f"RandomWalk({sigma}{', on increments' if self.differenced else ', on levels'})"
