"""Volatility processes: the variance equation of a GARCH-family model, its start, bounds and constraints.

A process maps residuals ``e (n,)`` (``x_t - mu_t``) to conditional variances ``sigma2 (n,)``, each given the
residuals before it (and, for GARCH-X, an exogenous series ``x_prev (n,)`` known before each step):

    GARCH / GJR   sigma2_t = omega + sum_i alpha_i e^2_{t-i} + sum_i gamma_i e^2_{t-i} 1[e_{t-i} < 0]
                             + sum_j beta_j sigma2_{t-j}                         (GJR: o > 0)
    GARCH-X       the same + delta x_{t-1}, x >= 0 a measured variance (e.g. the day's Parkinson range)
    EGARCH        ln sigma2_t = omega + sum_i alpha_i (|z_{t-i}| - sqrt(2/pi)) + sum_i gamma_i z_{t-i}
                             + sum_j beta_j ln sigma2_{t-j},          z_t = e_t / sigma_t

The recursion is written once per process, as ``step(params, lags, x_prev)``: the next variance from the lags
(what the equation reads of the past, newest first: GARCH ``e^2``, ``e^2 1[e < 0]``, ``sigma2``; EGARCH
``|z| - sqrt(2/pi)``, ``z``, ``ln sigma2``), with ``push(lags, e, sigma2)`` the lags after a residual and
``initial(b)`` the lags before the sample: ``e^2`` and ``sigma2`` the backcast ``b``, ``e^2 1[e < 0]`` ``b / 2``
(EGARCH: ``ln sigma2 = ln b``, no ``z`` terms); ``lag_names`` names the three. Lags are lists of floats, or of
(S,) arrays for S paths at once, or of (B,) tensors: ``xp``, the array namespace of ``step`` and ``push``, is
``numpy``, or ``torch`` where ``seqlab.export`` traces them into a graph.
Streaming, sampling and ``variance_reference`` (the definition, a loop over ``step``) all call it; ``variance``
is the fast path for fitting, tested against the reference: GARCH's recursion is linear in ``sigma2``, so
``sigma2 = lfilter(1, [1, -beta], u)`` with ``u`` the known part (one C pass); EGARCH(1,1,1) is one loop
compiled by numba (``seqlab.models.compiled``); ``ln sigma2`` is clamped to float64's range both ways, so no
variance reaches 0 or infinity.
Everything follows the ``arch`` package (K. Sheppard) so that likelihoods match: ``b`` is an
exponentially weighted mean of the first 75 squared residuals (weights ``0.94^k``), and while optimising every
``sigma2_t`` is kept inside bounds around an EWMA variance (``variance_bounds``) so that wild trial parameters
cannot overflow; at a fitted optimum the bounds are not active (the fit records it).

Interface of a process (``params`` is its block of the parameter vector, ``names`` order):
``names``, ``exogenous`` (0, or 1 for GARCH-X), ``backcast(e)``, ``initial``, ``step``, ``push``, ``bound``,
``variance``, ``variance_reference``, ``start_grid(e)``, ``bounds(e)``,
``constraints()`` (``A params >= lower``), ``unscale(scale)`` (the Jacobian and shift of the data-scale
parameters for a fit on ``scale * y``), ``unscale_backcast`` and ``describe()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter, lfiltic

from seqlab.models.compiled import Compiled

SQRT2_OV_PI = math.sqrt(2.0 / math.pi)  # E|z| for z ~ N(0, 1), used by EGARCH whatever the noise law
LNSIGMA_MAX = float(np.log(np.finfo(np.double).max) - 0.1)
# EGARCH keeps ln sigma2 in [LNSIGMA_MIN, LNSIGMA_MAX] (arch clamps the top): a variance that underflowed to 0
# would make z = e / sigma a division by zero
LNSIGMA_MIN = float(np.log(np.finfo(np.double).tiny))
BACKCAST_SPAN = 75
EWMA_LAMBDA = 0.94


def ewma_start(v: np.ndarray) -> float:
    """``sum_k w_k v_k`` over the first 75 values, ``w_k`` proportional to ``0.94^k``: arch's backcast weights."""
    tau = min(BACKCAST_SPAN, len(v))
    w = EWMA_LAMBDA ** np.arange(tau)
    return float(np.sum(v[:tau] * (w / w.sum())))


def backcast(e: np.ndarray) -> float:
    """``b``: the EWMA start of the squared residuals, what ``e^2`` and ``sigma2`` are before the sample."""
    return ewma_start(e**2)


