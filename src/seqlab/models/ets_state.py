"""The ETS state space (Hyndman, Koehler, Ord & Snyder 2008, "Forecasting with Exponential Smoothing"): forms,
parameters, the filter, the likelihood, simulation and the closed-form forecast of the linear forms.

The latent state is ``H_t = (l_t, b_t, s_t, ..., s_{t-m+1})``: level, trend and the last ``m`` seasonal values.
A fixed linear Net moves it from ``H_{t-1}`` and the new value ``y_t``, exactly as statsmodels' ``ETSModel``
(``_ets_smooth.pyx``) does, with ``beta* = beta / alpha`` and ``gamma* = gamma / (1 - alpha)``:

    B_t = phi b_{t-1}          L_t = l_{t-1} + B_t          S_t = s_{t-m}
    mu_t = L_t + S_t  (season A)    L_t S_t  (season M)    L_t  (no season)
    l_t = alpha (y_t - S_t  or  y_t / S_t) + (1 - alpha) L_t
    b_t = beta* (l_t - l_{t-1}) + (1 - beta*) B_t
    s_t = gamma* (y_t - l_t  or  y_t / l_t) + (1 - gamma*) S_t

and the error says how ``y_t`` scatters around ``mu_t``, ``eps_t ~ N(0, sigma^2)``:

    y_t = mu_t + eps_t          (error A: sd_t = sigma)
    y_t = mu_t (1 + eps_t)      (error M: sd_t = |mu_t| sigma)

so ``p(y_t | y_<t) = N(y_t; mu_t, sd_t^2)`` for every form. With additive seasons these equations are Hyndman et
al.'s innovations form (``l_t = L_t + alpha eps_t``, ``b_t = B_t + beta eps_t``, ``s_t = S_t + gamma eps_t`` for
error A). With multiplicative seasons statsmodels divides ``y_t`` by the new level ``l_t`` where Hyndman et al.
(and R's forecast, statsforecast) divide by ``L_t`` with ``gamma``: the two differ there. seqlab follows
statsmodels by default; ``season_update="hyndman"`` (a form's field) gives Hyndman et al.'s

    s_t = gamma (y_t / L_t) + (1 - gamma) S_t          (season M; gamma = gamma* (1 - alpha))

whose likelihood is R's and statsforecast's (``tests/test_ets.py`` checks it against statsforecast's). With
additive seasons the two updates are the same equation. The trend is none, additive or additive damped
(``phi < 1``); multiplicative trends are not offered.

Shapes: ``y (T,)``; the state's seasons ``(m,)`` oldest first, so ``season[0]`` is ``S`` of the next value;
simulation runs ``S`` paths at once, ``(S, horizon)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seqlab.errors import SeqlabError

ERRORS = ("A", "M")
TRENDS = ("N", "A", "Ad")
SEASONS = ("N", "A", "M")
SEASON_UPDATES = ("statsmodels", "hyndman")  # a multiplicative season's update (module docstring)
MSE_FLOOR = 1e-24  # the fit's floor of mean(eps^2) on the scaled series (mean |y| = 1): a constant stays finite
INVALID = 1e10  # the fit's objective where the model is undefined (a zero or negative mean under an M part)


@dataclass(frozen=True)
class ETSForm:
    """Error ``A``/``M``, trend ``N``/``A``/``Ad`` (damped), season ``N``/``A``/``M``: ``name`` is e.g. ``AAdM``."""

    error: str
    trend: str
    season: str
    season_update: str = "statsmodels"  # or "hyndman": how a multiplicative season moves (module docstring)

    def __post_init__(self) -> None:
        if self.season_update not in SEASON_UPDATES:
            raise SeqlabError(
                f"ETS season_update must be one of {', '.join(SEASON_UPDATES)}; got {self.season_update!r}"
            )
        for part, value, choices in (("error", self.error, ERRORS), ("trend", self.trend, TRENDS)):
            if value not in choices:
                raise SeqlabError(f"ETS {part} must be one of {', '.join(choices)}; got {value!r}")
        if self.season not in SEASONS:
            raise SeqlabError(f"ETS season must be one of {', '.join(SEASONS)}; got {self.season!r}")

    @classmethod
    def parse(cls, name: str, season_update: str = "statsmodels") -> ETSForm:
        """``"ANN"``, ``"AAdM"``, ... (error, trend, season)."""
        if not isinstance(name, str) or len(name) not in (3, 4) or (len(name) == 4 and name[2] != "d"):
            raise SeqlabError(f"an ETS form is error, trend, season as in 'ANN', 'AAdA', 'MAM'; got {name!r}")
        return cls(name[0], name[1:-1], name[-1], season_update)

    @property
    def hyndman_season(self) -> bool:
        """A multiplicative season moved by Hyndman et al.'s update (``s_t`` from ``y_t / L_t``, with gamma)."""
        return self.season == "M" and self.season_update == "hyndman"

    @property
    def name(self) -> str:
        return self.error + self.trend + self.season

    @property
    def has_trend(self) -> bool:
        return self.trend != "N"

    @property
    def damped(self) -> bool:
        return self.trend == "Ad"

    @property
    def has_season(self) -> bool:
        return self.season != "N"

    @property
    def linear(self) -> bool:
        """Additive error and no multiplicative part: Gaussian forecasts in closed form (Hyndman et al.'s class 1)."""
        return self.error == "A" and self.season != "M"

    def num_params(self, period: int) -> int:
        """Free parameters the likelihood is maximised over, sigma included: the smoothing parameters, phi, the
        initial level and trend and ``m - 1`` initial seasons (one is fixed by the level: a common shift or
        scale of level and seasons gives the same means), as R's forecast::ets counts them."""
        smoothing = 1 + self.has_trend + self.has_season + self.damped
        initial = 1 + self.has_trend + (period - 1 if self.has_season else 0)
        return smoothing + initial + 1


