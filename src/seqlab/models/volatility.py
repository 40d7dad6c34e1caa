"""The pieces of a GARCH model in NumPy: variance recursions, their start (backcast), bounds and noise laws.

Shapes: ``e (T,)`` the residuals ``x_t - mu_t``; every recursion returns ``sigma2 (T,)``, the conditional
variance of ``e_t`` given ``e_<t``. They follow the ``arch`` package (K. Sheppard) so that likelihoods match:

    GARCH / GJR   sigma2_t = omega + sum_i alpha_i e^2_{t-i} + sum_i gamma_i e^2_{t-i} 1[e_{t-i} < 0]
                             + sum_j beta_j sigma2_{t-j}
    EGARCH        ln sigma2_t = omega + sum_i alpha_i (|z_{t-i}| - sqrt(2/pi)) + sum_i gamma_i z_{t-i}
                             + sum_j beta_j ln sigma2_{t-j},          z_t = e_t / sigma_t

Before the sample (``t - i < 0``) ``e^2`` and ``sigma2`` are the backcast ``b`` (EGARCH: ``ln sigma2 = ln b``,
and the ``z`` terms are left out), the asymmetric term ``e^2 1[e < 0]`` is ``b / 2``. ``b`` is an exponentially
weighted mean of the first 75 squared residuals (weights ``0.94^k``). While optimising, every ``sigma2_t`` is
kept inside bounds around an EWMA variance (``variance_bounds``), as ``arch`` does, so that wild trial
parameters cannot overflow; at a fitted optimum the bounds are not active (``GARCH.fit`` records it).

The GARCH / GJR recursion is linear in ``sigma2``: ``sigma2 = lfilter(1, [1, -beta], u)`` with ``u`` the known
part, one C pass (``garch_variance``); a step outside the bounds falls back to the sequential
``garch_variance_reference``, which is the definition. EGARCH is not linear: a tight loop over Python floats.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter, lfiltic
from scipy.special import gammaln

SQRT2_OV_PI = math.sqrt(2.0 / math.pi)  # E|z| for z ~ N(0, 1), used by EGARCH whatever the noise law
LNSIGMA_MAX = float(np.log(np.finfo(np.double).max) - 0.1)
BACKCAST_SPAN = 75
EWMA_LAMBDA = 0.94


def backcast(e: np.ndarray) -> float:
    """``b = sum_k w_k e_k^2`` over the first 75 residuals, ``w_k`` proportional to ``0.94^k``."""
    tau = min(BACKCAST_SPAN, len(e))
    w = EWMA_LAMBDA ** np.arange(tau)
    return float(np.sum(e[:tau] ** 2 * (w / w.sum())))


def variance_bounds(e: np.ndarray) -> np.ndarray:
    """(T, 2) lower and upper bounds on ``sigma2_t``: an EWMA variance / 1e6 and * 1e6, clipped as ``arch`` does."""
    ewma = garch_variance(np.array([0.0, 1 - EWMA_LAMBDA, EWMA_LAMBDA]), e, 1, 0, 1, backcast(e), None)
    bounds = np.stack([ewma / 1e6, ewma * 1e6], axis=1)
    floor, top = float(np.var(e)) / 1e8, 1e7 * (1 + float(np.max(e**2)))
    bounds[bounds[:, 0] < floor, 0] = floor
    bounds[bounds[:, 1] < 1 + float(np.max(e**2)), 1] = 1 + float(np.max(e**2))
    bounds[bounds[:, 1] > top, 1] = top
    return np.ascontiguousarray(bounds)


def _clip(s: float, low: float, high: float) -> float:
    """``arch``'s bound check: up to the floor; above the ceiling, only logarithmically more."""
    if s < low:
        return low
    if s > high:
        return high + (math.log(s / high) if math.isfinite(s) else 1000.0)
    return s


