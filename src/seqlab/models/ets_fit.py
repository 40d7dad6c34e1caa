"""Fitting ETS models: maximum likelihood for one form (``fit_form``) and the choice of the form by AICc among the
admissible ones (``select``), as R's ``forecast::ets`` and statsforecast's ``AutoETS`` choose.

The likelihood is statsmodels' (``ets_state.concentrated_loglik``: sigma at its maximum, ``mean(eps^2)``). It is
maximised with scipy's L-BFGS-B (driven directly, ``lbfgsb``), with its gradient by reverse mode (both compiled,
``ets_kernel``), over ``(alpha, beta*, gamma*, phi)``, the box form of the usual region (``beta* = beta / alpha``,
``gamma* = gamma / (1 - alpha)`` in ``[1e-4, 1 - 1e-4]``, ``phi`` in ``[0.8, 0.98]``), and the initial state (level,
slope and ``m - 1`` seasons; the oldest season is fixed at 0 or 1, since the level absorbs a common shift or scale),
as statsmodels' ``ETSModel.fit`` does, from three starts (``start_smoothing``). The series is divided by its mean
absolute value first, so one optimiser setting suits every scale. The initial state starts from statsmodels'
heuristic (a classical decomposition of the first cycles, then a line through the first 10 deseasonalised values; a
simpler one for short series).

``bounds="both"`` (the default, R's ``forecast::ets``'s) also requires the parameters of a seasonal form to be
admissible (``admissible``: the model forecastable, Hyndman, Akram & Archibald 2008), as R does; the box alone is
``bounds="usual"``. Non-seasonal forms are admissible everywhere in the box. An optimum outside the admissible
region is refitted with the region as a barrier (the objective ``INVALID`` outside it), so the common case costs
nothing more.

``beta_max`` (R's ``upper`` for beta, statsforecast's ``upper[1]``; None: no cap beyond the region) caps the slope's
smoothing, ``beta = alpha beta* <= beta_max``, in every trended form: the optimiser then searches beta as a share of
``min(alpha, beta_max)`` in ``[1e-4, 1 - 1e-4]`` (a box again, with the gradient by the chain rule), and the starts
are moved below the cap. A beta near 1 makes the slope follow the last values' changes, which an 18-step forecast
extrapolates; statsforecast's ``AutoETS`` caps beta in effect. ``ETSConfig``'s default is 0.02, chosen on held-out
parts of M1 and Tourism (docs/panels.md, "The parameter region")."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import fmin_l_bfgs_b

try:  # scipy's L-BFGS-B routine itself (private, stable since scipy 1.15's C port): driven by ``lbfgsb`` below
    from scipy.optimize import _lbfgsb
    from scipy.optimize._lbfgsb_py import status_messages, task_messages
except ImportError:  # pragma: no cover - another scipy: fmin_l_bfgs_b, the same iterates, slower
    _lbfgsb = None

from seqlab.errors import SeqlabError
from seqlab.models import ets_kernel
from seqlab.models.ets_state import (
    ERRORS,
    INVALID,
    MSE_FLOOR,
    SEASONS,
    ETSForm,
    ETSParams,
    log_densities,
    relative_errors,
    run_filter,
)

LOWER, UPPER = 1e-4, 1 - 1e-4  # alpha, beta*, gamma*: statsmodels' box
PHI_LOWER, PHI_UPPER = 0.8, 0.98
MAX_AUTO_PERIOD = 24  # R's forecast and statsforecast leave longer seasons out of the automatic choice
BOUNDS = ("both", "usual")  # R's forecast::ets's names: the box and admissibility, or the box alone
BETA_MAX_LOWEST = LOWER  # R's lower end for beta: a cap below it would leave no beta to fit


@dataclass
class ETSFit:
    """What ``fit`` recorded: the chosen form, its log-likelihood and AICc on ``nobs`` values, the optimiser's
    verdict, and every candidate's AICc (None where it could not be fitted: JSON has no infinity)."""

    form: str
    loglik: float
    aicc: float
    nobs: int
    num_params: int
    converged: bool
    message: str
    candidates: dict[str, float | None] = field(default_factory=dict)


def aicc(loglik: float, num_params: int, nobs: int) -> float:
    """``-2 log L + 2k + 2k(k + 1) / (n - k - 1)`` (inf when ``n <= k + 1``)."""
    if nobs - num_params - 1 <= 0:
        return math.inf
    return -2 * loglik + 2 * num_params + 2 * num_params * (num_params + 1) / (nobs - num_params - 1)