@dataclass
class ETSParams:
    """Smoothing parameters (Hyndman et al.'s alpha, beta, gamma; beta = 0 without a trend, gamma = 0 without a
    season, phi = 1 unless damped), the initial state ``H_0`` (level, slope, seasons (m,) oldest first: season[0]
    belongs to the first value) and the error's sigma."""

    alpha: float
    beta: float
    gamma: float
    phi: float
    level: float
    slope: float
    season: np.ndarray  # (m,) s_{-m} .. s_{-1}; [0.0] without a season
    sigma: float

    def smoothing(self) -> np.ndarray:
        return np.array([self.alpha, self.beta, self.gamma, self.phi, self.sigma])

    def initial_state(self) -> np.ndarray:
        return np.concatenate([[self.level, self.slope], self.season])


def check_params(form: ETSForm, p: ETSParams) -> None:
    """The usual region (statsmodels' and forecast's bounds): 0 < alpha < 1, 0 < beta < alpha, 0 < gamma < 1 -
    alpha, 0.8 <= phi <= 0.98, sigma > 0; zeros and phi = 1 where the form has no such part."""
    if not 0 < p.alpha < 1:
        raise SeqlabError(f"ETS alpha must be in (0, 1), got {p.alpha}")
    if form.has_trend and not 0 < p.beta < p.alpha:
        raise SeqlabError(f"ETS beta must be in (0, alpha = {p.alpha}), got {p.beta}")
    if form.has_season and not 0 < p.gamma < 1 - p.alpha:
        raise SeqlabError(f"ETS gamma must be in (0, 1 - alpha = {1 - p.alpha}), got {p.gamma}")
    if form.damped and not 0.8 <= p.phi <= 0.98:
        raise SeqlabError(f"ETS phi must be in [0.8, 0.98], got {p.phi}")
    if not form.has_trend and (p.beta != 0 or p.slope != 0):
        raise SeqlabError("an ETS form without a trend has beta = 0 and slope = 0")
    if not form.has_season and (p.gamma != 0 or len(p.season) != 1 or p.season[0] != 0):
        raise SeqlabError("an ETS form without a season has gamma = 0 and season = [0]")
    if not form.damped and p.phi != 1:
        raise SeqlabError("an undamped ETS form has phi = 1")
    if not p.sigma > 0:
        raise SeqlabError(f"ETS sigma must be positive, got {p.sigma}")