def garch_variance(
    params: np.ndarray, e: np.ndarray, p: int, o: int, q: int, b: float, bounds: np.ndarray | None
) -> np.ndarray:
    """GARCH / GJR ``sigma2 (T,)`` for ``params = [omega, alpha_1..p, gamma_1..o, beta_1..q]``: the linear filter
    ``sigma2_t - sum_j beta_j sigma2_{t-j} = u_t`` in one ``lfilter`` pass; ``bounds`` (T, 2) or None."""
    T = len(e)
    omega, alpha, gamma, beta = params[0], params[1 : 1 + p], params[1 + p : 1 + p + o], params[1 + p + o :]
    f = e**2
    u = np.full(T, omega)
    if p:
        padded = np.concatenate([np.full(p, b), f])  # e^2 before the sample: the backcast
        for i in range(p):  # u_t += alpha_i e^2_{t-1-i}
            u += alpha[i] * padded[p - 1 - i : p - 1 - i + T]
    if o:
        padded = np.concatenate([np.full(o, 0.5 * b), f * (e < 0)])
        for i in range(o):
            u += gamma[i] * padded[o - 1 - i : o - 1 - i + T]
    if q:
        a = np.concatenate([[1.0], -beta])
        sigma2, _ = lfilter([1.0], a, u, zi=lfiltic([1.0], a, np.full(q, b)))
    else:
        sigma2 = u
    if bounds is not None and ((sigma2 < bounds[:, 0]).any() or (sigma2 > bounds[:, 1]).any()):
        return garch_variance_reference(params, e, p, o, q, b, bounds)
    return sigma2


def garch_variance_reference(
    params: np.ndarray, e: np.ndarray, p: int, o: int, q: int, b: float, bounds: np.ndarray | None
) -> np.ndarray:
    """The same recursion one step at a time (the definition; bounds applied at every step, as ``arch`` does)."""
    T = len(e)
    sigma2 = np.empty(T)
    for t in range(T):
        s = params[0]
        for i in range(p):
            s += params[1 + i] * (b if t - 1 - i < 0 else e[t - 1 - i] ** 2)
        for i in range(o):
            s += params[1 + p + i] * (0.5 * b if t - 1 - i < 0 else e[t - 1 - i] ** 2 * (e[t - 1 - i] < 0))
        for j in range(q):
            s += params[1 + p + o + j] * (b if t - 1 - j < 0 else sigma2[t - 1 - j])
        sigma2[t] = s if bounds is None else _clip(s, bounds[t, 0], bounds[t, 1])
    return sigma2


def egarch_variance(
    params: np.ndarray, e: np.ndarray, p: int, o: int, q: int, ln_b: float, bounds: np.ndarray | None
) -> np.ndarray:
    """EGARCH ``sigma2 (T,)``; ``ln_b`` is the log of the backcast. Sequential (``z_t`` needs ``sigma2_t``): one
    tight loop over Python floats for orders up to (1, 1, 1), else ``egarch_variance_reference``."""
    if max(p, o, q) > 1:
        return egarch_variance_reference(params, e, p, o, q, ln_b, bounds)
    omega = float(params[0])
    alpha = float(params[1]) if p else 0.0
    gamma = float(params[1 + p]) if o else 0.0
    beta = float(params[1 + p + o]) if q else 0.0
    low, high = (bounds[:, 0].tolist(), bounds[:, 1].tolist()) if bounds is not None else (None, None)
    values = e.tolist()
    sigma2 = [0.0] * len(values)
    exp, sqrt, log, top, c = math.exp, math.sqrt, math.log, LNSIGMA_MAX, SQRT2_OV_PI
    shock, ln_prev = 0.0, ln_b  # no z before the sample
    for t, e_t in enumerate(values):
        ln_s = omega + shock + beta * ln_prev
        if ln_s > top:
            ln_s = top
        s = exp(ln_s)
        if low is not None:
            if s < low[t]:
                s = low[t]
                ln_s = log(s)
            elif s > high[t]:
                s = high[t] + ln_s - log(high[t])
                ln_s = log(s)
        sigma2[t] = s
        z = e_t / sqrt(s)
        shock = alpha * (abs(z) - c) + gamma * z
        ln_prev = ln_s
    return np.array(sigma2)


