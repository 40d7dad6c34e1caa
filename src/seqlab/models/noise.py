"""Noise laws of a GARCH-family model: the standardised ``z_t`` in ``e_t = sigma_t z_t``, ``E z = 0``, ``Var z = 1``.

A noise is a head of ``seqlab.distributions`` (which owns the density, its quantiles and sampling) at the
parameters that give it mean 0 and variance 1 (``unit_params``); the rest is the head's own algebra:
``x = mu + sigma z`` has the head parameters ``head.rescale(unit, mu, sigma)``, and the log-likelihood a fit
maximises is ``log p(e | sigma2) = -head.nll(unit, e / sigma) - log sigma``. So each density is written once, in
torch, for the neural models and GARCH alike:

    normal   N(0, 1)                                    head Gaussian      unit (0, 0)
    t        Student's t(nu) scaled to variance 1       head StudentT      unit (0, log sqrt((nu - 2) / nu),
                                                                           softplus^-1(nu - 2))
    skewt    Hansen's (1994) skewed t(eta, lambda)      head SkewStudentT  unit (0, 0, softplus^-1(eta - 2),
                                                                           atanh(lambda))

Interface: ``names``, ``head``, ``start(z)`` (from the standardised residuals of the start), ``bounds``,
``unit_params(params) -> (P,)``, then ``head_params(mu, sigma2, params)`` and ``loglik(e, sigma2, params)``
from them; the bounds and starts are arch's.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from seqlab.distributions import Gaussian, Head, SkewStudentT, StudentT


def _softplus_inverse(y: float) -> float:
    """``x`` with ``torch.nn.functional.softplus(x) == y`` (softplus is the identity above 20)."""
    return y if y > 20 else math.log(math.expm1(y))


def _kurtosis_start(z: np.ndarray) -> float:
    """arch's start for the degrees of freedom: from the sample kurtosis, at least 4 (12 when tails are thin)."""
    kurtosis = float(np.mean((z - z.mean()) ** 4) / np.var(z) ** 2)
    return max((4.0 * kurtosis - 6.0) / (kurtosis - 3.0) if kurtosis > 3.75 else 12.0, 4.0)


class Noise:
    names: list[str] = []
    bounds: list[tuple[float, float]] = []
    head: Head

    def start(self, z: np.ndarray) -> np.ndarray:
        return np.zeros(0)

    def simpler(self) -> Noise | None:
        """The noise this one nests (the t nests the normal as nu -> inf, the skewed t the t at lambda = 0)."""
        return None

    def extend(self, simpler_params: np.ndarray, z: np.ndarray) -> np.ndarray:
        """A start of this noise's parameters from the fitted ``simpler()`` one's and its standardised residuals."""
        return self.start(z)

    def unit_params(self, params) -> torch.Tensor:
        """(P,) head parameters of the noise itself: mean 0, variance 1."""
        raise NotImplementedError

    def head_params(self, mu, sigma2, params) -> torch.Tensor:
        """(..., P) head parameters of ``x = mu + sigma z`` (``mu``, ``sigma2`` broadcast together)."""
        as_tensor = torch.as_tensor
        mu, sigma2 = torch.broadcast_tensors(as_tensor(mu, dtype=torch.float64), as_tensor(sigma2, dtype=torch.float64))
        unit = self.unit_params(params)
        return self.head.rescale(unit.expand(*mu.shape, len(unit)), mu, sigma2.sqrt())

    def loglik(self, e: np.ndarray, sigma2: np.ndarray, params) -> np.ndarray:
        """``log p(e_t | sigma2_t)`` (n,) = ``log p_z(e_t / sigma_t) - log sigma_t``."""
        sigma = np.sqrt(sigma2)
        z = torch.from_numpy(np.ascontiguousarray(e / sigma, dtype=np.float64))
        return -self.head.nll(self.unit_params(params), z).numpy() - np.log(sigma)

    def describe(self) -> str:
        raise NotImplementedError


class NormalNoise(Noise):
    head = Gaussian()

    def unit_params(self, params) -> torch.Tensor:
        return torch.zeros(2, dtype=torch.float64)

    def describe(self) -> str:
        return "normal"


class StudentTNoise(Noise):
    names = ["nu"]
    bounds = [(2.05, 500.0)]
    head = StudentT()

    def start(self, z: np.ndarray) -> np.ndarray:
        return np.array([_kurtosis_start(z)])

    def simpler(self) -> Noise:
        return NormalNoise()

    def unit_params(self, params) -> torch.Tensor:
        nu = float(params[0])  # the t's scale s: 1 = s^2 nu / (nu - 2)
        return torch.tensor([0.0, 0.5 * math.log((nu - 2) / nu), _softplus_inverse(nu - 2.0)], dtype=torch.float64)

    def describe(self) -> str:
        return "Student-t"


class SkewTNoise(Noise):
    names = ["eta", "lambda"]
    bounds = [(2.05, 300.0), (-1.0, 1.0)]
    head = SkewStudentT()
    LAMBDA_EDGE = 1 - 1e-6  # lambda = +-1 (the bounds) is a degenerate density: kept just inside

    def start(self, z: np.ndarray) -> np.ndarray:
        return np.array([_kurtosis_start(z), 0.0])

    def simpler(self) -> Noise:
        return StudentTNoise()

    def extend(self, simpler_params: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.array([float(simpler_params[0]), 0.0])

    def unit_params(self, params) -> torch.Tensor:
        eta, lam = float(params[0]), float(np.clip(params[1], -self.LAMBDA_EDGE, self.LAMBDA_EDGE))
        return torch.tensor([0.0, 0.0, _softplus_inverse(eta - 2.0), math.atanh(lam)], dtype=torch.float64)

    def describe(self) -> str:
        return "skewed-t"


NOISES = {"normal": NormalNoise, "t": StudentTNoise, "skewt": SkewTNoise}