def recursion(
    y: list[float],
    alpha: float,
    beta_star: float,
    gamma_star: float,
    phi: float,
    level: float,
    slope: float,
    season: list[float],
    multiplicative_season: bool,
    hyndman_season: bool = False,
) -> tuple[list[float], float, float, list[float]]:
    """The filter's loop: one-step means ``mu`` (one per value) and the state after the last value, the seasons
    oldest first. Plain Python floats: for one series of ~100 values this beats numpy's per-call overhead. A form
    without a season runs with ``season = [0.0]`` and ``gamma* = 0``; without a trend with ``slope = 0``. The
    fit's objective runs a compiled copy of this loop with its gradient (``ets_kernel``). ``hyndman_season``:
    a multiplicative season moves by Hyndman et al.'s update (module docstring)."""
    m = len(season)
    season = list(season)  # a ring: season[t % m] is S_t
    mu = [0.0] * len(y)
    one_alpha, one_beta, one_gamma = 1.0 - alpha, 1.0 - beta_star, 1.0 - gamma_star
    gamma = gamma_star * one_alpha
    j = 0
    for t, y_t in enumerate(y):
        s = season[j]
        b = phi * slope
        base = level + b
        if multiplicative_season:
            mu[t] = base * s
            new_level = alpha * (y_t / s) + one_alpha * base
            if hyndman_season:
                season[j] = gamma * (y_t / base) + (1.0 - gamma) * s
            else:
                season[j] = gamma_star * (y_t / new_level) + one_gamma * s
        else:
            mu[t] = base + s
            new_level = alpha * (y_t - s) + one_alpha * base
            season[j] = gamma_star * (y_t - new_level) + one_gamma * s
        slope = beta_star * (new_level - level) + one_beta * b
        level = new_level
        j = j + 1 if j + 1 < m else 0
    return mu, level, slope, season[j:] + season[:j]


def starred(p: ETSParams) -> tuple[float, float, float]:
    """``(alpha, beta*, gamma*)``: the recursion's parameters."""
    return p.alpha, p.beta / p.alpha, p.gamma / (1.0 - p.alpha)


def run_filter(
    form: ETSForm, p: ETSParams, y: np.ndarray, state: tuple[float, float, np.ndarray] | None = None
) -> tuple[np.ndarray, tuple[float, float, np.ndarray]]:
    """One-step means ``mu (T,)`` of ``y (T,)`` from ``state`` (default: the initial state ``H_0``) and the state
    ``(level, slope, season (m,))`` after the last value."""
    level, slope, season = state if state is not None else (p.level, p.slope, p.season)
    alpha, beta_star, gamma_star = starred(p)
    try:
        mu, level, slope, season = recursion(
            y.tolist(), alpha, beta_star, gamma_star, p.phi, level, slope, list(season), form.season == "M",
            form.hyndman_season
        )  # fmt: skip
    except ZeroDivisionError:
        raise SeqlabError(
            f"ETS {form.name}: a seasonal factor or level reached 0; the model is undefined here"
        ) from None
    return np.asarray(mu, dtype=np.float64), (level, slope, np.asarray(season, dtype=np.float64))


def scale_of(form: ETSForm, mu: np.ndarray, sigma: float) -> np.ndarray:
    """The one-step standard deviations ``sd_t``: sigma (error A) or ``|mu_t| sigma`` (error M)."""
    return np.full_like(mu, sigma) if form.error == "A" else np.abs(mu) * sigma