def egarch_variance_reference(
    params: np.ndarray, e: np.ndarray, p: int, o: int, q: int, ln_b: float, bounds: np.ndarray | None
) -> np.ndarray:
    """EGARCH of any order one step at a time (the definition, as ``arch`` writes it)."""
    T = len(e)
    ln_sigma2, z, sigma2 = np.empty(T), np.empty(T), np.empty(T)
    for t in range(T):
        ln_s = params[0]
        for i in range(p):
            ln_s += params[1 + i] * (abs(z[t - 1 - i]) - SQRT2_OV_PI) if t - 1 - i >= 0 else 0.0
        for i in range(o):
            ln_s += params[1 + p + i] * z[t - 1 - i] if t - 1 - i >= 0 else 0.0
        for j in range(q):
            ln_s += params[1 + p + o + j] * (ln_sigma2[t - 1 - j] if t - 1 - j >= 0 else ln_b)
        ln_s = min(ln_s, LNSIGMA_MAX)
        s = math.exp(ln_s)
        if bounds is not None:
            if s < bounds[t, 0]:
                s = bounds[t, 0]
                ln_s = math.log(s)
            elif s > bounds[t, 1]:
                s = bounds[t, 1] + ln_s - math.log(bounds[t, 1])
                ln_s = math.log(s)
        ln_sigma2[t], sigma2[t] = ln_s, s
        z[t] = e[t] / math.sqrt(s)
    return sigma2


# -- the noise laws: log-likelihood of e_t given sigma2_t, elementwise ----------------------------------------
def normal_loglik(e: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    """``log N(e; 0, sigma2)``."""
    return -0.5 * (math.log(2 * math.pi) + np.log(sigma2) + e**2 / sigma2)


def t_loglik(e: np.ndarray, sigma2: np.ndarray, nu: float) -> np.ndarray:
    """Student's t standardised to variance ``sigma2``:
    ``lnG((nu+1)/2) - lnG(nu/2) - ln(pi (nu-2) sigma2)/2 - (nu+1)/2 ln(1 + e^2 / (sigma2 (nu-2)))``."""
    const = gammaln((nu + 1) / 2) - gammaln(nu / 2) - math.log(math.pi * (nu - 2)) / 2
    return const - 0.5 * np.log(sigma2) - (nu + 1) / 2 * np.log1p(e**2 / (sigma2 * (nu - 2)))


def skewt_constants(eta: float, lam: float) -> tuple[float, float, float]:
    """Hansen's (1994) skewed t, standardised to mean 0 and variance 1: ``(a, b, log c)`` with
    ``c = G((eta+1)/2) / (sqrt(pi (eta-2)) G(eta/2))``, ``a = 4 lam c (eta-2)/(eta-1)``, ``b^2 = 1 + 3 lam^2 - a^2``."""
    log_c = float(gammaln((eta + 1) / 2) - gammaln(eta / 2) - math.log(math.pi * (eta - 2)) / 2)
    a = 4 * lam * math.exp(log_c) * (eta - 2) / (eta - 1)
    return a, math.sqrt(1 + 3 * lam**2 - a**2), log_c


def skewt_loglik(e: np.ndarray, sigma2: np.ndarray, eta: float, lam: float) -> np.ndarray:
    """``log(b c / sigma) - (eta+1)/2 log(1 + ((b z + a) / (1 + sgn(z + a/b) lam))^2 / (eta-2))``, ``z = e/sigma``."""
    a, b, log_c = skewt_constants(eta, lam)
    z = e / np.sqrt(sigma2)
    lam = math.copysign(1 - 1e-6, lam) if abs(lam) >= 1 else lam
    r = ((b * z + a) / (1 + np.sign(z + a / b) * lam)) ** 2
    return math.log(b) + log_c - 0.5 * np.log(sigma2) - (eta + 1) / 2 * np.log(1 + r / (eta - 2))
