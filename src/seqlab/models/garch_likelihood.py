"""The likelihood of a GARCH-family model: a mean, times a volatility process, times a noise law.

    x_t = mu_t + e_t,   e_t = sigma_t z_t,   sigma2_t = process(e_<t, x_<t),   z_t ~ noise
    log L(theta) = sum_t log p_noise(e_t | sigma2_t),   theta = [mean | process | noise]

``Mean`` is the mean's equation (zero, constant or AR(k)), ``Likelihood`` the composition and its per-step
log-likelihood; the processes are in ``volatility``, the noise laws in ``noise``, and ``garch_fit`` maximises
the likelihood as the ``arch`` package does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqlab.models import volatility as vol
from seqlab.models.noise import Noise

MEANS = ("zero", "constant", "ar")


@dataclass(frozen=True)
class Mean:
    """``mu_t = 0 | mu | const + sum_{i=1..k} phi_i x_{t-i}``; with an AR(k) mean the likelihood starts at the
    (k+1)-th value, as arch's."""

    kind: str = "constant"
    lags: int = 0

    @property
    def names(self) -> list[str]:
        if self.kind == "ar":
            return ["const"] + [f"phi[{i}]" for i in range(1, self.lags + 1)]
        return ["mu"] if self.kind == "constant" else []

    def design(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(X (n, num params), target (n,)) with n = T - k: rows [1, y_{t-1}, ..., y_{t-k}] for t = k .. T-1."""
        k, T = self.lags, len(y)
        X = np.ones((T - k, len(self.names)))
        for i in range(1, k + 1):
            X[:, i] = y[k - i : T - i]
        return X, y[k:]

    def unconditional(self, params: np.ndarray) -> float:
        """The mean's level, ``const / (1 - sum phi)`` for AR(k); what lags before the sample are taken to be."""
        if self.kind != "ar":
            return float(params[0]) if len(params) else 0.0
        persistence = 1.0 - float(np.sum(params[1:]))
        return float(params[0]) / persistence if abs(persistence) > 1e-8 else float(params[0])

    def unscale(self, scale: float) -> np.ndarray:
        J = np.eye(len(self.names))
        if len(self.names):
            J[0, 0] = 1.0 / scale  # the constant; the AR coefficients are scale-free
        return J


@dataclass(frozen=True)
class Likelihood:
    """The composition; ``theta`` is ``[mean | process | noise]`` in ``names`` order."""

    mean: Mean
    process: vol.VolatilityProcess
    noise: Noise

    @property
    def names(self) -> list[str]:
        return self.mean.names + self.process.names + self.noise.names

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m, v = len(self.mean.names), len(self.process.names)
        return theta[:m], theta[m : m + v], theta[m + v :]

    def residuals(self, mean_params: np.ndarray, X: np.ndarray, target: np.ndarray) -> np.ndarray:
        return target - X @ mean_params if len(mean_params) else target

    def per_step(self, theta, X, target, b, bounds, x_prev) -> np.ndarray:
        """Per-step log-likelihood (n,) at ``theta``."""
        mp, vp, dp = self.split(theta)
        e = self.residuals(mp, X, target)
        return self.noise.loglik(e, self.process.variance(vp, e, b, bounds, x_prev), dp)
