"""Metrics: likelihood scores from per-step log-probabilities (``SequenceModel.log_prob``), forecast scores
from sample paths (MAE, RMSE, MASE, CRPS, interval coverage), the scale-free holdout scores the M-competitions
judge panels by (MASE with the seasonal scale, sMAPE, MSIS, scaled CRPS, coverage), and the statistics that
compare models: AIC, the paired log-score difference of two forecasters and its Newey-West t."""

from __future__ import annotations

import math
import sys

import numpy as np
import torch

from seqlab.errors import SeqlabError

LN2 = math.log(2.0)


MAX_EXP = math.log(sys.float_info.max)  # 709.78: math.exp overflows above it


def score_names(elements: str = "characters", discrete: bool = True) -> dict[str, str | None]:
    """The keys ``likelihood_scores`` uses for data of ``elements`` ("characters", "samples", "values"):
    {"nll", "bits", "perplexity", "count"} -> key (None where the measure does not apply).

    Text keeps the keys every seqlab record has used (``nll_nats``, ``bits_per_char``, ``perplexity``,
    ``tokens``). Other data are named per element: ``nll_nats_per_sample``, ``bits_per_sample``, ``samples`` for
    mu-law audio. A density (a continuous head: prices, raw audio samples) has an NLL in nats per element, which
    can be negative, and no bits or perplexity, measures of a discrete distribution: ``nll_nats_per_value``,
    ``values``."""
    if elements == "characters":
        return {"nll": "nll_nats", "bits": "bits_per_char", "perplexity": "perplexity", "count": "tokens"}
    unit = elements.removesuffix("s")
    names = {"nll": f"nll_nats_per_{unit}", "bits": None, "perplexity": None, "count": elements}
    if discrete:
        names |= {"bits": f"bits_per_{unit}", "perplexity": "perplexity"}
    return names


def likelihood_scores(log_probs: torch.Tensor, elements: str = "characters", discrete: bool = True) -> dict:
    """NLL per step in nats, in bits and as a perplexity (discrete data only), and the step count, under the
    names ``score_names(elements, discrete)`` gives. NaN entries (gaps between joined series: nothing was
    predicted there) are left out."""
    log_probs = log_probs[~torch.isnan(log_probs)]
    return scores_from_nll(float(-log_probs.double().mean()), log_probs.numel(), elements, discrete)


def scores_from_nll(nll: float, count: int, elements: str = "characters", discrete: bool = True) -> dict:
    """``likelihood_scores`` from the mean NLL (nats) of ``count`` steps (``seqlab.training.score_held_out``
    sums them chunk by chunk)."""
    if count == 0:
        raise SeqlabError("no steps to score")
    perplexity = math.exp(nll) if nll < MAX_EXP else math.inf  # a density of D-dim frames can score 1,000 nats
    values = {"nll": nll, "bits": nll / LN2, "perplexity": perplexity, "count": count}
    return {key: values[role] for role, key in score_names(elements, discrete).items() if key is not None}


# -- forecasts: point errors and scores of the predictive distribution, from sample paths ------------------