def admissible(alpha: float, beta: float, gamma: float, phi: float, m: int) -> bool:
    """Whether a seasonal form with these (Hyndman et al.'s) ``alpha, beta, gamma, phi`` (``beta = 0`` without a
    trend, ``phi = 1`` undamped) is forecastable: the roots of its characteristic polynomial inside the unit circle
    (Hyndman, Akram & Archibald 2008, "The admissible parameter space for exponential smoothing models"; R's
    ``forecast:::admissible``, which R's default ``bounds="both"`` applies with the usual box). Inside the box
    (``0 < beta < alpha < 1``, ``0 < gamma < 1 - alpha``) it excludes e.g. a large beta with a small gamma."""
    if gamma < max(1 - 1 / phi - alpha, 0.0) or gamma > 1 + 1 / phi - alpha:
        return False
    if alpha < 1 - 1 / phi - gamma * (1 - m + phi + phi * m) / (2 * phi * m):
        return False
    if beta < -(1 - phi) * (gamma / m + alpha):
        return False
    middle = alpha + beta - alpha * phi
    coefficients = [phi * (1 - alpha - gamma), middle + gamma - 1] + [middle] * (m - 2) + [alpha + beta - phi, 1.0]
    roots = np.polynomial.polynomial.polyroots(coefficients)  # lowest power first
    return bool(np.abs(roots).max() <= 1 + 1e-10)


# -- starting values ------------------------------------------------------------------------------------------------


def _centred_moving_average(y: np.ndarray, m: int) -> np.ndarray:
    """The trend-cycle of ``y`` by a centred moving average of ``m`` values (2 x m for even m), NaN at the ends."""
    out = np.full(len(y), np.nan)
    if m % 2:
        half = m // 2
        out[half : len(y) - half] = np.convolve(y, np.ones(m) / m, mode="valid")
    else:
        weights = np.concatenate([[0.5], np.ones(m - 1), [0.5]]) / m
        half = m // 2
        out[half : len(y) - half] = np.convolve(y, weights, mode="valid")
    return out


