"""The ETS fit's objective compiled with numba: ``-log L / n`` and its gradient in one call.

The same equations as ``ets_state.recursion`` (the filter) and ``ets_fit`` (the concentrated likelihood and its
reverse-mode gradient), written once more over NumPy arrays so that numba compiles them: the fit evaluates the
objective ~50 times per start, 3 starts x 15 forms per series, and in plain Python the two loops over the values
were 2/3 of the fit's time (docs/panels.md, "ETS compiled"). ``tests/test_ets.py`` checks this copy against
statsmodels' log-likelihood (every form), central differences (the gradient) and statsmodels' fitted maxima.

Compiled on first use (``compiled_objective``, through ``seqlab.models.compiled``: numba's import and the compile,
about 2 s, or its cache beside this file, about 1 s), so that importing seqlab does not import numba;
``NUMBA_DISABLE_JIT=1`` runs the same source as Python. A division by zero gives inf or nan instead of raising,
and any mean that is not finite makes the point invalid, as the Python objective's ZeroDivisionError did.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from seqlab.models.compiled import Compiled
from seqlab.models.ets_state import INVALID, MSE_FLOOR


def compiled_objective() -> Callable:
    """``objective`` compiled by numba (on the first call)."""
    return _objective.compile()


def objective(
    v: np.ndarray,
    y: np.ndarray,
    m: int,
    has_trend: bool,
    has_season: bool,
    damped: bool,
    multiplicative_season: bool,
    multiplicative_error: bool,
    grad: np.ndarray,
    hyndman_season: bool = False,
) -> float:
    """``-log L / n`` at the optimiser's vector ``v`` (``ets_fit.Layout``'s order); its gradient is written into
    ``grad`` (zeros where the point is invalid or the gradient not finite). ``hyndman_season``: a multiplicative
    season moves by Hyndman et al.'s update (``ets_state``'s docstring)."""
    n = y.shape[0]
    grad[:] = 0.0
    # -- unpack: alpha [beta*] [gamma*] [phi] level [slope] [season_1 .. season_{m-1}]
    alpha = v[0]
    i = 1
    beta_star = 0.0
    if has_trend:
        beta_star = v[i]
        i += 1
    gamma_star = 0.0
    if has_season:
        gamma_star = v[i]
        i += 1
    phi = 1.0
    if damped:
        phi = v[i]
        i += 1
    level = v[i]
    i += 1
    slope = 0.0
    if has_trend:
        slope = v[i]
        i += 1
    k = m if has_season else 1
    season = np.zeros(k)
    if multiplicative_season:
        season[0] = 1.0
    for j in range(1, k):
        season[j] = v[i + j - 1]
    # -- the filter (ets_state.recursion), keeping (l_{t-1}, b_{t-1}, S_t, l_t) per value for the gradient
    tape_level = np.empty(n)
    tape_slope = np.empty(n)
    tape_s = np.empty(n)
    tape_new = np.empty(n)
    mu = np.empty(n)
    one_alpha, one_beta, one_gamma = 1.0 - alpha, 1.0 - beta_star, 1.0 - gamma_star
    gamma = gamma_star * one_alpha  # Hyndman et al.'s gamma (hyndman_season)
    hyndman = hyndman_season and multiplicative_season
    j = 0
    for t in range(n):
        y_t = y[t]
        s = season[j]
        b = phi * slope
        base = level + b
        if multiplicative_season:
            mu[t] = base * s
            new_level = alpha * (y_t / s) + one_alpha * base
            if hyndman:
                season[j] = gamma * (y_t / base) + (1.0 - gamma) * s
            else:
                season[j] = gamma_star * (y_t / new_level) + one_gamma * s
        else:
            mu[t] = base + s
            new_level = alpha * (y_t - s) + one_alpha * base
            season[j] = gamma_star * (y_t - new_level) + one_gamma * s
        tape_level[t], tape_slope[t], tape_s[t], tape_new[t] = level, slope, s, new_level
        slope = beta_star * (new_level - level) + one_beta * b
        level = new_level
        j = j + 1 if j + 1 < k else 0
    # -- the concentrated likelihood and its derivative in each mu_t
    positive = multiplicative_error or multiplicative_season
    sum_sq = 0.0
    sum_log = 0.0
    for t in range(n):
        if not math.isfinite(mu[t]) or (positive and not mu[t] > 0):
            return INVALID
        eps = y[t] - mu[t] if not multiplicative_error else y[t] / mu[t] - 1.0
        sum_sq += eps * eps
        if multiplicative_error:
            sum_log += math.log(mu[t])
    mse = max(sum_sq / n, MSE_FLOOR)
    value = 0.5 * (math.log(2 * math.pi * mse) + 1)
    if multiplicative_error:
        value += sum_log / n
    if not math.isfinite(value):
        return INVALID
    d_mu = np.empty(n)
    for t in range(n):
        if multiplicative_error:
            eps = y[t] / mu[t] - 1.0
            d_mu[t] = -eps * y[t] / (mu[t] * mu[t] * n * mse) + 1.0 / (n * mu[t])
        else:
            d_mu[t] = -(y[t] - mu[t]) / (n * mse)
    # -- reverse mode through the filter (ets_fit's _backward, line for line)
    g_alpha = g_beta = g_gamma = g_phi = 0.0
    a_level = a_slope = 0.0
    a_season = np.zeros(k)
    j = (n - 1) % k
    for t in range(n - 1, -1, -1):
        level, slope, s, new_level, y_t, d = tape_level[t], tape_slope[t], tape_s[t], tape_new[t], y[t], d_mu[t]
        a_new_season = a_season[j]
        b = phi * slope
        base = level + b
        a_new_level = a_level + a_slope * beta_star
        g_beta += a_slope * (new_level - level - b)
        a_s = a_new_season * one_gamma
        if hyndman:  # s_t = gamma* (1 - alpha) y_t / L_t + (1 - gamma* (1 - alpha)) S_t
            ratio = y_t / base
            a_s = a_new_season * (1.0 - gamma)
            g_gamma += a_new_season * one_alpha * (ratio - s)
            g_alpha -= a_new_season * gamma_star * (ratio - s)
            a_base_season = -a_new_season * gamma * ratio / base
            ratio = y_t / s
            a_s += d * base - a_new_level * alpha * ratio / s
            g_alpha += a_new_level * (ratio - base)
            a_base = a_new_level * one_alpha + d * s + a_base_season
        elif multiplicative_season:
            ratio = y_t / new_level
            a_new_level -= a_new_season * gamma_star * ratio / new_level
            g_gamma += a_new_season * (ratio - s)
            ratio = y_t / s
            a_s += d * base - a_new_level * alpha * ratio / s
            g_alpha += a_new_level * (ratio - base)
            a_base = a_new_level * one_alpha + d * s
        else:
            a_new_level -= a_new_season * gamma_star
            g_gamma += a_new_season * (y_t - new_level - s)
            a_s += d - a_new_level * alpha
            g_alpha += a_new_level * (y_t - s - base)
            a_base = a_new_level * one_alpha + d
        a_b = a_slope * one_beta + a_base
        g_phi += a_b * slope
        a_level = a_base - a_slope * beta_star
        a_slope = a_b * phi
        a_season[j] = a_s
        j = j - 1 if j else k - 1
    # -- pack the gradient in v's order
    grad[0] = g_alpha
    i = 1
    if has_trend:
        grad[i] = g_beta
        i += 1
    if has_season:
        grad[i] = g_gamma
        i += 1
    if damped:
        grad[i] = g_phi
        i += 1
    grad[i] = a_level
    i += 1
    if has_trend:
        grad[i] = a_slope
        i += 1
    for j in range(1, k):
        grad[i + j - 1] = a_season[j]
    for i in range(grad.shape[0]):
        if not math.isfinite(grad[i]):
            grad[:] = 0.0
            break
    return value


_objective = Compiled(objective)
