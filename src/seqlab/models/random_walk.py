"""``RandomWalk``: the baseline every price forecast must beat, and its seasonal form, the seasonal naive model.

    x_t = x_{t-m} + eps_t,   eps_t ~ N(0, sigma^2)      (m = ``season``; 1: the random walk)

On a differenced series (``differenced=True``: the data are the increments, e.g. log returns) the random walk
reads ``y_t ~ N(0, sigma^2)``: tomorrow's best guess is today's price. ``sigma`` is fitted by maximum
likelihood on the training increments (zero mean, as the model says). On levels (``differenced=False``) the
first ``m`` values have no predecessor and no distribution: their ``log_prob`` (and the first ``step``s' mean)
is NaN. With ``season=m > 1`` (levels only) the best guess is the value one season ago: the M-competitions'
seasonal naive benchmark (Naive2 without its deseasonalising), whose in-sample error scales MASE and MSIS.
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

    def __init__(self, differenced: bool = True, season: int = 1) -> None:
        if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
            raise SeqlabError(f"RandomWalk season must be a positive integer (1: no season), got {season!r}")
        if differenced and season > 1:
            raise SeqlabError("a seasonal random walk (season > 1) is a model of levels: pass differenced=False")
        self.differenced = differenced
        self.season = int(season)
        self.sigma: float | None = None

    def _increments(self, y: np.ndarray) -> np.ndarray:
        return y if self.differenced else y[self.season :] - y[: -self.season]

    def _check_fitted(self) -> None:
        if self.sigma is None:
            raise SeqlabError("RandomWalk is not fitted yet: call fit(series) first")

    def fit(self, train, valid=None) -> RandomWalk:
        steps = self._increments(as_series(train, model="RandomWalk", source="training series"))
        if len(steps) < 1:
            raise SeqlabError(f"RandomWalk needs at least {self.season + 1} values to fit")
        self.sigma = float(np.sqrt(np.mean(steps**2))) or 1e-12
        return self

    def _mean(self, history: tuple) -> float:
        if self.differenced:
            return 0.0
        return float(history[-self.season]) if len(history) >= self.season else math.nan

    def log_prob(self, x) -> torch.Tensor:
        """``log N(y_t; mean, sigma^2)``; without differencing the first ``m`` values have no predecessor: NaN."""
        self._check_fitted()
        y = as_series(x, model="RandomWalk")
        m = self.season
        mean = np.zeros_like(y) if self.differenced else np.concatenate([np.full(min(m, len(y)), np.nan), y[:-m]])
        return torch.from_numpy(-0.5 * math.log(2 * math.pi * self.sigma**2) - 0.5 * ((y - mean) / self.sigma) ** 2)

    def initial_state(self) -> tuple:
        return ()

    def step(self, x_prev, state: tuple):
        """state: the last ``m`` values (levels) or nothing (increments); params: the Gaussian's (mean, log sigma)."""
        self._check_fitted()
        state = state if x_prev is None else (*state, float(x_prev))[-self.season :]
        return torch.tensor([self._mean(state), math.log(self.sigma)], dtype=torch.float64), state

    def batch_state(self, state: tuple, num_paths: int) -> np.ndarray:
        """``state`` (``step``'s) copied for ``num_paths`` paths that ``batch_step`` moves together: (S, <= m)."""
        return np.tile(np.asarray(state, dtype=np.float64), (num_paths, 1))

    def batch_step(self, x_prev: torch.Tensor | None, state: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """``step`` for S paths at once (the pool's sample paths): ``x_prev`` (S,) in, ``(mean, log sigma)`` (S, 2)
        out, as ``step`` gives them path by path."""
        self._check_fitted()
        if x_prev is not None:
            state = np.concatenate([state, np.asarray(x_prev, dtype=np.float64)[:, None]], axis=1)[:, -self.season :]
        if self.differenced:
            mean = np.zeros(len(state))
        else:
            mean = state[:, -self.season] if state.shape[1] >= self.season else np.full(len(state), math.nan)
        return torch.from_numpy(np.stack([mean, np.full(len(state), math.log(self.sigma))], axis=-1)), state

    @torch.no_grad()
    def sample_paths(self, context, horizon, num_samples, temperature=1.0, seed=None) -> torch.Tensor:
        """All paths at once: cumulative sums of Gaussian increments from the last value (or iid increments);
        with a season, each step of the season from its own value one season before."""
        self._check_fitted()
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        y = as_series(context, model="RandomWalk", source="context")
        noise = self.sigma * temperature * torch.randn(num_samples, horizon, generator=generator)
        if self.differenced:
            return noise.double()
        m = self.season
        if len(y) < m:
            raise SeqlabError(f"a random walk on levels needs at least {m} context values to forecast from")
        if m == 1:
            return float(y[-1]) + noise.double().cumsum(dim=1)
        paths = noise.double()
        for h in range(horizon):  # x_{n+h} = x_{n+h-m} + eps: the last season's value, then the path's own
            paths[:, h] += paths[:, h - m] if h >= m else float(y[len(y) - m + h])
        return paths

    def closed_form_forecast(self, context: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact ``(mean, sd)``: h steps ahead the value ``ceil(h / m)`` seasons back plus that many increments
        (increments: mean 0, sd sigma)."""
        self._check_fitted()
        steps = np.arange(1, horizon + 1)
        if self.differenced:
            return np.zeros(horizon), np.full(horizon, self.sigma)
        y = as_series(context, model="RandomWalk", source="context")
        m = self.season
        if len(y) < m:
            raise SeqlabError(f"a random walk on levels needs at least {m} context values to forecast from")
        mean = y[len(y) - m + (steps - 1) % m].astype(np.float64)
        return mean, self.sigma * np.sqrt(np.ceil(steps / m))

    # -- persistence ------------------------------------------------------------------------------------------
    def to_config(self) -> dict:
        return {"config": {"differenced": self.differenced, "season": self.season}}

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
            ConformanceCase("seasonal naive, season 4", "series", lambda y: cls(differenced=False, season=4)),
        ]

    def describe(self) -> str:
        sigma = "not fitted" if self.sigma is None else f"sigma={self.sigma:.6g}"
        season = f", seasonal naive, season {self.season}" if self.season > 1 else ""
        return f"RandomWalk({sigma}{', on increments' if self.differenced else ', on levels'}{season})"