def relative_errors(form: ETSForm, mu: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``eps_t``: ``y - mu`` (error A) or ``(y - mu) / mu`` (error M)."""
    return y - mu if form.error == "A" else (y - mu) / mu


def log_densities(form: ETSForm, mu: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
    """``log N(y_t; mu_t, sd_t^2)`` (T,): the chain rule's terms at a given sigma."""
    sd = scale_of(form, mu, sigma)
    return -0.5 * np.log(2 * math.pi * sd**2) - 0.5 * ((y - mu) / sd) ** 2


def concentrated_loglik(form: ETSForm, mu: np.ndarray, y: np.ndarray) -> float:
    """The log-likelihood with sigma at its maximum, ``sigma^2 = mean(eps^2)`` (statsmodels' ``loglike``):

    -n/2 (log(2 pi sigma^2) + 1) - sum log |mu_t|   (the last sum for error M only)"""
    n = len(y)
    eps = relative_errors(form, mu, y)
    loglik = -0.5 * n * (math.log(2 * math.pi * float(eps @ eps) / n) + 1)
    if form.error == "M":
        loglik -= float(np.log(np.abs(mu)).sum())
    return loglik


def simulate(form: ETSForm, p: ETSParams, state: tuple[float, float, np.ndarray], noise: np.ndarray) -> np.ndarray:
    """Sample paths ``(S, horizon)`` from ``state`` with standard normal draws ``noise (S, horizon)`` (scaled by
    sigma here): each value drawn from the head, then fed back through the same equations as the filter."""
    S, horizon = noise.shape
    alpha, beta_star, gamma_star = starred(p)
    level = np.full(S, float(state[0]))
    slope = np.full(S, float(state[1]))
    season = np.tile(np.asarray(state[2], dtype=np.float64), (S, 1))  # (S, m), a ring like the filter's
    m = season.shape[1]
    paths = np.empty((S, horizon))
    for h in range(horizon):
        j = h % m
        s = season[:, j]
        b = p.phi * slope
        base = level + b
        multiplicative = form.season == "M"
        mu = base * s if multiplicative else base + s
        sd = p.sigma if form.error == "A" else np.abs(mu) * p.sigma
        y = mu + sd * noise[:, h]
        new_level = alpha * (y / s if multiplicative else y - s) + (1 - alpha) * base
        if form.hyndman_season:
            gamma = gamma_star * (1.0 - alpha)
            season[:, j] = gamma * (y / base) + (1.0 - gamma) * s
        else:
            season[:, j] = gamma_star * (y / new_level if multiplicative else y - new_level) + (1 - gamma_star) * s
        slope = beta_star * (new_level - level) + (1 - beta_star) * b
        level = new_level
        paths[:, h] = y
    return paths


def linear_forecast(
    form: ETSForm, p: ETSParams, state: tuple[float, float, np.ndarray], horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Gaussian ``(mean, sd)`` (horizon,) of a linear form (error A, season N or A) from ``state``: with the
    state vector ``x = (l, b, s_oldest .. s_newest)``, ``y = w'x + eps``, ``x' = F x + g eps``,

        mean_h = w' F^(h-1) x,    var_h = sigma^2 (1 + sum_{j=1}^{h-1} (w' F^(j-1) g)^2)

    (Hyndman et al. 2008, ch. 6)."""
    if not form.linear:
        raise SeqlabError(f"ETS {form.name} has no closed-form forecast; sample it")
    m = len(state[2]) if form.has_season else 0
    k = 2 + m
    w = np.zeros(k)
    w[0], w[1] = 1.0, p.phi
    F = np.zeros((k, k))
    F[0, 0], F[0, 1], F[1, 1] = 1.0, p.phi, p.phi
    g = np.zeros(k)
    g[0], g[1] = p.alpha, p.beta
    if m:
        w[2] = 1.0  # the oldest season belongs to the next value
        F[2 : 2 + m - 1, 3 : 2 + m] = np.eye(m - 1)  # the others age by one
        F[2 + m - 1, 2] = 1.0  # the oldest comes back as the newest, plus gamma eps
        g[2 + m - 1] = p.gamma
    x = np.concatenate([[state[0], state[1]], state[2][:m]])
    mean, c = np.empty(horizon), np.empty(horizon)
    for h in range(horizon):
        mean[h], c[h] = w @ x, w @ g
        x, g = F @ x, F @ g
    var = p.sigma**2 * (1 + np.concatenate([[0.0], np.cumsum(c[:-1] ** 2)]))
    return mean, np.sqrt(var)