def crps_from_samples(samples: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Continuous ranked probability score of the empirical distribution of ``samples (S, ...)`` at ``y (...)``:

        CRPS(F, y) = E|X - y| - 1/2 E|X - X'|      (Gneiting & Raftery 2007, eq. 21)

    with ``E|X - X'| = 2 / S^2 sum_i (2i - S - 1) x_(i)`` over the sorted samples (an O(S log S) form).
    Lower is better; for a point forecast it is the absolute error."""
    x = np.sort(np.asarray(samples, dtype=np.float64), axis=0)
    S = x.shape[0]
    spread = (2 * np.arange(1, S + 1) - S - 1).reshape((S,) + (1,) * (x.ndim - 1))
    return np.abs(x - y).mean(axis=0) - (spread * x).sum(axis=0) / S**2


def interval_coverage(samples: np.ndarray, y: np.ndarray, level: float) -> float:
    """Share of ``y`` inside the central ``level`` interval of ``samples (S, ...)`` (its empirical quantiles)."""
    lower, upper = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return coverage(y, lower, upper)


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of ``y`` inside ``[lower, upper]`` (bounds included)."""
    return float(((y >= lower) & (y <= upper)).mean())


def forecast_scores(samples: np.ndarray, y: np.ndarray, naive_mae: float) -> dict:
    """MAE (of the median), RMSE (of the mean), MASE (MAE over the random walk's MAE on the same targets; None
    where that is 0, a constant series: JSON has no NaN), CRPS and the coverage of the 50% and 80% intervals, for
    sample paths ``(S, ...)`` of targets ``y (...)``."""
    median, mean = np.median(samples, axis=0), samples.mean(axis=0)
    mae = float(np.abs(median - y).mean())
    return {
        "mae": mae,
        "rmse": float(np.sqrt(((mean - y) ** 2).mean())),
        "mase": mae / naive_mae if naive_mae > 0 else None,
        "crps": float(crps_from_samples(samples, y).mean()),
        "coverage_50": interval_coverage(samples, y, 0.5),
        "coverage_80": interval_coverage(samples, y, 0.8),
    }


# -- holdout scores of one series of a panel, as the M4 Competitor's Guide defines them ----------------------------
#
# A series is split into ``train`` and the ``horizon`` values ``y`` after it; a method forecasts ``point`` (and an
# interval or a predictive distribution) from ``train`` alone. The scale-free scores are then averaged over the
# panel's series. MASE, MSIS and the scaled CRPS divide by the same seasonal scale, the in-sample MAE of the
# seasonal naive forecast; ``forecast_scores``' "mase" above is another measure (MAE over the random walk's MAE on
# the same targets), kept for the backtests that report it.


def seasonal_scale(train: np.ndarray, period: int = 1) -> float:
    """``mean |y_t - y_{t-m}|`` over the training values (t > m): the in-sample mean absolute error of the seasonal
    naive forecast; NaN when ``train`` has no more than ``m`` values."""
    train = np.asarray(train, dtype=np.float64)
    if period < 1:
        raise SeqlabError(f"the seasonal period must be a positive integer, got {period}")
    if len(train) <= period:
        return math.nan
    return float(np.abs(train[period:] - train[:-period]).mean())


def _scaled(value: float, scale: float) -> float:
    """``value / scale``; NaN where the scale is 0 or undefined (a constant or too short training series)."""
    return value / scale if scale > 0 else math.nan


def mase(y: np.ndarray, point: np.ndarray, train: np.ndarray, period: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006): ``mean |y - point| / seasonal_scale(train, m)``."""
    return _scaled(float(np.abs(np.asarray(y) - np.asarray(point)).mean()), seasonal_scale(train, period))


def smape(y: np.ndarray, point: np.ndarray) -> float:
    """Symmetric MAPE in percent (M4): ``mean 200 |y - f| / (|y| + |f|)``, from 0 to 200; a step where both are 0
    counts 0 (as utilsforecast)."""
    y, point = np.asarray(y, dtype=np.float64), np.asarray(point, dtype=np.float64)
    denominator = np.abs(y) + np.abs(point)
    ratio = np.divide(np.abs(y - point), denominator, out=np.zeros_like(y), where=denominator > 0)
    return float(200 * ratio.mean())


def interval_score(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Winkler's interval score of the central ``level`` interval, per step (Gneiting & Raftery 2007, eq. 43):
    ``(U - L) + 2/a (L - y) [y < L] + 2/a (y - U) [y > U]`` with ``a = 1 - level``."""
    if not 0 < level < 1:
        raise SeqlabError(f"the interval's level must be in (0, 1), got {level}")
    y, lower, upper = (np.asarray(v, dtype=np.float64) for v in (y, lower, upper))
    a = 1 - level
    return (upper - lower) + 2 / a * np.maximum(lower - y, 0) + 2 / a * np.maximum(y - upper, 0)


def msis(
    y: np.ndarray, lower: np.ndarray, upper: np.ndarray, train: np.ndarray, period: int = 1, level: float = 0.95
) -> float:
    """Mean scaled interval score (M4): the mean ``interval_score`` over the horizon over ``seasonal_scale``."""
    return _scaled(float(interval_score(y, lower, upper, level).mean()), seasonal_scale(train, period))


def quantile_loss(q: float, forecast: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pinball loss of the ``q`` quantile forecast: ``q (y - f)`` above it, ``(1 - q)(f - y)`` below."""
    diff = np.asarray(y, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    return np.maximum(q * diff, (q - 1) * diff)


def crps_from_quantiles(quantiles: dict[float, np.ndarray], y: np.ndarray) -> np.ndarray:
    """CRPS per step approximated from quantile forecasts ``q -> (...)``: ``2 mean_q pinball_q`` (the CRPS is
    ``2 int_0^1 pinball_q dq``, Gneiting & Raftery 2007 eq. 21's quantile form; evenly spread levels make it a
    midpoint rule)."""
    if not quantiles:
        raise SeqlabError("crps_from_quantiles needs at least one quantile forecast")
    return 2 * np.mean([quantile_loss(q, f, y) for q, f in quantiles.items()], axis=0)


def scaled_crps(
    y: np.ndarray,
    train: np.ndarray,
    period: int = 1,
    samples: np.ndarray | None = None,
    quantiles: dict[float, np.ndarray] | None = None,
) -> float:
    """The mean CRPS over the horizon, from sample paths ``(S, horizon)`` (exact for their empirical distribution)
    or from quantile forecasts, divided by ``seasonal_scale`` like MASE (a point forecast's scaled CRPS is its
    MASE)."""
    if (samples is None) == (quantiles is None):
        raise SeqlabError("scaled_crps takes sample paths or quantile forecasts, one of the two")
    crps = crps_from_samples(samples, y) if samples is not None else crps_from_quantiles(quantiles, y)
    return _scaled(float(np.mean(crps)), seasonal_scale(train, period))


def holdout_scores(
    train: np.ndarray,
    y: np.ndarray,
    point: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    period: int = 1,
    level: float = 0.95,
    samples: np.ndarray | None = None,
) -> dict:
    """One series' scores: MASE and sMAPE of ``point``, MSIS and coverage of the central ``level`` interval
    ``[lower, upper]``, and, given sample paths ``(S, horizon)``, the scaled CRPS (None without them)."""
    percent = round(100 * level)
    return {
        "mase": mase(y, point, train, period),
        "smape": smape(y, point),
        "msis": msis(y, lower, upper, train, period, level),
        f"coverage_{percent}": coverage(np.asarray(y), np.asarray(lower), np.asarray(upper)),
        "scaled_crps": scaled_crps(y, train, period, samples=samples) if samples is not None else None,
    }


# -- comparing models: information criteria and paired log-score differences ----------------------------------


def aic(num_params: int, loglik: float) -> float:
    """Akaike's information criterion ``2 k - 2 log L`` (lower is better)."""
    return 2 * num_params - 2 * loglik


def newey_west_t(d: np.ndarray) -> float:
    """t statistic of mean(d) with a heteroscedasticity- and autocorrelation-consistent variance (Newey & West
    1987): ``mean(d) / sqrt(S / n)``, ``S = g_0 + 2 sum_{l=1}^{L} (1 - l / (L + 1)) g_l`` (Bartlett weights),
    ``g_l = sum_t e_t e_{t-l} / n`` of ``e = d - mean(d)``, lag ``L = floor(4 (n / 100)^(2/9))``. NaN for n < 2
    or S = 0."""
    n = len(d)
    if n < 2:
        return math.nan
    e = d - d.mean()
    lags = int(4 * (n / 100) ** (2 / 9))
    s = float(e @ e) / n
    for lag in range(1, min(lags, n - 1) + 1):
        s += 2 * (1 - lag / (lags + 1)) * float(e[lag:] @ e[:-lag]) / n
    return float(d.mean() / math.sqrt(s / n)) if s > 0 else math.nan


def paired_difference(log_probs: np.ndarray, reference: np.ndarray) -> dict:
    """Two forecasters scored on the same steps (T,): the mean of ``d_t = NLL_t(model) - NLL_t(reference)``
    (negative: the model is better), its standard error ``sd(d) / sqrt(T)`` and its Newey-West t; None where a
    statistic is undefined (one step; no t when every d_t is the same, e.g. a pool that is its reference), so
    records stay valid JSON and tables leave the cell empty."""
    d = reference - log_probs
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan
    t = newey_west_t(d)
    return {
        "d_nll": float(d.mean()),
        "d_nll_se": se if math.isfinite(se) else None,
        "d_nll_t": t if math.isfinite(t) else None,
    }