def variance_bounds(e: np.ndarray) -> np.ndarray:
    """(T, 2) lower and upper bounds on ``sigma2_t``: an EWMA variance / 1e6 and * 1e6, clipped as ``arch`` does."""
    ewma = GARCHProcess().variance(np.array([0.0, 1 - EWMA_LAMBDA, EWMA_LAMBDA]), e, backcast(e), None)
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


def _push(lags: list, value) -> list:
    """``lags`` newest first with ``value`` in front and the oldest dropped."""
    return [value, *lags[:-1]]


def _names(p: int, o: int, q: int) -> list[str]:
    alpha, gamma, beta = (range(1, n + 1) for n in (p, o, q))
    return ["omega"] + [f"alpha[{i}]" for i in alpha] + [f"gamma[{i}]" for i in gamma] + [f"beta[{j}]" for j in beta]


def _reference(process, params, e: np.ndarray, b: float, bounds: np.ndarray | None, x_prev) -> np.ndarray:
    """``sigma2 (n,)`` one ``step`` at a time: the definition (``bounds`` applied at every step, as arch), over
    Python floats (NumPy scalars would make each step several times slower)."""
    step, push, bound = process.step, process.push, process.bound
    params, lags, sigma2 = np.asarray(params).tolist(), process.initial(b), [0.0] * len(e)
    x = [None] * len(e) if x_prev is None else np.asarray(x_prev).tolist()
    low, high = (bounds[:, 0].tolist(), bounds[:, 1].tolist()) if bounds is not None else (None, None)
    for t, e_t in enumerate(e.tolist()):
        s = float(step(params, lags, x[t]))
        sigma2[t] = s = s if low is None else bound(s, low[t], high[t])
        lags = push(lags, e_t, s)
    return np.array(sigma2)