def initial_state(form: ETSForm, y: np.ndarray, m: int) -> tuple[float, float, np.ndarray]:
    """Heuristic ``(level, slope, season (m,))`` before the first value: statsmodels' ``_initialization_heuristic``
    (Hyndman et al. 2008 section 2.6.1: seasons from a classical decomposition of the first cycles, level and
    slope from a line through the first 10 deseasonalised values), or its ``_initialization_simple`` where the
    series is too short for that (first values, first cycles)."""
    n = len(y)
    season = np.zeros(1)
    if form.has_season:
        min_obs = 10 + 2 * (m // 2)
        if n < max(2 * m, min_obs):
            level = y[:m].mean()
            season = y[:m] - level if form.season == "A" else y[:m] / level
            slope = float(((y[m : 2 * m] - y[:m]) / m).mean()) if form.has_trend else 0.0
            return float(level), slope, season
        cycles = max(min(5, n // m), math.ceil(min_obs / m))
        head = y[: m * cycles]
        trend_cycle = _centred_moving_average(head, m)
        detrended = head - trend_cycle if form.season == "A" else head / trend_cycle
        padded = np.concatenate([detrended, np.full(m * cycles - len(head), np.nan)])  # a last cycle may be short
        season = np.nanmean(padded.reshape(cycles, m), axis=0)
        season = season - season.mean() if form.season == "A" else season / season.mean()
        y = trend_cycle[~np.isnan(trend_cycle)]
    elif n < 10:
        return float(y[0]), float(y[1] - y[0]) if form.has_trend and n > 1 else 0.0, season
    slope, level = np.polyfit(np.arange(1, 11), y[:10], 1)
    return float(level), float(slope) if form.has_trend else 0.0, season


def start_smoothing(form: ETSForm, m: int, beta_max: float | None = None) -> list[tuple[float, float, float, float]]:
    """Starting ``(alpha, beta*, gamma*, phi)`` inside the box: R's forecast's (alpha = 0.2 / m, beta = 0.1,
    gamma = 0.05, phi = 0.978), a fast-moving state (0.5, 0.1, 0.2, 0.9) and one whose trend follows the level
    closely (0.7, 0.7, 0.3, 0.9). The likelihood has several local maxima (a stiff level with a trend that follows
    every move, a level that follows every move with a fixed trend, ...), and one start often ends in a worse one:
    on 9 monthly series x 15 forms these three together found the best of 7 starts and statsmodels' fit (within
    0.5 of log-likelihood) every time; any two of them missed it 4 times or more, statsmodels 16 times. With
    ``beta_max``, a start whose beta is above 0.9 ``beta_max`` has its beta moved to half the cap, inside the
    search box rather than on its bound."""
    clip = lambda v: min(max(v, LOWER), UPPER)  # noqa: E731
    alpha = LOWER + 0.2 * (UPPER - LOWER) / (m if form.has_season else 1)
    beta = LOWER + 0.1 * (UPPER - LOWER)
    beta = beta if beta < alpha else alpha - 1e-3
    gamma = LOWER + 0.05 * (UPPER - LOWER)
    forecasts = (alpha, clip(beta / alpha), clip(gamma / (1 - alpha)), PHI_LOWER + 0.99 * (PHI_UPPER - PHI_LOWER))
    starts = [forecasts, (0.5, 0.1, 0.2, 0.9), (0.7, 0.7, 0.3, 0.9)]
    if beta_max is None or not form.has_trend:
        return starts
    return [(a, b if a * b <= 0.9 * beta_max else max(LOWER, 0.5 * beta_max / a), g, p) for a, b, g, p in starts]


def check_beta_max(beta_max: float | None) -> None:
    """A ``SeqlabError`` unless ``beta_max`` is None or a number in ``[BETA_MAX_LOWEST, 1]``."""
    number = isinstance(beta_max, (int, float, np.floating)) and not isinstance(beta_max, bool)
    if beta_max is not None and not (number and BETA_MAX_LOWEST <= beta_max <= 1):
        raise SeqlabError(
            f"ETS beta_max must be None (no cap) or a number in [{BETA_MAX_LOWEST:g}, 1]; got {beta_max!r}"
        )


# -- one form -----------------------------------------------------------------------------------------------------


@dataclass
class Layout:
    """Where each parameter sits in the optimiser's vector: ``alpha [beta*] [gamma*] [phi] level [slope]
    [season_1 .. season_{m-1}]``."""

    form: ETSForm
    m: int

    @property
    def num_smoothing(self) -> int:
        f = self.form
        return 1 + f.has_trend + f.has_season + f.damped

    def bounds(self) -> list[tuple[float | None, float | None]]:
        f = self.form
        box = [(LOWER, UPPER)] * (1 + f.has_trend + f.has_season) + [(PHI_LOWER, PHI_UPPER)] * f.damped
        states = [(None, None)] * (1 + f.has_trend)
        if f.has_season:
            states += [(1e-3, None) if f.season == "M" else (None, None)] * (self.m - 1)
        return box + states

    def pack(self, alpha, beta_star, gamma_star, phi, level, slope, season) -> np.ndarray:
        f = self.form
        v = [alpha] + [beta_star] * f.has_trend + [gamma_star] * f.has_season + [phi] * f.damped + [level]
        v += [slope] * f.has_trend
        return np.array(v + (list(season[1:]) if f.has_season else []), dtype=np.float64)

    def unpack(self, v: np.ndarray) -> tuple[float, float, float, float, float, float, list[float]]:
        """``(alpha, beta*, gamma*, phi, level, slope, season)`` as Python floats (``ets_state.recursion``'s)."""
        f, v = self.form, v.tolist()
        i = 1
        beta_star = v[i] if f.has_trend else 0.0
        i += f.has_trend
        gamma_star = v[i] if f.has_season else 0.0
        i += f.has_season
        phi = v[i] if f.damped else 1.0
        i += f.damped
        level = v[i]
        slope = v[i + 1] if f.has_trend else 0.0
        i += 1 + f.has_trend
        fixed = 1.0 if f.season == "M" else 0.0
        season = [fixed] + v[i:] if f.has_season else [0.0]
        return v[0], beta_star, gamma_star, phi, level, slope, season


def negative_loglik(v: np.ndarray, layout: Layout, y: np.ndarray) -> tuple[float, np.ndarray]:
    """``-log L / n`` at the optimiser's vector ``v`` and its gradient by reverse mode (about three filter passes
    whatever the number of parameters; ``INVALID`` and a zero gradient where a multiplicative part meets a zero or
    negative mean, where the model is undefined), compiled: ``ets_kernel.objective``."""
    f = layout.form
    grad = np.empty_like(v)
    value = ets_kernel.compiled_objective()(
        v, y, layout.m, f.has_trend, f.has_season, f.damped, f.season == "M", f.error == "M", grad, f.hyndman_season
    )
    return value, grad


def lbfgsb(
    fun_grad: Callable[[np.ndarray, np.ndarray], float],
    x0: np.ndarray,
    bounds: list[tuple[float | None, float | None]],
    maxiter: int = 1000,
) -> tuple[np.ndarray, float, int, str]:
    """Minimise ``fun_grad(x, grad)`` (the value; the gradient written into ``grad``) from ``x0`` in a box:
    ``(x, value, warnflag, message)``, as ``fmin_l_bfgs_b(..., bounds=bounds, maxiter=maxiter)`` returns them with
    its other settings at their defaults, to every digit (``tests/test_ets.py``). It calls scipy's routine
    (``_lbfgsb.setulb``) in the loop that ``fmin_l_bfgs_b`` runs, without the bookkeeping that wraps each
    evaluation there (a ``ScalarFunction``, its memo of ``x``, copies and checks: about 20 us of the 25 us it
    spends per evaluation, against 3 to 5 us for ETS's compiled objective; docs/panels.md)."""
    if _lbfgsb is None:  # pragma: no cover
        x, value, info = fmin_l_bfgs_b(
            lambda v: (fun_grad(v, g := np.empty_like(v)), g), x0, bounds=bounds, maxiter=maxiter
        )
        return x, float(value), int(info["warnflag"]), str(info["task"])
    n, maxcor, maxls, maxfun = len(x0), 10, 20, 15000  # fmin_l_bfgs_b's defaults
    factr = 1e7 * np.finfo(float).eps / np.finfo(float).eps  # its factr, through the ftol it passes on
    pgtol = 1e-5
    lower, upper = np.zeros(n), np.zeros(n)
    nbd = np.zeros(n, np.int32)  # 0 free, 1 lower only, 2 both, 3 upper only
    kinds = {(False, False): 0, (True, False): 1, (True, True): 2, (False, True): 3}
    for i, (lo, hi) in enumerate(bounds):
        lower[i] = 0.0 if lo is None else lo
        upper[i] = 0.0 if hi is None else hi
        nbd[i] = kinds[lo is not None, hi is not None]
    x = np.clip(np.asarray(x0, dtype=np.float64), np.where(nbd % 3, lower, -np.inf), np.where(nbd >= 2, upper, np.inf))
    f, g = 0.0, np.zeros(n)
    wa = np.zeros(2 * maxcor * n + 5 * n + 11 * maxcor * maxcor + 8 * maxcor)
    iwa = np.zeros(3 * n, np.int32)
    task, ln_task, lsave = np.zeros(2, np.int32), np.zeros(2, np.int32), np.zeros(4, np.int32)
    isave, dsave = np.zeros(44, np.int32), np.zeros(29)
    iterations = evaluations = 0
    while True:
        _lbfgsb.setulb(maxcor, x, lower, upper, nbd, f, g, factr, pgtol, wa, iwa, task, lsave, isave, dsave, maxls,
                       ln_task)  # fmt: skip
        if task[0] == 3:  # FG: the value and gradient at x
            f = float(fun_grad(x, g))
            evaluations += 1
        elif task[0] == 1:  # NEW_X: an iteration done
            iterations += 1
            if iterations >= maxiter:
                task[0], task[1] = 5, 504
            elif evaluations > maxfun:
                task[0], task[1] = 5, 502
        else:
            break
    warnflag = 0 if task[0] == 4 else 1 if evaluations > maxfun or iterations >= maxiter else 2
    return x, f, warnflag, status_messages[task[0]] + ": " + task_messages[task[1]]


def fit_form(
    form: ETSForm,
    y: np.ndarray,
    m: int,
    maxiter: int = 1000,
    bounds: str = "both",
    beta_max: float | None = None,
) -> tuple[ETSParams, float, bool, str]:
    """Maximum likelihood for one form: ``(params, loglik, converged, message)``, the parameters on the data's
    scale with the initial seasons normalised to mean 0 (A) or 1 (M), which leaves every mean unchanged.
    ``bounds``: "both" (the box and, for a seasonal form, admissibility; R's default) or "usual" (the box).
    ``beta_max``: beta at most this in a trended form (None: no cap)."""
    if bounds not in BOUNDS:
        raise SeqlabError(f"ETS bounds must be one of {', '.join(BOUNDS)}; got {bounds!r}")
    check_beta_max(beta_max)
    if form.has_season and m < 2:
        raise SeqlabError(f"ETS {form.name} has a season: give its length (period >= 2), got {m}")
    if (form.error == "M" or form.season == "M") and not (y > 0).all():
        raise SeqlabError(f"ETS {form.name} has a multiplicative part: it needs positive data")
    scale = float(np.abs(y).mean()) or 1.0
    z = y / scale
    level, slope, season = initial_state(form, z, m)
    if form.has_season:  # the oldest season is the fixed one: move it into the level (and slope)
        if form.season == "A":
            level, season = level + season[0], season - season[0]
        else:
            level, slope, season = level * season[0], slope * season[0], season / season[0]
    layout = Layout(form, m)
    box = layout.bounds()

    objective = ets_kernel.compiled_objective()
    flags = (form.has_trend, form.has_season, form.damped, form.season == "M", form.error == "M")
    hyndman = form.hyndman_season

    def is_admissible(v: np.ndarray) -> bool:
        alpha, beta_star, gamma_star, phi = layout.unpack(v)[:4]
        return admissible(alpha, beta_star * alpha, gamma_star * (1 - alpha), phi, m)

    capped = beta_max is not None and form.has_trend

    # With a cap the optimiser searches beta as a share of min(alpha, beta_max) in the box, so that the region
    # beta <= min(alpha, beta_max) is a box too: a barrier at the cap stalled L-BFGS-B's line search, whose optimum
    # is often on it. Without one the search vector is Layout's (beta* = beta / alpha) itself.
    def from_search(w: np.ndarray) -> np.ndarray:
        if not capped:
            return w
        v = w.copy()
        v[1] = w[1] * min(w[0], beta_max) / w[0]  # Layout: alpha, beta* first
        return v

    def to_search(v: np.ndarray) -> np.ndarray:
        if not capped:
            return v
        w = v.copy()
        w[1] = min(max(v[1] * v[0] / min(v[0], beta_max), LOWER), UPPER)
        return w

    def searched(w: np.ndarray, grad: np.ndarray) -> float:
        """The objective at the search vector, its gradient by the chain rule through ``from_search``."""
        alpha, share = w[0], w[1]
        value = objective(from_search(w), z, m, *flags, grad, hyndman)
        d_beta_star = grad[1]
        grad[1] = d_beta_star * min(alpha, beta_max) / alpha
        if alpha > beta_max:  # beta* = share beta_max / alpha
            grad[0] -= d_beta_star * share * beta_max / alpha**2
        return value

    plain = searched if capped else lambda w, grad: objective(w, z, m, *flags, grad, hyndman)

    def barrier(w: np.ndarray, grad: np.ndarray) -> float:
        if is_admissible(from_search(w)):
            return plain(w, grad)
        grad[:] = 0.0  # L-BFGS-B's line search steps back from a value this large
        return INVALID

    def run(start: np.ndarray, fun: Callable[[np.ndarray, np.ndarray], float]) -> tuple[float, np.ndarray, bool, str]:
        x, value, warnflag, message = lbfgsb(fun, start, box, maxiter)
        return value, x, warnflag == 0, message

    smoothings = start_smoothing(form, m, beta_max)
    starts = [to_search(layout.pack(*smoothing, level, slope, season)) for smoothing in smoothings]
    value, x, converged, message = min((run(start, plain) for start in starts), key=lambda r: r[0])
    if bounds == "both" and form.has_season and value < INVALID and not is_admissible(from_search(x)):
        # R's region: the box's optimum is not forecastable, so search the admissible part (rare: 35 of 1,428
        # chosen forms on M3's training parts, docs/panels.md); a start outside it cannot start the barrier
        inside = [run(start, barrier) for start in starts if is_admissible(from_search(start))]
        value, x, converged, message = (
            min(inside, key=lambda r: r[0]) if inside else (INVALID, x, False, "no admissible start")
        )
    alpha, beta_star, gamma_star, phi, level, slope, season = layout.unpack(from_search(x))
    season = np.asarray(season)
    if form.season == "A":
        shift = season.mean()
        level, season = level + shift, season - shift
    elif form.season == "M":
        factor = season.mean()
        level, slope, season = level * factor, slope * factor, season / factor
    level, slope = level * scale, slope * scale
    if form.season == "A":
        season = season * scale
    params = ETSParams(
        alpha=alpha,
        beta=beta_star * alpha,
        gamma=gamma_star * (1 - alpha),
        phi=phi,
        level=level,
        slope=slope,
        season=season,
        sigma=1.0,
    )
    if value >= INVALID:
        if message != "no admissible start":
            message = "a multiplicative part met a zero or negative mean"
        return params, -math.inf, False, f"no valid parameters: {message}"
    mu, _ = run_filter(form, params, y)
    eps = relative_errors(form, mu, y)
    floor = math.sqrt(MSE_FLOOR) * (scale if form.error == "A" else 1.0)
    params.sigma = max(float(np.sqrt(np.mean(eps**2))), floor)  # the maximum of the likelihood in sigma
    loglik = float(log_densities(form, mu, y, params.sigma).sum())  # = concentrated_loglik above the floor
    return params, loglik, bool(converged), str(message)


# -- the automatic choice ------------------------------------------------------------------------------------------


def candidate_forms(spec: str, y: np.ndarray, m: int, season_update: str = "statsmodels") -> list[ETSForm]:
    """The forms ``spec`` allows (``Z`` in a place: any) that suit ``y``, as forecast::ets filters them:
    multiplicative error or season only for positive data; no additive error with a multiplicative season
    (unstable); a season only for ``2 <= m <= 24`` with two full cycles; and enough values for the parameters
    (``n >= k + 4``, k counting sigma)."""
    error, trend, season = parse_spec(spec)
    positive = bool((y > 0).all())
    forms = []
    for e in ERRORS if error == "Z" else (error,):
        for t in ("N", "A", "Ad") if trend == "Z" else (trend,):
            for s in SEASONS if season == "Z" else (season,):
                form = ETSForm(e, t, s, season_update)
                if (e == "M" or s == "M") and not positive:
                    continue
                if season == "Z" and s != "N" and not 2 <= m <= MAX_AUTO_PERIOD:
                    continue
                if s != "N" and (m < 2 or len(y) < 2 * m):
                    continue
                if e == "A" and s == "M" and "Z" in (error, season):
                    continue
                if len(y) < form.num_params(m) + 4:
                    continue
                forms.append(form)
    return forms


def parse_spec(spec: str) -> tuple[str, str, str]:
    """``"ZZZ"``, ``"AZN"``, ``"MAdM"``, ...: error in A M Z, trend in N A Ad Z, season in N A M Z."""
    ok = isinstance(spec, str) and len(spec) in (3, 4)
    error, trend, season = (spec[0], spec[1:-1], spec[-1]) if ok else ("", "", "")
    if not (error in (*ERRORS, "Z") and trend in ("N", "A", "Ad", "Z") and season in (*SEASONS, "Z")):
        raise SeqlabError(
            f"an ETS model is error (A, M), trend (N, A, Ad) and season (N, A, M), each or Z for 'choose by "
            f"AICc', as in 'ZZZ', 'AAdN', 'MNM'; got {spec!r}"
        )
    return error, trend, season


def select(
    y: np.ndarray,
    spec: str,
    m: int,
    season_update: str = "statsmodels",
    bounds: str = "both",
    beta_max: float | None = None,
) -> tuple[ETSForm, ETSParams, ETSFit]:
    """Fit every candidate form (a multiplicative season moved by ``season_update``'s equation) within ``bounds``
    and, in trended forms, with beta at most ``beta_max`` (``fit_form``) and keep the one of least AICc."""
    forms = candidate_forms(spec, y, m, season_update)
    if not forms:
        raise SeqlabError(
            f"no ETS form in {spec!r} suits these {len(y)} values (period {m}): multiplicative parts need positive "
            f"data, a season two full cycles, and every form at least 4 values more than its parameters"
        )
    best, scores = None, {}
    for form in forms:
        params, loglik, converged, message = fit_form(form, y, m, bounds=bounds, beta_max=beta_max)
        k = form.num_params(m)
        score = aicc(loglik, k, len(y))
        scores[form.name] = score if math.isfinite(score) else None
        if math.isfinite(score) and (best is None or score < best[0]):
            best = (score, form, params, loglik, converged, message, k)
    if best is None:
        raise SeqlabError(f"ETS: no candidate form could be fitted to these {len(y)} values ({message})")
    score, form, params, loglik, converged, message, k = best
    return form, params, ETSFit(form.name, loglik, score, len(y), k, converged, message, scores)