@dataclass(frozen=True)
class GARCHProcess:
    """GARCH(p, q), GJR-GARCH(p, o, q) with ``o > 0``, and GARCH-X with ``exogenous=1``; ``params`` are
    ``[omega, alpha_1..p, gamma_1..o, beta_1..q(, delta)]``. Positive and stationary when omega > 0, alpha >= 0,
    alpha + gamma >= 0, beta >= 0, delta >= 0 and sum alpha + sum gamma / 2 + sum beta < 1 (the exogenous
    variance, stationary itself, does not enter the persistence)."""

    p: int = 1
    o: int = 0
    q: int = 1
    exogenous: int = 0
    lag_names = ("e2", "e2_negative", "sigma2")  # e^2, e^2 1[e < 0], sigma2: newest first

    @property
    def names(self) -> list[str]:
        return _names(self.p, self.o, self.q) + ["delta"] * self.exogenous

    def backcast(self, e: np.ndarray) -> float:
        return backcast(e)

    def _split(self, params: np.ndarray):
        p, o, q = self.p, self.o, self.q
        delta = float(params[1 + p + o + q]) if self.exogenous else 0.0
        return params[0], params[1 : 1 + p], params[1 + p : 1 + p + o], params[1 + p + o : 1 + p + o + q], delta

    def initial(self, b: float) -> tuple[list, list, list]:
        """The lags ``(e^2, e^2 1[e < 0], sigma2)`` before the sample."""
        m = max(self.p, self.o, self.q, 1)
        return [b] * m, [0.5 * b] * m, [b] * m

    def step(self, params, lags, x_prev=None, xp=np):
        """The recursion: ``sigma2`` of the next residual given the lags (and GARCH-X's ``x_prev``)."""
        e2, negative, s = lags
        p, o, q = self.p, self.o, self.q
        sigma2 = params[0]
        for i in range(p):
            sigma2 = sigma2 + params[1 + i] * e2[i]
        for i in range(o):
            sigma2 = sigma2 + params[1 + p + i] * negative[i]
        for j in range(q):
            sigma2 = sigma2 + params[1 + p + o + j] * s[j]
        return sigma2 + params[1 + p + o + q] * x_prev if self.exogenous else sigma2

    def push(self, lags, e, sigma2, xp=np):
        e2, negative, s = lags
        return _push(e2, e * e), _push(negative, e * e * (e < 0)), _push(s, sigma2)

    @staticmethod
    def bound(s: float, low: float, high: float) -> float:
        return _clip(s, low, high)

    def variance_reference(self, params, e, b, bounds, x_prev=None) -> np.ndarray:
        return _reference(self, params, e, b, bounds, x_prev)

    def variance(self, params, e, b, bounds, x_prev=None) -> np.ndarray:
        """The fast path: the linear filter ``sigma2_t - sum_j beta_j sigma2_{t-j} = u_t`` in one ``lfilter``
        pass; if a step leaves ``bounds`` (T, 2), the reference's loop, which clips every step, compiled
        (``garch_filter``)."""
        omega, alpha, gamma, beta, delta = self._split(params)
        p, o, q = self.p, self.o, self.q
        T = len(e)
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
        if self.exogenous:
            u += delta * x_prev
        if q:
            a = np.concatenate([[1.0], -beta])
            sigma2, _ = lfilter([1.0], a, u, zi=lfiltic([1.0], a, np.full(q, b)))
        else:
            sigma2 = u
        if bounds is not None and ((sigma2 < bounds[:, 0]).any() or (sigma2 > bounds[:, 1]).any()):
            x = np.zeros(T) if x_prev is None else np.ascontiguousarray(x_prev, dtype=np.float64)
            e, low, high = (np.ascontiguousarray(a, dtype=np.float64) for a in (e, bounds[:, 0], bounds[:, 1]))
            coefficients = (np.asarray(c, dtype=np.float64) for c in (alpha, gamma, beta))
            return _garch_filter(float(omega), *coefficients, float(delta), e, x, float(b), low, high)
        return sigma2

    def start_grid(self, e: np.ndarray, x_prev=None) -> list[np.ndarray]:
        """arch's grid of start values (alpha x gamma x persistence); GARCH-X splits the unconditional variance
        between omega and delta E[x] in a few shares."""
        p, o, q = self.p, self.o, self.q
        target = float(np.mean(e**2))
        shares = (0.0,) if not self.exogenous else (0.3, 0.7)
        mean_x = float(np.mean(x_prev)) if self.exogenous else 1.0
        candidates = []
        for alpha in (0.01, 0.05, 0.1, 0.2):
            for gamma in (0.01, 0.05, 0.1, 0.2):
                for persistence in (0.5, 0.7, 0.9, 0.98):
                    for share in shares:
                        sv = (1.0 - persistence) * target * np.ones(1 + p + o + q + self.exogenous)
                        rest = persistence
                        if p:
                            sv[1 : 1 + p] = alpha / p
                            rest -= alpha
                        if o:
                            sv[1 + p : 1 + p + o] = gamma / o
                            rest -= gamma / 2.0
                        if q:
                            sv[1 + p + o : 1 + p + o + q] = rest / q
                        if self.exogenous:
                            sv[0] *= 1 - share
                            sv[-1] = share * (1.0 - persistence) * target / max(mean_x, 1e-300)
                        candidates.append(sv)
        return candidates

    def persistence(self, params) -> float:
        """``sum alpha + sum gamma / 2 + sum beta``: below 1 for a stationary variance."""
        _, alpha, gamma, beta, _ = self._split(np.asarray(params))
        return float(np.sum(alpha) + np.sum(gamma) / 2 + np.sum(beta))

    def bounds(self, e: np.ndarray) -> list[tuple[float, float]]:
        v = float(np.mean(e**2))
        gammas = [(-1.0, 2.0) if i < self.p else (0.0, 2.0) for i in range(self.o)]
        exogenous = [(0.0, np.inf)] * self.exogenous
        return [(1e-8 * v, 10.0 * v)] + [(0.0, 1.0)] * self.p + gammas + [(0.0, 1.0)] * self.q + exogenous

    def constraints(self) -> tuple[np.ndarray, np.ndarray]:
        """``A params >= lower``: omega, alpha, beta >= 0; alpha_i + gamma_i >= 0 (gamma alone beyond p);
        sum alpha + sum gamma / 2 + sum beta < 1 (arch's)."""
        p, o = self.p, self.o
        k = p + o + self.q
        rows, lower = [], []
        for i in range(k + 1):
            row = np.zeros(k + 1)
            row[i] = 1.0
            if p < i <= p + o and i - p - 1 < p:
                row[i - p] = 1.0
            rows.append(row)
            lower.append(0.0)
        row = np.zeros(k + 1)
        row[1:] = -1.0
        row[1 + p : 1 + p + o] = -0.5
        rows.append(row)
        lower.append(-1.0)
        A = np.zeros((len(rows), k + 1 + self.exogenous))
        A[:, : k + 1] = np.array(rows)
        return A, np.array(lower)

    def unscale(self, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """A fit on ``scale * y`` (and ``scale^2 x``): omega / s^2; the rest unchanged."""
        K = len(self.names)
        J = np.eye(K)
        J[0, 0] = 1.0 / scale**2
        return J, np.zeros(K)

    @staticmethod
    def unscale_backcast(b: float, scale: float) -> float:
        return b / scale**2

    def describe(self) -> str:
        p, o, q = self.p, self.o, self.q
        x = "-X" if self.exogenous else ""
        return f"GJR-GARCH{x}({p},{o},{q})" if o else f"GARCH{x}({p},{q})"


@dataclass(frozen=True)
class EGARCHProcess:
    """EGARCH(p, o, q) (Nelson 1991) on ``ln sigma2``; ``params`` are ``[omega, alpha_1..p, gamma_1..o,
    beta_1..q]``; stationary when sum beta < 1. Its backcast is ``ln b``."""

    p: int = 1
    o: int = 1
    q: int = 1
    exogenous: int = 0
    lag_names = ("shock", "z", "ln_sigma2")  # |z| - sqrt(2/pi), z, ln sigma2: newest first

    @property
    def names(self) -> list[str]:
        return _names(self.p, self.o, self.q)

    def backcast(self, e: np.ndarray) -> float:
        return math.log(backcast(e))

    def initial(self, ln_b: float) -> tuple[list, list, list]:
        """The lags ``(|z| - sqrt(2/pi), z, ln sigma2)`` before the sample: no z terms, ``ln b``."""
        m = max(self.p, self.o, self.q, 1)
        return [0.0] * m, [0.0] * m, [ln_b] * m

    def step(self, params, lags, x_prev=None, xp=np):
        """The recursion: ``sigma2`` of the next residual given the lags."""
        shock, z, ln_s = lags
        p, o, q = self.p, self.o, self.q
        ln_sigma2 = params[0]
        for i in range(p):
            ln_sigma2 = ln_sigma2 + params[1 + i] * shock[i]
        for i in range(o):
            ln_sigma2 = ln_sigma2 + params[1 + p + i] * z[i]
        for j in range(q):
            ln_sigma2 = ln_sigma2 + params[1 + p + o + j] * ln_s[j]
        return xp.exp(xp.clip(ln_sigma2, LNSIGMA_MIN, LNSIGMA_MAX))

    def push(self, lags, e, sigma2, xp=np):
        shock, z, ln_s = lags
        z_t = e / xp.sqrt(sigma2)
        return _push(shock, xp.abs(z_t) - SQRT2_OV_PI), _push(z, z_t), _push(ln_s, xp.log(sigma2))

    @staticmethod
    def bound(s: float, low: float, high: float) -> float:
        """Up to the floor; above the ceiling, only logarithmically more (arch's EGARCH rule)."""
        if s < low:
            return low
        return high + math.log(s) - math.log(high) if s > high else s

    def variance_reference(self, params, e, ln_b, bounds, x_prev=None) -> np.ndarray:
        return _reference(self, params, e, ln_b, bounds, x_prev)

    def variance(self, params, e, ln_b, bounds, x_prev=None) -> np.ndarray:
        """The fast path for orders up to (1, 1, 1): one loop compiled by numba (``z_t`` needs ``sigma2_t``, so no
        linear filter); higher orders take the reference."""
        p, o, q = self.p, self.o, self.q
        if max(p, o, q) > 1:
            return self.variance_reference(params, e, ln_b, bounds)
        alpha = float(params[1]) if p else 0.0
        gamma = float(params[1 + p]) if o else 0.0
        beta = float(params[1 + p + o]) if q else 0.0
        e = np.ascontiguousarray(e, dtype=np.float64)
        bounded = bounds is not None
        low, high = (np.ascontiguousarray(bounds[:, 0]), np.ascontiguousarray(bounds[:, 1])) if bounded else (e, e)
        return _egarch_filter(float(params[0]), alpha, gamma, beta, e, float(ln_b), low, high, bounded)

    def start_grid(self, e: np.ndarray, x_prev=None) -> list[np.ndarray]:
        """arch's grid: alpha x gamma x beta with omega at the unconditional log variance."""
        p, o, q = self.p, self.o, self.q
        target = math.log(np.mean(e**2))
        candidates = []
        for alpha in (0.01, 0.05, 0.1, 0.2):
            for gamma in (-0.1, 0.0, 0.1):
                for beta in (0.5, 0.7, 0.9, 0.98):
                    sv = (1.0 - beta) * target * np.ones(p + o + q + 1)
                    sv[1 : 1 + p] = alpha / p if p else 0
                    if o:
                        sv[1 + p : 1 + p + o] = gamma / o
                    if q:
                        sv[1 + p + o :] = beta / q
                    candidates.append(sv)
        return candidates

    def persistence(self, params) -> float:
        """``sum beta``: below 1 for a stationary log variance."""
        return float(np.sum(np.asarray(params)[1 + self.p + self.o :]))

    def bounds(self, e: np.ndarray) -> list[tuple[float, float]]:
        ln_v, width = math.log(float(np.mean(e**2))), math.log(10000.0)
        return (
            [(ln_v - width, ln_v + width)] + [(-np.inf, np.inf)] * (self.p + self.o) + [(0.0, float(self.q))] * self.q
        )

    def constraints(self) -> tuple[np.ndarray, np.ndarray]:
        """``A params >= lower``: sum beta < 1."""
        row = np.zeros(1 + self.p + self.o + self.q)
        row[1 + self.p + self.o :] = -1.0
        return row[None], np.array([-1.0])

    def unscale(self, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """A fit on ``scale * y``: omega - 2 ln s (1 - sum beta); the rest unchanged."""
        K = len(self.names)
        J, shift = np.eye(K), np.zeros(K)
        J[0, 1 + self.p + self.o :] = 2 * math.log(scale)
        shift[0] = -2 * math.log(scale)
        return J, shift

    @staticmethod
    def unscale_backcast(ln_b: float, scale: float) -> float:
        return ln_b - 2 * math.log(scale)

    def describe(self) -> str:
        return f"EGARCH({self.p},{self.o},{self.q})"


VolatilityProcess = GARCHProcess | EGARCHProcess


def egarch_filter(omega, alpha, gamma, beta, e, ln_b, low, high, bounded):
    """EGARCH(1,1,1)'s variances of residuals ``e`` (T,) from ``ln sigma2_0 = ln_b``: ``ln sigma2`` clamped to
    float64's range, then (``bounded``) each ``sigma2_t`` kept in ``[low_t, high_t]`` by ``EGARCH.bound``'s rule.
    Plain Python over arrays, compiled by numba (``_egarch_filter``)."""
    T = e.shape[0]
    sigma2 = np.empty(T)
    shock, ln_prev = 0.0, ln_b  # no z before the sample
    for t in range(T):
        ln_s = omega + shock + beta * ln_prev
        if ln_s > LNSIGMA_MAX:
            ln_s = LNSIGMA_MAX
        elif ln_s < LNSIGMA_MIN:
            ln_s = LNSIGMA_MIN
        s = math.exp(ln_s)
        if bounded:
            if s < low[t]:
                s = low[t]
                ln_s = math.log(s)
            elif s > high[t]:
                s = high[t] + ln_s - math.log(high[t])
                ln_s = math.log(s)
        sigma2[t] = s
        z = e[t] / math.sqrt(s)
        shock = alpha * (abs(z) - SQRT2_OV_PI) + gamma * z
        ln_prev = ln_s
    return sigma2


_egarch_filter = Compiled(egarch_filter)


def garch_filter(omega, alpha, gamma, beta, delta, e, x_prev, b, low, high):
    """GARCH / GJR / GARCH-X variances of residuals ``e`` (T,), each step kept in ``[low_t, high_t]`` by
    ``_clip``'s rule: ``variance_reference``'s loop, its sums in the same order (the same floats), over arrays
    so that numba compiles it (``_garch_filter``). The lags start at the backcast ``b`` (``GARCHProcess.initial``)."""
    T, p, o, q = e.shape[0], alpha.shape[0], gamma.shape[0], beta.shape[0]
    m = max(p, o, q, 1)
    e2, negative, lagged = np.full(m, b), np.full(m, 0.5 * b), np.full(m, b)  # newest first
    sigma2 = np.empty(T)
    for t in range(T):
        s = omega
        for i in range(p):
            s = s + alpha[i] * e2[i]
        for i in range(o):
            s = s + gamma[i] * negative[i]
        for j in range(q):
            s = s + beta[j] * lagged[j]
        s = s + delta * x_prev[t]
        if s < low[t]:
            s = low[t]
        elif s > high[t]:
            s = high[t] + (math.log(s / high[t]) if math.isfinite(s) else 1000.0)
        sigma2[t] = s
        for k in range(m - 1, 0, -1):
            e2[k], negative[k], lagged[k] = e2[k - 1], negative[k - 1], lagged[k - 1]
        e2[0] = e[t] * e[t]
        negative[0] = e[t] * e[t] if e[t] < 0 else 0.0
        lagged[0] = s
    return sigma2


_garch_filter = Compiled(garch_filter)
